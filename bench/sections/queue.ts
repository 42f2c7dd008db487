import { execFileSync } from "node:child_process";
import { type BatchRow, hitBypass, queueOverhead } from "../queue.js";
import type { Report, Section } from "../report.js";

export const queue: Section = {
  name: "queue",
  title: "queue overhead and hit bypass",
  async run(report: Report) {
    const overhead = await queueOverhead();
    for (const concurrency of [1, 16]) {
      const at = overhead.filter((r) => r.concurrency === concurrency);
      const ours = at.find((r) => r.name.startsWith("infercache"))?.ms as number;
      for (const peer of at.filter((r) => !r.name.startsWith("infercache"))) {
        const ratio = ours / peer.ms;
        report.check(
          `Queue overhead at concurrency ${concurrency} within 1.5x of ${peer.name}`,
          ratio <= 1.5,
          `${ratio.toFixed(2)}x ${peer.name}'s time`,
        );
      }
    }
    const bypass = (await hitBypass())[0] as {
      label: string;
      p50Us: number;
      p90Us: number;
      p99Us: number;
      maxUs: number;
    };
    report.check(
      "Cache hits answer in microseconds while the queue is full (p99)",
      bypass.p99Us < 1000,
      `p99 ${bypass.p99Us.toFixed(1)} µs`,
    );
    report.add(`## Queue overhead: 100,000 trivial async jobs

Best of 5 interleaved rounds; all jobs submitted at once, then awaited.

| contender | concurrency | total |
|---|---:|---:|
${overhead.map((r) => `| ${r.name} | ${r.concurrency} | ${r.ms.toFixed(0)} ms |`).join("\n")}

## Cache hits while the queue is full

A cached function behind \`createQueue({ maxSize: 10 })\`: one slow call runs, ten wait, an
eleventh is rejected with QueueFullError; then 20,000 calls that hit are timed one by one.

| | p50 | p90 | p99 | max |
|---|---:|---:|---:|---:|
| ${bypass.label} | ${bypass.p50Us.toFixed(1)} µs | ${bypass.p90Us.toFixed(1)} µs | ${bypass.p99Us.toFixed(1)} µs | ${bypass.maxUs.toFixed(0)} µs |`);
  },
};

export const batching: Section = {
  name: "batching",
  title: "batching (embeddings upstream with node-llama-cpp, own process)",
  async run(report: Report) {
    // In a fresh process: after the store benchmarks, this one's heap and GC would slow the client.
    const batching = JSON.parse(
      execFileSync(process.execPath, ["--import", "tsx", "bench/batching-main.ts"], {
        encoding: "utf8",
      }),
    ) as BatchRow[];
    const rate = (name: string, concurrency: number) =>
      batching.find((r) => r.name.startsWith(name) && r.concurrency === concurrency)
        ?.perSecond as number;
    const speedup = rate("infercache batch", 1) / rate("unbatched", 1);
    report.check(
      "Batching at concurrency 1 >= 4x unbatched",
      speedup >= 4,
      `${speedup.toFixed(1)}x`,
    );
    report.add(`## Batching: single embedding requests against a loopback embeddings upstream

\`bench/embeddings-server.ts\` runs in its own process: real embeddings from node-llama-cpp with
the tiny GGUF (one thread), plus a fixed 20 ms per HTTP request for a
remote API's round trip. 64 callers each make single requests for 256 distinct texts (no cache
hits). DataLoader batches per tick and has no concurrency limit. Runs in its own process.

| contender | concurrency | HTTP requests | total | texts/s |
|---|---:|---:|---:|---:|
${batching.map((r) => `| ${r.name} | ${r.concurrency === 0 ? "unlimited" : r.concurrency} | ${r.requests} | ${r.ms.toFixed(0)} ms | ${r.perSecond.toFixed(0)} |`).join("\n")}`);
  },
};
