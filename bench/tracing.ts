/**
 * The cost of a hit with tracing off and on, next to the code before tracing existed.
 *
 * "Before" is the `src/` of the commit before the one that added `src/base/tracing.ts`, taken
 * from git into a temporary folder and imported beside the current code, so both run in one
 * process on the same inputs (on a branch that merged other work since, "before" also lacks that
 * work). Three states of the current code: no OpenTelemetry at all (the API's global object
 * absent: what an application without it runs), a tracer provider registered (a
 * `BasicTracerProvider` whose processor drops spans, and an AsyncLocalStorage context manager, as
 * an SDK sets up), and after `trace.disable()` removed that provider again (the check is the
 * same as with no OpenTelemetry, but the JIT has seen the traced path).
 * Each state is timed in rounds, the contenders of a round in turn (a different order each
 * round), and the median of the rounds kept: the machine is shared, and turns spread its other
 * load over the contenders alike. A second copy of the code before runs as a control: the
 * ratio of two equal contenders is the noise floor of the figures.
 */

import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { context, trace } from "@opentelemetry/api";
import { BasicTracerProvider, NoopSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { AsyncLocalContextManager } from "../test/helpers/otel.js";
import { measureAsync, measureSync, type Result } from "./measure.js";

const prompt64 = "Summarise this article in three sentences, keeping every name.  ";
const temperature = 0.7;
const model = (p: string, t: number) => `${p.length}:${t}`;
const modelAsync = async (p: string, t: number) => `${p.length}:${t}`;

const ANSWER = JSON.stringify({
  id: "chatcmpl-bench",
  object: "chat.completion",
  created: 1,
  model: "gpt-4o-mini",
  choices: [
    {
      index: 0,
      message: { role: "assistant", content: "A cache keeps answers.", refusal: null },
      logprobs: null,
      finish_reason: "stop",
    },
  ],
  usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
});
const REQUEST = Buffer.from(
  JSON.stringify({
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: "What is a cache?" }],
    temperature: 0,
  }),
);

interface Contenders {
  sync: () => unknown;
  async: () => Promise<unknown>;
  lookup: () => Promise<unknown>;
}

interface SrcModules {
  index: {
    cache: (fn: (...args: never[]) => unknown) => (...args: unknown[]) => unknown;
  };
  pipeline: {
    LlmPipeline: new (
      options: Record<string, unknown>,
    ) => {
      handle(request: unknown): Promise<{ headers: Record<string, string> }>;
      lookup(request: unknown): Promise<unknown>;
    };
  };
}

async function contendersOf(src: string): Promise<Contenders> {
  const index = (await import(join(src, "index.ts"))) as SrcModules["index"];
  const { LlmPipeline } = (await import(join(src, "llm/pipeline.ts"))) as SrcModules["pipeline"];
  const sync = index.cache(model as (...args: never[]) => unknown);
  const asyncFn = index.cache(modelAsync as (...args: never[]) => unknown);
  sync(prompt64, temperature);
  await asyncFn(prompt64, temperature);
  const pipeline = new LlmPipeline({
    upstream: async () => ({
      status: 200,
      headers: { "content-type": "application/json" },
      body: {
        cancel: () => {},
        async *[Symbol.asyncIterator]() {
          yield Buffer.from(ANSWER);
        },
      },
    }),
  });
  const url = new URL("http://127.0.0.1:9/v1/chat/completions");
  const headers = { "content-type": "application/json", authorization: "Bearer bench" };
  const request = () => ({ method: "POST", url, headers, body: REQUEST, signal: undefined });
  await pipeline.handle(request());
  const primed = await pipeline.handle(request());
  if (primed.headers["x-infercache"] !== "hit") throw new Error("the bench pipeline did not hit");
  return {
    sync: () => sync(prompt64, temperature),
    async: () => asyncFn(prompt64, temperature) as Promise<unknown>,
    lookup: () => pipeline.lookup(request()),
  };
}

/** `src/` before tracing, from git; `undefined` outside a git checkout. */
function srcBeforeTracing(): { dir: string; commit: string; remove(): void } | undefined {
  try {
    const added = execFileSync(
      "git",
      ["log", "--diff-filter=A", "--format=%H", "--", "src/base/tracing.ts"],
      { encoding: "utf8" },
    )
      .trim()
      .split("\n")
      .pop();
    if (added === undefined || added === "") return undefined;
    const commit = execFileSync("git", ["rev-parse", "--short", `${added}^`], {
      encoding: "utf8",
    }).trim();
    // Inside the checkout, so its imports resolve as the current code's do.
    const dir = mkdtempSync(join(process.cwd(), "bench", ".before-tracing-"));
    execFileSync("sh", ["-c", `git archive ${commit} src | tar -x -C '${dir}'`]);
    return { dir: join(dir, "src"), commit, remove: () => rmSync(dir, { recursive: true }) };
  } catch {
    return undefined;
  }
}

export interface TracingRow {
  name: string;
  before: number | undefined;
  now: number;
  /** Median over rounds of now / before (each round's own pair). */
  ratio: number | undefined;
  /** The same for a second copy of the code before: how far two equal contenders drift apart. */
  control: number | undefined;
}

export interface TracingResults {
  commit: string | undefined;
  rounds: number;
  off: TracingRow[];
  on: TracingRow[];
  apiOnly: TracingRow[];
}

const median = (values: number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

async function rounds(
  label: string,
  before: [Contenders, Contenders] | undefined,
  now: Contenders,
  count: number,
): Promise<TracingRow[]> {
  const kinds = [
    ["cache(fn) sync hit", "sync"],
    ["cache(async fn) hit, awaited", "async"],
    ["gateway hit in-process: pipeline.lookup()", "lookup"],
  ] as const;
  const contenders: [string, Contenders][] = [["now", now]];
  if (before !== undefined) contenders.push(["before", before[0]], ["control", before[1]]);
  const rows: TracingRow[] = [];
  for (const [name, kind] of kinds) {
    const times = new Map<string, number[]>(contenders.map(([who]) => [who, []]));
    for (let round = 0; round < count; round++) {
      // A different order each round, so no contender always runs on a warmer machine.
      const order = contenders.map((_, i) => contenders[(i + round) % contenders.length]!);
      for (const [who, c] of order) {
        const result: Result =
          kind === "sync"
            ? measureSync(name, c.sync, { samples: 15 })
            : await measureAsync(name, c[kind], {
                samples: 10,
                batch: kind === "lookup" ? 500 : 2000,
              });
        times.get(who)!.push(result.medianNs);
      }
    }
    const nowTimes = times.get("now")!;
    const beforeTimes = times.get("before")!;
    const controlTimes = times.get("control")!;
    const ratios = (of: number[] | undefined) =>
      of === undefined || of.length === 0
        ? undefined
        : median(of.map((t, i) => t / (beforeTimes[i] as number)));
    rows.push({
      name: `${name} — ${label}`,
      before:
        beforeTimes === undefined || beforeTimes.length === 0 ? undefined : median(beforeTimes),
      now: median(nowTimes),
      ratio: beforeTimes === undefined ? undefined : ratios(nowTimes),
      control: beforeTimes === undefined ? undefined : ratios(controlTimes),
    });
  }
  return rows;
}

export async function tracingCost(count = 7): Promise<TracingResults> {
  if ((globalThis as Record<symbol, unknown>)[Symbol.for("opentelemetry.js.api.1")] !== undefined) {
    throw new Error("the tracing bench must run before anything registers OpenTelemetry globals");
  }
  const old = srcBeforeTracing();
  const copy = old === undefined ? undefined : srcBeforeTracing();
  try {
    const before =
      old === undefined || copy === undefined
        ? undefined
        : ([await contendersOf(old.dir), await contendersOf(copy.dir)] as [Contenders, Contenders]);
    const now = await contendersOf(join(process.cwd(), "src"));
    const off = await rounds("tracing off (no OpenTelemetry)", before, now, count);
    const provider = new BasicTracerProvider({ spanProcessors: [new NoopSpanProcessor()] });
    context.setGlobalContextManager(new AsyncLocalContextManager());
    trace.setGlobalTracerProvider(provider);
    let on: TracingRow[];
    try {
      on = await rounds("tracer installed (spans dropped)", before, now, count);
    } finally {
      trace.disable();
    }
    let apiOnly: TracingRow[];
    try {
      apiOnly = await rounds("after trace.disable() (no provider now)", before, now, count);
    } finally {
      context.disable();
    }
    return { commit: old?.commit, rounds: count, off, on, apiOnly };
  } finally {
    old?.remove();
    copy?.remove();
  }
}
