import { describe, expect, it } from "vitest";
import { NotSnapshotableError, snapshot } from "../src/cache/snapshot.js";
import { cache } from "../src/index.js";

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

describe("snapshot refuses values nested deeper than it copies, instead of a stack overflow", () => {
  const chain = (depth: number, wrap: (inner: unknown) => unknown): unknown => {
    let value: unknown = 1;
    for (let i = 0; i < depth; i++) value = wrap(value);
    return value;
  };
  const shapes: [string, (inner: unknown) => unknown][] = [
    ["objects", (inner) => ({ a: inner })],
    ["arrays", (inner) => [inner]],
    ["Maps", (inner) => new Map([["a", inner]])],
    ["Sets", (inner) => new Set([inner])],
  ];
  it.each(shapes)("for a 100k-deep chain of %s (was a RangeError)", (_label, wrap) => {
    let caught: unknown;
    try {
      snapshot(chain(100_000, wrap), "result");
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(NotSnapshotableError);
    const error = caught as NotSnapshotableError;
    expect(error.message).toMatch(/nested deeper than 1000 levels/);
    expect(error.path).toMatch(/^result/);
    expect(error.message.length).toBeLessThan(300);
  });

  it("copies 1000 levels", () => {
    const deep = chain(1000, (inner) => ({ a: inner }));
    expect(snapshot(deep)).toEqual(deep);
  });

  it("a cached function whose result is too deep returns it without caching", () => {
    let runs = 0;
    const cached = cache(
      () => {
        runs++;
        return chain(100_000, (inner) => [inner]);
      },
      { clone: true },
    );
    expect(Array.isArray(cached())).toBe(true);
    expect(Array.isArray(cached())).toBe(true);
    expect(runs).toBe(2);
  });
});
