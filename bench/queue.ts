/**
 * Queue benchmarks: overhead against p-queue and p-limit; batching against unbatched calls and
 * DataLoader on a loopback embeddings upstream; cache hits while the queue is full.
 */
import { spawn } from "node:child_process";
import DataLoader from "dataloader";
import pLimit from "p-limit";
import PQueue from "p-queue";
import { cache, createQueue, limit, QueueFullError } from "../src/index.js";

export interface OverheadRow {
  name: string;
  concurrency: number;
  ms: number;
}

const JOBS = 100_000;
const trivial = async () => {};

async function time(run: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await run();
  return performance.now() - started;
}

export async function queueOverhead(): Promise<OverheadRow[]> {
  const rows: OverheadRow[] = [];
  for (const concurrency of [1, 16]) {
    const contenders: [string, () => Promise<unknown>][] = [
      [
        "infercache limit()",
        () => {
          const fn = limit(trivial, { concurrency });
          return Promise.all(Array.from({ length: JOBS }, () => fn()));
        },
      ],
      [
        "p-queue",
        () => {
          const queue = new PQueue({ concurrency });
          return Promise.all(Array.from({ length: JOBS }, () => queue.add(trivial)));
        },
      ],
      [
        "p-limit",
        () => {
          const run = pLimit(concurrency);
          return Promise.all(Array.from({ length: JOBS }, () => run(trivial)));
        },
      ],
    ];
    // Best of 5 interleaved rounds, so drift and GC hit every contender alike.
    const best = new Map<string, number>();
    for (let round = 0; round < 5; round++) {
      for (const [name, run] of contenders) {
        const ms = await time(run);
        best.set(name, Math.min(best.get(name) ?? Number.POSITIVE_INFINITY, ms));
      }
    }
    for (const [name] of contenders) rows.push({ name, concurrency, ms: best.get(name) as number });
  }
  return rows;
}

export interface BatchRow {
  name: string;
  concurrency: number;
  texts: number;
  requests: number;
  ms: number;
  perSecond: number;
}

async function startUpstream(): Promise<{ url: string; stop: () => void }> {
  const child = spawn(process.execPath, ["--import", "tsx", "bench/embeddings-server.ts"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise<string>((resolve) =>
    child.stdout.once("data", (chunk: Buffer) => resolve(chunk.toString().trim())),
  );
  return { url: `http://127.0.0.1:${port}/v1/embeddings`, stop: () => child.kill() };
}

export async function batchingBench(): Promise<BatchRow[]> {
  const upstream = await startUpstream();
  let requests = 0;
  const embedMany = async (texts: string[]): Promise<number[][]> => {
    requests++;
    const response = await fetch(upstream.url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "tiny", input: texts }),
    });
    const json = (await response.json()) as { data: { index: number; embedding: number[] }[] };
    return json.data.sort((a, b) => a.index - b.index).map((d) => d.embedding);
  };
  const rows: BatchRow[] = [];
  const texts = 256;
  let run = 0;
  const measure = async (
    name: string,
    concurrency: number,
    embedOne: (text: string) => Promise<number[]>,
  ) => {
    requests = 0;
    run++;
    const inputs = Array.from(
      { length: texts },
      (_, i) => `run ${run} text ${i}: the quick brown fox`,
    );
    const started = performance.now();
    // 64 callers, each making single requests one after another.
    let next = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < texts) await embedOne(inputs[next++] as string);
      }),
    );
    const ms = performance.now() - started;
    rows.push({ name, concurrency, texts, requests, ms, perSecond: (texts / ms) * 1000 });
  };
  try {
    await embedMany(["warm up"]);
    for (const concurrency of [1, 4]) {
      const unbatched = limit(async (text: string) => (await embedMany([text]))[0] as number[], {
        concurrency,
      });
      await measure("unbatched", concurrency, (text) => unbatched(text));
      const batched = limit(async (calls: [string][]) => embedMany(calls.map(([t]) => t)), {
        concurrency,
        batch: { maxBatchSize: 32, maxWaitMs: 2 },
      });
      await measure("infercache batch { maxBatchSize: 32, maxWaitMs: 2 }", concurrency, (text) =>
        batched(text),
      );
    }
    const loader = new DataLoader<string, number[]>((keys) => embedMany([...keys]), {
      maxBatchSize: 32,
      cache: false,
    });
    await measure("DataLoader { maxBatchSize: 32 } (no concurrency limit)", 0, (text) =>
      loader.load(text),
    );
  } finally {
    upstream.stop();
  }
  return rows;
}

export interface LatencyRow {
  label: string;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  maxUs: number;
}

/** A slow function fills its queue; cached calls keep answering. */
export async function hitBypass(): Promise<LatencyRow[]> {
  const queue = createQueue({ maxSize: 10 });
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const slow = cache(
    async (prompt: string) => {
      if (prompt !== "cached") await gate;
      return `answer to ${prompt}`;
    },
    { queue },
  );
  await slow("cached");
  const pending = Array.from({ length: 11 }, (_, i) => slow(`busy ${i}`).catch(() => undefined));
  await new Promise((resolve) => setImmediate(resolve));
  const full = await slow("one too many").catch((error: unknown) => error);
  if (!(full instanceof QueueFullError)) throw new Error("the queue should be full");
  const label = `cache hit while ${queue.running} runs and ${queue.waiting} wait (queue full)`;
  const samples: number[] = [];
  for (let i = 0; i < 20_000; i++) {
    const started = process.hrtime.bigint();
    await slow("cached");
    samples.push(Number(process.hrtime.bigint() - started) / 1000);
  }
  release();
  await Promise.all(pending);
  samples.sort((a, b) => a - b);
  const at = (q: number) =>
    samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] as number;
  return [
    {
      label,
      p50Us: at(0.5),
      p90Us: at(0.9),
      p99Us: at(0.99),
      maxUs: samples.at(-1) as number,
    },
  ];
}
