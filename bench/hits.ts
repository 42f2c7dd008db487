/**
 * Cache-hit latency of `f(prompt: 64-char string, temperature: number)`, side by side:
 * infercache, memoizee, p-memoize and lru-cache keyed by JSON.stringify(args).
 */
import { LRUCache } from "lru-cache";
import memoize from "memoizee";
import pMemoize from "p-memoize";
import { cache } from "../src/index.js";
import { measureAsync, measureSync, type Result } from "./measure.js";

const prompt64 = "Summarise this article in three sentences, keeping every name.  ";
if (prompt64.length !== 64)
  throw new Error(`the prompt must be 64 characters, is ${prompt64.length}`);
const temperature = 0.7;
const model = (p: string, t: number) => `${p.length}:${t}`;
const modelAsync = async (p: string, t: number) => `${p.length}:${t}`;

const byJson = (args: ArrayLike<unknown>) => JSON.stringify(Array.from(args));

/** The contenders of the issue: every peer keyed by JSON.stringify(args), as content keys. */
export function syncHits(): Result[] {
  const ours = cache(model);
  const memoizeeJson = memoize(model, { normalizer: byJson });
  const pMemo = pMemoize(modelAsync, { cacheKey: byJson });
  const lru = new LRUCache<string, string>({ max: 128 });
  const lruMemo = (p: string, t: number) => {
    const key = JSON.stringify([p, t]);
    let value = lru.get(key);
    if (value === undefined) {
      value = model(p, t);
      lru.set(key, value);
    }
    return value;
  };
  for (const f of [ours, memoizeeJson, lruMemo, pMemo]) f(prompt64, temperature);
  return [
    measureSync("infercache cache(fn)", () => ours(prompt64, temperature)),
    measureSync("memoizee, key JSON.stringify(args)", () => memoizeeJson(prompt64, temperature)),
    measureSync("lru-cache, key JSON.stringify(args)", () => lruMemo(prompt64, temperature)),
    // p-memoize has no synchronous mode: its call returns a promise and resolves the hit in
    // microtasks, so the sync table times the call itself (the work left to microtasks is not
    // counted, which flatters it); the async table below awaits it.
    measureSync("p-memoize, key JSON.stringify(args) (call only)", () =>
      pMemo(prompt64, temperature),
    ),
  ];
}

/**
 * For the record: memoizee's own modes. The default compares arguments by identity (a new but
 * equal Float32Array misses) and scans a list per argument, so it is quick with one entry and
 * slows as entries grow; `primitive` joins String(arg) (so 1 and "1" collide). Shown with one
 * cached input and with a working set of 100 prompts, hit in turn.
 */
export function workingSetHits(): Result[] {
  const prompts = Array.from({ length: 100 }, (_, i) => `${i} ${prompt64}`.slice(0, 64));
  const ours = cache(model);
  const ours100 = cache(model);
  const memoizeeDefault = memoize(model);
  const memoizeeDefault100 = memoize(model);
  const memoizeePrimitive100 = memoize(model, { primitive: true });
  const memoizeeJson100 = memoize(model, { normalizer: byJson });
  ours(prompt64, temperature);
  memoizeeDefault(prompt64, temperature);
  for (const p of prompts)
    for (const f of [ours100, memoizeeDefault100, memoizeePrimitive100, memoizeeJson100])
      f(p, temperature);
  const pick = (i: number) => prompts[i % 100] as string;
  return [
    measureSync("infercache, 1 entry", () => ours(prompt64, temperature)),
    measureSync("memoizee default (identity), 1 entry", () =>
      memoizeeDefault(prompt64, temperature),
    ),
    measureSync("infercache, 100 entries", (i) => ours100(pick(i), temperature)),
    measureSync("memoizee default (identity), 100 entries", (i) =>
      memoizeeDefault100(pick(i), temperature),
    ),
    measureSync("memoizee { primitive: true }, 100 entries", (i) =>
      memoizeePrimitive100(pick(i), temperature),
    ),
    measureSync("memoizee JSON.stringify, 100 entries", (i) =>
      memoizeeJson100(pick(i), temperature),
    ),
  ];
}

export async function asyncHits(): Promise<Result[]> {
  const ours = cache(modelAsync);
  const theirs = pMemoize(modelAsync, { cacheKey: byJson });
  await ours(prompt64, temperature);
  await theirs(prompt64, temperature);
  return [
    await measureAsync("infercache cache(async fn)", () => ours(prompt64, temperature)),
    await measureAsync("p-memoize, key JSON.stringify(args)", () => theirs(prompt64, temperature)),
  ];
}
