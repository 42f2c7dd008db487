/**
 * `maxMemory` holds for every shape of value: measured, in a child process per shape
 * (test/helpers/memory-shapes.ts) with a fresh heap and `--expose-gc`: an 8 MiB budget written
 * 10x over stays within 125% of the budget in heap growth. Then the parts that make it hold:
 * the estimate of shapes a plain walk misses, and what MemoryStore keeps in place of a value
 * that pins more than it weighs.
 */
import { describe, expect, it } from "vitest";
import { estimateBytes } from "../src/base/estimate-bytes.js";
import { unpin } from "../src/base/unpin.js";
import { MemoryStore } from "../src/index.js";
import { measureInChild, type ShapeResult, shapes } from "./helpers/memory-shapes.js";

const BUDGET = 8 * 1024 * 1024;
const TRAFFIC = 10;

/** At most this many children at once: each measures its own heap, CPU time does not matter. */
let running = 0;
const waiting: (() => void)[] = [];
async function measured(shape: string): Promise<ShapeResult> {
  if (running >= 3) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  try {
    return await measureInChild(shape, BUDGET, TRAFFIC);
  } finally {
    running--;
    waiting.shift()?.();
  }
}

describe("maxMemory holds: heap growth within 125% of an 8 MiB budget written 10x over", () => {
  for (const shape of shapes) {
    it.concurrent(`${shape.name}: ${shape.description}`, { timeout: 180_000 }, async () => {
      const result = await measured(shape.name);
      // The budget was really filled and turned over, not refused or left empty.
      expect(result.evictions, "entries evicted").toBeGreaterThan(0);
      expect(result.accountedBytes).toBeLessThanOrEqual(BUDGET);
      expect(
        result.growthOverBudget,
        `heap growth of ${result.heapGrowthBytes} bytes`,
      ).toBeLessThanOrEqual(1.25);
    });
  }
});

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

describe("what MemoryStore keeps in place of a value that pins more than it weighs", () => {
  const scope = { namespace: "n" };
  const stored = <T>(value: T): T => {
    const store = new MemoryStore({ maxSize: 0 });
    store.setSync("k", scope, { value, createdAt: 0 });
    return store.getSync("k", scope)?.value as T;
  };
  const big = () => new Float32Array(64 * 1024);

  it("keeps a value with nothing pinned as the very same object", () => {
    const value = { text: "a string long enough to be a slice", list: [1, "two"], at: new Date(0) };
    expect(stored(value)).toBe(value);
    expect(stored(value)).toEqual({
      text: "a string long enough to be a slice",
      list: [1, "two"],
      at: new Date(0),
    });
  });

  it("keeps a copy of a small view's window, leaving the caller's view on its buffer", () => {
    const buffer = big();
    buffer[3] = 7;
    const view = buffer.subarray(2, 18);
    const kept = stored(view);
    expect(kept).not.toBe(view);
    expect(kept).toBeInstanceOf(Float32Array);
    expect([...kept]).toEqual([...view]);
    expect(kept.buffer.byteLength).toBe(16 * 4);
    expect(view.buffer).toBe(buffer.buffer);
  });

  it("copies the plain containers on the way to such a view, not the caller's objects", () => {
    const shared = { note: "untouched subtrees are shared, not copied" };
    const embedding = big().subarray(0, 16);
    const value = { id: 1, embedding, meta: shared, list: [embedding, 2] };
    const kept = stored(value);
    expect(value.embedding).toBe(embedding); // the caller's object is left alone
    expect(kept).not.toBe(value);
    expect(kept).toEqual(value);
    expect(kept.embedding.buffer.byteLength).toBe(64);
    expect(kept.list[0]).toBe(kept.embedding); // one copy per view, shared as in the original
    expect(kept.meta).toBe(shared);
    expect(Object.keys(kept)).toEqual(["id", "embedding", "meta", "list"]);
  });

  it("keeps a frozen container frozen, and a Map's order", () => {
    const frozen = Object.freeze({ view: big().subarray(0, 4) });
    const kept = stored(frozen);
    expect(Object.isFrozen(kept)).toBe(true);
    expect(kept.view.buffer.byteLength).toBe(16);
    const map = new Map<string, unknown>([
      ["a", 1],
      ["b", big().subarray(0, 4)],
      ["c", 3],
    ]);
    const keptMap = stored(map);
    expect([...keptMap.keys()]).toEqual(["a", "b", "c"]);
    expect((keptMap.get("b") as Float32Array).buffer.byteLength).toBe(16);
  });

  it("copies a small Buffer out of the shared pool, and keeps it a Buffer", () => {
    const small = Buffer.from("a short buffer from the 8 KiB pool");
    expect(small.buffer.byteLength).toBeGreaterThan(4096);
    const kept = stored(small);
    expect(Buffer.isBuffer(kept)).toBe(true);
    expect(kept.toString()).toBe("a short buffer from the 8 KiB pool");
    expect(kept.buffer.byteLength).toBe(small.length);
  });

  it("leaves what it cannot copy faithfully as it is, and counts its whole buffer", () => {
    class Tensor {
      constructor(readonly data: Float32Array) {}
    }
    const tensor = new Tensor(big().subarray(0, 16));
    const key = big().subarray(0, 16);
    const shared = new Float32Array(new SharedArrayBuffer(64 * 1024)).subarray(0, 16);
    const value = { tensor, byKey: new Map([[key, 1]]), members: new Set([key]), shared };
    const store = new MemoryStore({ maxSize: 0 });
    store.setSync("k", scope, { value, createdAt: 0 });
    const kept = store.getSync("k", scope)?.value as typeof value;
    expect(kept.tensor).toBe(tensor);
    expect([...kept.byKey.keys()][0]).toBe(key); // Map keys and Set members keep their identity
    expect([...kept.members][0]).toBe(key);
    expect(kept.shared).toBe(shared);
    expect(store.bytes).toBeGreaterThan(2 * big().byteLength + shared.buffer.byteLength);
  });

  it("replaces strings by equal copies without calling setters or breaking frozen objects", () => {
    let sets = 0;
    const value = {
      plain: "x".repeat(40),
      get computed() {
        return "y".repeat(40);
      },
      set computed(_: string) {
        sets++;
      },
      frozen: Object.freeze({ text: "z".repeat(40) }),
      list: ["w".repeat(40)],
      byKey: new Map([["k".repeat(40), "v".repeat(40)]]),
    };
    const kept = stored(value);
    expect(kept).toBe(value);
    expect(sets).toBe(0);
    expect(kept).toEqual({
      plain: "x".repeat(40),
      computed: "y".repeat(40),
      frozen: { text: "z".repeat(40) },
      list: ["w".repeat(40)],
      byKey: new Map([["k".repeat(40), "v".repeat(40)]]),
    });
  });

  it("survives cycles and shared references", () => {
    type Node = { self?: Node; view: Float32Array; again?: Float32Array };
    const node: Node = { view: big().subarray(0, 4) };
    node.self = node;
    node.again = node.view;
    const kept = unpin(node);
    expect(kept.view.buffer.byteLength).toBe(16);
    expect(kept.again).toBe(kept.view);
    // The cycle leads back to the original (counted in full by the estimate), not to the copy.
    expect(kept.self).toBe(node);
  });
});
