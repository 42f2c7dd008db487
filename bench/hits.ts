/**
 * Cache-hit latency, side by side: `f(prompt: 64-char string, temperature: number)` against
 * memoizee, p-memoize and lru-cache keyed by JSON.stringify(args); and `f(request)` with one
 * parsed chat request against lru-cache keyed by stable stringifiers and by JSON.stringify(args).
 */
import fastJsonStableStringify from "fast-json-stable-stringify";
import { LRUCache } from "lru-cache";
import memoize from "memoizee";
import pMemoize from "p-memoize";
import safeStableStringify from "safe-stable-stringify";
import { cache } from "../src/index.js";
import { keep, measureAsync, measureSync, type Result } from "./measure.js";

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

/**
 * A parsed chat request as a gateway or an SDK wrapper receives it: model, a system prompt, a
 * few turns with a tool call and its result, sampling settings and two tool schemas. `variant`
 * changes the last user turn, so a working set holds distinct requests of the same shape.
 */
export function chatRequest(variant: number): Record<string, unknown> {
  return JSON.parse(
    JSON.stringify({
      model: "gpt-4o-mini",
      messages: [
        {
          role: "system",
          content:
            "You are a helpful assistant that answers questions about the weather. Be concise, name your sources, and never invent a forecast you cannot back up with data from a tool call. When the user asks about several cities, answer for each in turn.",
        },
        {
          role: "user",
          content:
            "What's the weather like in Paris today, and should I take an umbrella when I go out this evening around seven? I will be walking for about an hour.",
        },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            {
              id: "call_abc123",
              type: "function",
              function: { name: "get_weather", arguments: '{"city":"Paris","unit":"celsius"}' },
            },
          ],
        },
        {
          role: "tool",
          tool_call_id: "call_abc123",
          content: '{"temperature":14,"conditions":"light rain","precipitation_probability":0.8}',
        },
        { role: "user", content: `Thanks. And tomorrow morning, around ${variant % 24}:00?` },
      ],
      temperature: 0.2,
      top_p: 1,
      max_tokens: 512,
      tools: [
        {
          type: "function",
          function: {
            name: "get_weather",
            description: "Get the current weather and the forecast for a city",
            parameters: {
              type: "object",
              properties: {
                city: { type: "string", description: "The city name" },
                unit: { type: "string", enum: ["celsius", "fahrenheit"] },
                when: { type: "string", description: "today, tomorrow, or an ISO date" },
              },
              required: ["city"],
            },
          },
        },
        {
          type: "function",
          function: {
            name: "get_time",
            description: "Get the local time in a city",
            parameters: {
              type: "object",
              properties: { city: { type: "string" } },
              required: ["city"],
            },
          },
        },
      ],
      tool_choice: "auto",
      response_format: { type: "text" },
      seed: 42 + variant,
    }),
  ) as Record<string, unknown>;
}

/** Requests in the working set: every contender holds the same number of entries. */
export const OBJECT_ENTRIES = 100;

/**
 * A hit of `f(request)` with one parsed chat request (~1.6 KB of JSON), each contender holding
 * the same 100 distinct requests and hit in turn. The peers are lru-cache keyed by the two
 * stable stringifiers (content keys that ignore key order, as ours does) and by JSON.stringify.
 */
export function objectHits(): Result[] {
  const requests = Array.from({ length: OBJECT_ENTRIES }, (_, i) => chatRequest(i));
  const answer = (request: Record<string, unknown>) => (request.seed as number) + 1;
  const lruBy = (keyOf: (args: unknown[]) => string) => {
    const lru = new LRUCache<string, number>({ max: OBJECT_ENTRIES * 2 });
    return (request: Record<string, unknown>) => {
      const key = keyOf([request]);
      let value = lru.get(key);
      if (value === undefined) {
        value = answer(request);
        lru.set(key, value);
      }
      return value;
    };
  };
  const ours = cache(answer);
  const safe = lruBy((args) => safeStableStringify(args) as string);
  const fast = lruBy((args) => fastJsonStableStringify(args));
  const json = lruBy((args) => JSON.stringify(args));
  for (const f of [ours, safe, fast, json]) for (const request of requests) f(request);
  const pick = (i: number) => requests[i % OBJECT_ENTRIES] as Record<string, unknown>;
  return measureInterleaved([
    ["infercache cache(fn)", (i) => ours(pick(i))],
    ["lru-cache, key safeStableStringify(args)", (i) => safe(pick(i))],
    ["lru-cache, key fastJsonStableStringify(args)", (i) => fast(pick(i))],
    ["lru-cache, key JSON.stringify(args)", (i) => json(pick(i))],
  ]);
}

/**
 * Like `measureSync` for several contenders at once, for microsecond-scale calls on a shared
 * machine: samples are taken in turn (rotating who goes first), so a change of load between
 * samples reaches every contender alike, and each sample is timed in CPU time
 * (`process.cpuUsage`, this process's threads), so time spent descheduled does not count.
 */
function measureInterleaved(
  contenders: [string, (i: number) => unknown][],
  { batch = 400, samples = 120, warmup = 20_000 } = {},
): Result[] {
  let sink: unknown;
  for (const [, fn] of contenders) for (let i = 0; i < warmup; i++) sink = fn(i);
  const times = contenders.map(() => [] as number[]);
  for (let s = 0; s < samples; s++) {
    for (let k = 0; k < contenders.length; k++) {
      const at = (k + s) % contenders.length;
      const fn = (contenders[at] as [string, (i: number) => unknown])[1];
      const start = process.cpuUsage();
      for (let i = 0; i < batch; i++) sink = fn(i);
      const spent = process.cpuUsage(start);
      (times[at] as number[]).push(((spent.user + spent.system) * 1000) / batch);
    }
  }
  keep(sink);
  return contenders.map(([name], k) => summarize(name, times[k] as number[]));
}

function summarize(name: string, times: number[]): Result {
  const sorted = [...times].sort((a, b) => a - b);
  const at = (q: number) =>
    sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
  const medianNs = at(0.5);
  return { name, medianNs, p10Ns: at(0.1), p90Ns: at(0.9), opsPerSec: 1e9 / medianNs };
}
