/**
 * The gateway benchmark's load generator, in its own process (the servers are in theirs). Reads
 * one job as JSON from stdin and prints its result as JSON:
 *
 *   throughput  autocannon: `connections` connections for `seconds`, POST of one body, at most
 *               `rate` requests/s overall when given (autocannon's `overallRate`)
 *   distinct    the same, every request a distinct body (all misses; for profiles)
 *   latency     one request at a time, interleaved over the targets (the order rotating every
 *               round), every request a distinct body of the same length: each request's time
 *               on one node:http keep-alive client, so the client's own cost cancels out
 *
 * Usage: node --import tsx bench/load.ts < job.json, or forked with IPC: every message a job,
 * every reply its result (one process for a whole benchmark, so no run pays a start-up).
 */
import http from "node:http";
import autocannon from "autocannon";

export interface ThroughputJob {
  kind: "throughput" | "distinct";
  url: string;
  body: string;
  headers: Record<string, string>;
  connections: number;
  seconds: number;
  rate?: number;
}

export interface LatencyTarget {
  name: string;
  url: string;
  headers: Record<string, string>;
  /** A header every answer must carry with this value (e.g. `x-infercache: miss`). */
  expect?: [string, string];
}

export interface LatencyJob {
  kind: "latency";
  targets: LatencyTarget[];
  warmup: number;
  samples: number;
  /** `stream: true` requests (answers read to the end). */
  stream?: boolean;
}

export type LoadJob = ThroughputJob | LatencyJob;

export interface ThroughputResult {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  requests: number;
  bytesPerResponse: number;
}

export interface LatencyResult {
  /** Milliseconds per request, by target name, in the order sent. */
  samples: Record<string, number[]>;
  /** Answers that were not 200 or lacked the expected header, by target name. */
  unexpected: Record<string, number>;
}

export type LoadResult<J extends LoadJob> = J extends LatencyJob ? LatencyResult : ThroughputResult;

/** A chat request whose body is distinct per `(tag, i)` and of the same length for every tag. */
export function missBody(tag: string, i: number, stream = false): string {
  return JSON.stringify({
    model: "bench",
    messages: [
      { role: "system", content: "You are a benchmark." },
      { role: "user", content: `miss ${tag.padEnd(12, ".")} ${String(i).padStart(8, "0")}` },
    ],
    temperature: 0,
    max_tokens: 200,
    ...(stream && { stream: true }),
  });
}

async function throughput(job: ThroughputJob): Promise<ThroughputResult> {
  const nonce = Math.random().toString(36).slice(2, 10);
  let i = 0;
  const result = await autocannon({
    url: job.url,
    method: "POST",
    headers: job.headers,
    body: job.body,
    connections: job.connections,
    duration: job.seconds,
    ...(job.rate !== undefined && { overallRate: job.rate }),
    ...(job.kind === "distinct" && {
      requests: [
        {
          setupRequest: (request: autocannon.Request) => ({
            ...request,
            body: missBody(nonce, i++),
          }),
        },
      ],
    }),
  });
  const total = result.requests.total;
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx + result.timeouts,
    requests: total,
    bytesPerResponse: total > 0 ? result.throughput.total / total : 0,
  };
}

async function latency(job: LatencyJob): Promise<LatencyResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const nonce = Math.random().toString(36).slice(2, 10);
  const one = (target: LatencyTarget, body: string) =>
    new Promise<{ ms: number; ok: boolean }>((resolve, reject) => {
      const started = performance.now();
      const request = http.request(
        target.url,
        {
          method: "POST",
          agent,
          headers: { ...target.headers, "content-length": Buffer.byteLength(body) },
        },
        (response) => {
          response.on("data", () => {});
          response.on("end", () => {
            const ms = performance.now() - started;
            const expect = target.expect;
            const ok =
              response.statusCode === 200 &&
              (expect === undefined || response.headers[expect[0]] === expect[1]);
            resolve({ ms, ok });
          });
          response.on("error", reject);
        },
      );
      request.on("error", reject);
      request.end(body);
    });
  const samples: Record<string, number[]> = {};
  const unexpected: Record<string, number> = {};
  for (const target of job.targets) {
    samples[target.name] = [];
    unexpected[target.name] = 0;
  }
  const n = job.targets.length;
  for (let round = 0; round < job.warmup + job.samples; round++) {
    for (let k = 0; k < n; k++) {
      const target = job.targets[(round + k) % n] as LatencyTarget;
      const { ms, ok } = await one(target, missBody(`${nonce}${k}`, round, job.stream));
      if (round < job.warmup) continue;
      (samples[target.name] as number[]).push(ms);
      if (!ok) unexpected[target.name] = (unexpected[target.name] ?? 0) + 1;
    }
  }
  agent.destroy();
  return { samples, unexpected };
}

const run = (job: LoadJob) => (job.kind === "latency" ? latency(job) : throughput(job));

// Run as the load process (imported, it only lends its types and `missBody`).
if (process.argv[1]?.endsWith("load.ts")) {
  if (process.send !== undefined) {
    process.on("message", (job: LoadJob) => {
      void run(job).then((result) => process.send?.(result));
    });
    process.on("disconnect", () => process.exit(0));
  } else {
    let input = "";
    for await (const chunk of process.stdin) input += String(chunk);
    process.stdout.write(JSON.stringify(await run(JSON.parse(input) as LoadJob)));
  }
}
