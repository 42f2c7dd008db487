import { describe, expect, it } from "vitest";
import { snapshot } from "../src/index.js";

describe("snapshot keeps own properties exactly", () => {
  it("keeps an own __proto__ property holding a primitive (out[key] = value dropped it)", () => {
    const original = JSON.parse('{"__proto__": 1, "a": 2}') as Record<string, unknown>;
    const copy = snapshot(original);
    expect(Object.hasOwn(copy, "__proto__")).toBe(true);
    expect(Object.getOwnPropertyDescriptor(copy, "__proto__")?.value).toBe(1);
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect(Object.keys(copy)).toEqual(["__proto__", "a"]);
  });

  it("keeps an own __proto__ property holding an object (out[key] = value set the prototype)", () => {
    const original = JSON.parse('{"__proto__": {"x": 1}}') as Record<string, unknown>;
    const copy = snapshot(original);
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    const inner = Object.getOwnPropertyDescriptor(copy, "__proto__")?.value as { x: number };
    expect(inner).toEqual({ x: 1 });
    expect(inner).not.toBe(Object.getOwnPropertyDescriptor(original, "__proto__")?.value);
    expect((copy as { x?: unknown }).x).toBeUndefined();
  });

  it("keeps it on a null-prototype object too", () => {
    const original = Object.create(null) as Record<string, unknown>;
    Object.defineProperty(original, "__proto__", { value: 1, enumerable: true, writable: true });
    const copy = snapshot(original);
    expect(Object.getPrototypeOf(copy)).toBe(null);
    expect(Object.getOwnPropertyDescriptor(copy, "__proto__")?.value).toBe(1);
  });
});
