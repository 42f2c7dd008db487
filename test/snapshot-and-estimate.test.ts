import { describe, expect, it } from "vitest";
import { estimateBytes } from "../src/base/estimate-bytes.js";
import { NotSnapshotableError, snapshot } from "../src/cache/snapshot.js";

describe("snapshot", () => {
  it("deep-copies every kind a cache can hold, so later mutation cannot reach the copy", () => {
    const original = {
      list: [1, { deep: "x" }],
      tensor: new Float32Array([1, 2]),
      buffer: Buffer.from("ab"),
      when: new Date(5),
      map: new Map([["k", [1]]]),
      set: new Set(["a"]),
      raw: new Uint8Array([1]).buffer,
      big: 10n,
    };
    const copy = snapshot(original);
    expect(copy).toEqual(original);
    original.list.push(2);
    original.tensor[0] = 99;
    original.buffer[0] = 0;
    original.map.get("k")?.push(2);
    expect(copy.list).toEqual([1, { deep: "x" }]);
    expect(copy.tensor[0]).toBe(1);
    expect(copy.buffer.toString()).toBe("ab");
    expect(Buffer.isBuffer(copy.buffer)).toBe(true);
    expect(copy.map.get("k")).toEqual([1]);
  });

  it("keeps shared references and cycles as they are", () => {
    const shared = { n: 1 };
    const node: { self?: unknown; a: unknown; b: unknown } = { a: shared, b: shared };
    node.self = node;
    const copy = snapshot(node);
    expect(copy.a).toBe(copy.b);
    expect(copy.self).toBe(copy);
  });

  it("refuses class instances instead of silently turning them into plain objects", () => {
    class Tensor {
      data = [1];
    }
    expect(() => snapshot({ out: new Tensor() })).toThrow(NotSnapshotableError);
    expect(() => snapshot({ out: new Tensor() })).toThrow(/value\.out \(instance of Tensor\)/);
    expect(() => snapshot([() => 1])).toThrow(/value\[0\] \(function\)/);
  });
});

describe("estimateBytes", () => {
  it("counts typed arrays by their buffer, strings by their characters", () => {
    expect(estimateBytes(new Float32Array(1000))).toBeGreaterThanOrEqual(4000);
    expect(estimateBytes(new Float32Array(1000))).toBeLessThan(4400);
    expect(estimateBytes("a".repeat(1000))).toBeGreaterThanOrEqual(1000);
    expect(estimateBytes("é".repeat(1000))).toBeLessThan(1100); // Latin-1: one byte each
    expect(estimateBytes("🔑".repeat(1000))).toBeGreaterThanOrEqual(4000); // two UTF-16 units each
  });

  it("walks objects and arrays, counting what they hold (not 56 bytes for a big dataclass)", () => {
    const record = { id: 1, text: "x".repeat(10_000), tags: ["a", "b"] };
    expect(estimateBytes(record)).toBeGreaterThan(10_000);
    expect(estimateBytes([record, record])).toBeLessThan(estimateBytes(record) * 1.1);
  });

  it("counts a shared buffer once and survives cycles", () => {
    const buffer = new ArrayBuffer(10_000);
    const views = [new Uint8Array(buffer), new Uint8Array(buffer, 10)];
    expect(estimateBytes(views)).toBeLessThan(10_500);
    const cyclic: { self?: unknown } = {};
    cyclic.self = cyclic;
    expect(estimateBytes(cyclic)).toBeGreaterThan(0);
  });
});
