/**
 * Does `maxMemory` hold for every shape of value? One shape per process, so each starts from a
 * fresh heap: `node --expose-gc --import tsx test/helpers/memory-shapes.ts SHAPE BUDGET_BYTES
 * [TRAFFIC]` fills a cache (`cache(fn)` or the manual `Cache`, `maxSize: 0`, `maxMemory:
 * BUDGET`) with values of that shape, one fresh value per call, until it has been written
 * TRAFFIC times what it holds (so it has turned over its whole budget TRAFFIC - 1 times), then
 * prints one JSON line: what the cache accounts (`stats().bytes`) and what the heap really grew
 * by (V8 heap used plus ArrayBuffer memory, after full GCs).
 *
 * Used by `bench/max-memory.ts` (64 MiB, 10x) and by `test/memory-bounds.test.ts` (8 MiB, 10x).
 * The values are built so that nothing but the cache keeps them: a big string or buffer made
 * for one call is garbage once the call returns, unless what the cache holds pins it.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Cache, cache, MemoryStore } from "../../src/index.js";

export interface Shape {
  name: string;
  /** One line for the table in BENCHMARKS.md. */
  description: string;
  /** Which API writes it: `cache(fn)` (the value is `fn(i)`) or `Cache.set(key(i), { value })`. */
  api: "cache(fn)" | "Cache" | "MemoryStore";
  /** The value for call i (`cache(fn)`: given `arg(i)` when there is one). */
  make(i: number, arg?: unknown): unknown;
  /** The argument of call i to `cache(fn)` (the default: `i`). */
  arg?(i: number): unknown;
  /** The manual Cache's or MemoryStore's key for call i (the default: `i`, `k<i>`). */
  key?(i: number): unknown;
  /** Drops what the maker itself holds between calls, before the heap is measured. */
  reset?(): void;
}

/** A fresh 1 MiB string per call: the parent a slice can pin. */
const FILLER = "x".repeat(1 << 20);
const SLICE = 64 * 1024;
function bigString(i: number): string {
  // A cons string; the first slice flattens it into a fresh 1 MiB sequential string.
  return `${HEAD}${i}:${FILLER}`;
}
const HEAD = "h".repeat(64);
/** 64 KiB of a fresh 1 MiB string, different for every i (equal strings could be shared). */
function sliceOfBig(i: number): string {
  return bigString(i).slice(HEAD.length - 16, HEAD.length - 16 + SLICE);
}

/** A fresh 1 MiB Float32Array per call: the buffer a view can pin. */
function bigFloats(i: number): Float32Array {
  const big = new Float32Array(256 * 1024);
  big[0] = i;
  return big;
}

/**
 * One 64 KiB Float32Array per 16 calls, as a batch's output: call i gets a 16-float view of
 * it. (A fresh buffer per call would spend the run zeroing buffers: the cache holds ~10^5.)
 */
let batch: Float32Array | undefined;
function batchView(i: number): Float32Array {
  if (i % 16 === 0 || batch === undefined) batch = new Float32Array(16 * 1024);
  const at = (i % 16) * 16;
  batch[at] = i;
  return batch.subarray(at, at + 16);
}

/** 200 characters of a fresh 16 KiB string: for keys, of which the cache holds ~10^5. */
const SMALL_FILLER = "x".repeat(16 * 1024);
function sliceOf16k(i: number): string {
  return `${HEAD}${i}:${SMALL_FILLER}`.slice(HEAD.length - 16, HEAD.length - 16 + 200);
}

function uniqueNames(i: number, count: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (let j = 0; j < count; j++) out[`k${i}_${j}`] = j;
  return out;
}

function sharedNames(i: number, count: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (let j = 0; j < count; j++) out[`field_${j}`] = i + j;
  return out;
}

const MIXED_RECORDS = 40;

export const shapes: Shape[] = [
  {
    name: "mixed values",
    description: "Float32Array 8–20 KiB, strings 4–9 KB, objects of 40 `{ label, score, id }`",
    api: "Cache",
    make(i) {
      switch (i % 3) {
        case 0:
          return new Float32Array(2048 + (i % 7) * 512);
        case 1:
          return `generated text ${i} `.repeat(200 + (i % 5) * 50);
        default:
          return {
            items: Array.from({ length: MIXED_RECORDS }, (_, j) => ({
              label: `class-${j}`,
              score: j / MIXED_RECORDS,
              id: i * MIXED_RECORDS + j,
            })),
            model: "resnet",
            latencyMs: i * 0.5,
          };
      }
    },
  },
  {
    name: "unique property names",
    description: "`{ k<i>_<j>: j }`, 16 names per object, unique across values",
    api: "cache(fn)",
    make: (i) => uniqueNames(i, 16),
  },
  {
    name: "unique property names, dictionary mode",
    description: "400 names per object, unique across values",
    api: "cache(fn)",
    make: (i) => uniqueNames(i, 400),
  },
  {
    name: "shared property names, dictionary mode",
    description: "400 names per object, the same in every value",
    api: "cache(fn)",
    make: (i) => sharedNames(i, 400),
  },
  {
    name: "unique property names from JSON.parse",
    description: "`JSON.parse('{\"user_<i>_<j>\": …}')`, 16 names per object",
    api: "cache(fn)",
    make(i) {
      const fields = Array.from({ length: 16 }, (_, j) => `"user_${i}_${j}":{"n":${j}}`);
      return JSON.parse(`{${fields.join(",")}}`);
    },
  },
  {
    name: "long property names",
    description: "8 unique 48-character names per object",
    api: "cache(fn)",
    make(i) {
      const out: Record<string, number> = {};
      for (let j = 0; j < 8; j++) out[`${String(i).padStart(40, "0")}_name_${j}`] = j;
      return out;
    },
  },
  {
    name: "slice of a big string",
    description: "`big.slice(a, a + 64 KiB)`, `big` a fresh 1 MiB string per call",
    api: "cache(fn)",
    make: sliceOfBig,
  },
  {
    name: "slice in an object",
    description: "`{ text: slice, id }`",
    api: "cache(fn)",
    make: (i) => ({ text: sliceOfBig(i), id: i }),
  },
  {
    name: "slice in an array",
    description: "`[slice, i]`",
    api: "cache(fn)",
    make: (i) => [sliceOfBig(i), i],
  },
  {
    name: "slice as a Map value",
    description: '`new Map([["text", slice]])`',
    api: "cache(fn)",
    make: (i) => new Map([["text", sliceOfBig(i)]]),
  },
  {
    name: "slice as a Map key",
    description: "`new Map([[slice, i]])`",
    api: "cache(fn)",
    make: (i) => new Map([[sliceOfBig(i), i]]),
  },
  {
    name: "slice in a Set",
    description: "`new Set([slice])`",
    api: "cache(fn)",
    make: (i) => new Set([sliceOfBig(i)]),
  },
  {
    name: "slice in a frozen object",
    description: "`Object.freeze({ text: slice })`",
    api: "cache(fn)",
    make: (i) => Object.freeze({ text: sliceOfBig(i) }),
  },
  {
    name: "slice inside a concatenation",
    description: "`slice + suffix` (a cons string holding a sliced string)",
    api: "cache(fn)",
    make: (i) => `${sliceOfBig(i)} (source ${i})`,
  },
  {
    name: "regex match group",
    description: "`/id=(\\w+)/.exec(big)[1]`, a 64 KiB group of a fresh 1 MiB input",
    api: "cache(fn)",
    make(i) {
      const big = `${bigString(i)} id=${i}${"w".repeat(SLICE)} end`;
      return /id=(\w+)/.exec(big)?.[1];
    },
  },
  {
    name: "slice as a manual Cache key",
    description: "`cache.set(slice, { n })`: the raw key is kept for `keys()`",
    api: "Cache",
    make: (i) => i,
    key: sliceOfBig,
  },
  {
    name: "slice as a cache(fn) argument",
    description:
      "`f(big.slice(a, a + 200))`, `big` a fresh 16 KiB string per call (the cache layer's key memo keeps up to 4,096 arguments as they are)",
    api: "cache(fn)",
    arg: sliceOf16k,
    make: (_, arg) => (arg as string).length,
  },
  {
    name: "slice inside a store key",
    description: "MemoryStore keys built as the cache layer builds them: `prefix + slice`",
    api: "MemoryStore",
    key: (i) => `\u00015:shape[1s200:${sliceOf16k(i)}`,
    make: (i) => i,
  },
  {
    name: "small view of a big buffer",
    description: "`batch.subarray(a, a + 16)`, a fresh 64 KiB `batch` per 16 calls",
    api: "cache(fn)",
    make: batchView,
    reset: () => {
      batch = undefined;
    },
  },
  {
    name: "view of a big buffer in an object",
    description: "`{ embedding: big.subarray(a, a + 16 Ki) }` (64 KiB of a 1 MiB buffer)",
    api: "cache(fn)",
    make: (i) => ({ embedding: bigFloats(i).subarray(1024, 1024 + 16 * 1024), id: i }),
  },
  {
    name: "small Buffer from the pool",
    description: '`Buffer.from("…64 bytes…")` (a view of an 8 KiB pool)',
    api: "cache(fn)",
    make: (i) => Buffer.from(`${i}`.padStart(64, "b")),
  },
  {
    name: "Map with many entries",
    description: "`new Map` of 1,000 number → number entries",
    api: "cache(fn)",
    make: (i) => new Map(Array.from({ length: 1000 }, (_, j) => [i * 1000 + j, j])),
  },
  {
    name: "Set with many members",
    description: "`new Set` of 1,000 numbers",
    api: "cache(fn)",
    make: (i) => new Set(Array.from({ length: 1000 }, (_, j) => i * 1000 + j)),
  },
  {
    name: "array with holes",
    description: "`new Array(4096)` with every 64th slot set",
    api: "cache(fn)",
    make(i) {
      const out = new Array<number>(4096);
      for (let j = 0; j < 4096; j += 64) out[j] = i + j;
      return out;
    },
  },
  {
    name: "sparse array",
    description: "`[]` with 16 items spread over indexes up to 1,000,000",
    api: "cache(fn)",
    make(i) {
      const out: number[] = [];
      for (let j = 0; j < 16; j++) out[j * 62_500] = i + j;
      return out;
    },
  },
  {
    name: "array built by push",
    description: "1,000 small integers pushed one by one (room to grow)",
    api: "cache(fn)",
    make(i) {
      const out: number[] = [];
      for (let j = 0; j < 1000; j++) out.push(i + j);
      return out;
    },
  },
  {
    name: "dates",
    description: "100 `Date`s",
    api: "cache(fn)",
    make: (i) => Array.from({ length: 100 }, (_, j) => new Date(i * 1000 + j)),
  },
  {
    name: "heap numbers",
    description: "objects of 8 double fields, 100 per value",
    api: "cache(fn)",
    make: (i) =>
      Array.from({ length: 100 }, (_, j) => ({
        a: i + 0.5,
        b: j + 0.25,
        c: 0.1,
        d: 0.2,
        e: 0.3,
        f: 0.4,
        g: 0.5,
        h: 0.6,
      })),
  },
  {
    name: "nested small objects",
    description: "200 `{ v: [j], next: {} }` records",
    api: "cache(fn)",
    make: (i) => Array.from({ length: 200 }, (_, j) => ({ v: [i + j], next: {} })),
  },
];

export interface ShapeResult {
  shape: string;
  budgetBytes: number;
  writes: number;
  entries: number;
  accountedBytes: number;
  heapGrowthBytes: number;
  growthOverBudget: number;
  evictions: number;
  rejected: number;
  seconds: number;
}

function heap(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error("run with node --expose-gc");
  for (let i = 0; i < 4; i++) gc();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

/** Writes `traffic` times what the cache holds, in values of `shape`, and measures. */
export async function measureShape(
  shape: Shape,
  budgetBytes: number,
  traffic: number,
): Promise<ShapeResult> {
  // Warm up the value maker and both APIs outside the measurement (code, shapes, caches).
  await fill(shape, budgetBytes, traffic, 1_000_000, 50);
  shape.reset?.();
  const before = heap();
  const started = performance.now();
  const { writes, stats, keep } = await fill(shape, budgetBytes, traffic, 0, MAX_WRITES);
  const seconds = (performance.now() - started) / 1000;
  shape.reset?.();
  const after = heap();
  if (keep === undefined) throw new Error("unreachable");
  return {
    shape: shape.name,
    budgetBytes,
    writes,
    entries: stats.entries,
    accountedBytes: stats.bytes,
    heapGrowthBytes: after - before,
    growthOverBudget: (after - before) / budgetBytes,
    evictions: stats.evictions,
    rejected: stats.rejected,
    seconds,
  };
}

interface Filled {
  writes: number;
  stats: { entries: number; bytes: number; evictions: number; rejected: number };
  /** The cache itself: measured while still alive. */
  keep: unknown;
}

/** At most this many writes, whatever the shape: an estimate of 0 would never evict. */
const MAX_WRITES = 4_000_000;
/** Values the cache refuses (too large) say all there is to say after this many. */
const REFUSED_ENOUGH = 100;

async function fill(
  shape: Shape,
  budgetBytes: number,
  traffic: number,
  offset: number,
  maxWrites: number,
): Promise<Filled> {
  const options = { maxSize: 0, maxMemory: budgetBytes };
  let capacity: number | undefined;
  let writes = 0;
  if (shape.api === "cache(fn)") {
    const arg = shape.arg;
    const fn = cache((x: unknown) => shape.make(x as number, x), options);
    for (let i = offset; writes < maxWrites; i++) {
      fn(arg === undefined ? i : arg(i));
      writes++;
      const { evictions, rejected } = fn.cache.stats();
      if (capacity === undefined && evictions > 0) capacity = writes;
      if (rejected >= REFUSED_ENOUGH) break;
      if (capacity !== undefined && writes >= traffic * capacity) break;
    }
    return { writes, stats: fn.cache.stats(), keep: fn };
  }
  if (shape.api === "MemoryStore") {
    const store = new MemoryStore(options);
    const scope = { namespace: "shapes" };
    let evictions = 0;
    store.subscribe(() => {
      evictions++;
    });
    for (let i = offset; writes < maxWrites; i++) {
      const key = shape.key === undefined ? `k${i}` : (shape.key(i) as string);
      store.setSync(key, scope, { value: shape.make(i), createdAt: Date.now() });
      writes++;
      if (capacity === undefined && evictions > 0) capacity = writes;
      if (capacity !== undefined && writes >= traffic * capacity) break;
    }
    const stats = { entries: store.count, bytes: store.bytes, evictions, rejected: 0 };
    return { writes, stats, keep: store };
  }
  const manual = new Cache<{ value: unknown }>(options);
  for (let i = offset; writes < maxWrites; i++) {
    await manual.set(shape.key === undefined ? i : shape.key(i), { value: shape.make(i) });
    writes++;
    const { evictions, rejected } = manual.stats();
    if (capacity === undefined && evictions > 0) capacity = writes;
    if (rejected >= REFUSED_ENOUGH) break;
    if (capacity !== undefined && writes >= traffic * capacity) break;
  }
  return { writes, stats: manual.stats(), keep: manual };
}

/**
 * Runs `measureShape` for the shape named `name` in a fresh `node --expose-gc` process (this
 * file as its script) and resolves to its result.
 */
export function measureInChild(
  name: string,
  budgetBytes: number,
  traffic: number,
): Promise<ShapeResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        "--expose-gc",
        // Room to show how far over a shape goes when it does not hold.
        "--max-old-space-size=8192",
        "--import",
        "tsx",
        fileURLToPath(import.meta.url),
        name,
        String(budgetBytes),
        String(traffic),
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk;
    });
    child.stderr.on("data", (chunk: Buffer) => {
      err += chunk;
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve(JSON.parse(out) as ShapeResult);
      else reject(new Error(`memory-shapes "${name}" exited with ${code}: ${err.slice(-2000)}`));
    });
  });
}

const isMain = process.argv[1] === fileURLToPath(import.meta.url);
if (isMain) {
  const [name, budgetText, trafficText = "10"] = process.argv.slice(2);
  const shape = shapes.find((s) => s.name === name);
  if (shape === undefined || budgetText === undefined) {
    throw new Error(
      `usage: memory-shapes.ts SHAPE BUDGET_BYTES [TRAFFIC]; shapes: ${shapes.map((s) => s.name).join(", ")}`,
    );
  }
  const result = await measureShape(shape, Number(budgetText), Number(trafficText));
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
