/**
 * The estimate of shapes a plain walk of the values misses (hidden classes, hash-table objects,
 * growth room, holes), checked against what V8 keeps (figures measured with
 * bench/max-memory.ts).
 */
import { describe, expect, it } from "vitest";
import { estimateBytes } from "../src/index.js";

describe("estimateBytes counts what a plain walk of the values misses", () => {
  const unique = (i: number, n: number) => {
    const out: Record<string, number> = {};
    for (let j = 0; j < n; j++) out[`k${i}_${j}`] = j;
    return out;
  };

  it("counts the hidden class of an object once per distinct list of property names", () => {
    // ~90 bytes a property measured for names unique to one object (their own maps).
    expect(estimateBytes(unique(1, 16))).toBeGreaterThanOrEqual(16 * 90);
    const records = Array.from({ length: 100 }, (_, i) => ({ label: `c${i}`, score: i }));
    const one = estimateBytes([{ label: "c1", score: 1 }]);
    const shape = one - estimateBytes([{}]);
    // 100 records of one shape pay for the shape once, not 100 times.
    expect(estimateBytes(records)).toBeLessThan(100 * (one - shape) + 2 * shape);
    expect(estimateBytes(Array.from({ length: 100 }, (_, i) => unique(i, 4)))).toBeGreaterThan(
      100 * 4 * 90,
    );
  });

  it("counts objects with many properties, or no prototype, as hash tables", () => {
    const wide: Record<string, number> = {};
    for (let j = 0; j < 400; j++) wide[`field_${j}`] = j;
    // ~62 bytes a property measured for 400 shared names added by keyed stores.
    expect(estimateBytes(wide)).toBeGreaterThanOrEqual(400 * 62);
    // A second object of the same names adds its table (null prototype) or only its slots.
    const bare = () => Object.assign(Object.create(null) as object, { a: 1, b: 2 });
    const second = (make: () => object) =>
      estimateBytes([make(), make()]) - estimateBytes([make()]);
    expect(second(bare)).toBeGreaterThanOrEqual(2 * 62);
    expect(second(() => ({ a: 1, b: 2 }))).toBeLessThanOrEqual(64);
  });

  it("counts the in-object room of small objects and the growth room of arrays", () => {
    expect(estimateBytes({})).toBeGreaterThanOrEqual(56); // `{}` has room for 4 properties
    const pushed: number[] = [];
    for (let i = 0; i < 1000; i++) pushed.push(i);
    expect(estimateBytes(pushed)).toBeGreaterThanOrEqual(1.25 * 8 * 1000);
  });

  it("walks a sparse array by what it holds, not by its length", () => {
    const sparse: number[] = [];
    sparse[4_000_000_000] = 1;
    sparse[7] = 2;
    // Bounded by what V8 can keep for 2 elements; the walk does not visit 4e9 indexes.
    expect(estimateBytes(sparse)).toBeLessThan(200 * 1024);
    const holey = new Array<number>(10_000);
    holey[5] = 1;
    expect(estimateBytes(holey)).toBeGreaterThanOrEqual(8 * 10_000); // `new Array(n)` has n slots
  });

  it("counts Dates at their size and Sets at their emptiest", () => {
    expect(estimateBytes(new Date())).toBeGreaterThanOrEqual(96);
    // 513 members sit in a table for 1024: ~40 bytes each.
    const members = new Set(Array.from({ length: 513 }, (_, i) => i));
    expect(estimateBytes(members)).toBeGreaterThanOrEqual(513 * 40);
  });
});
