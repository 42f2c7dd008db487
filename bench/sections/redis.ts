import {
  CONTENDERS,
  type ContenderName,
  downLatency,
  ROWS,
  type Round,
  rowName,
  storeRounds,
} from "../redis.js";
import { middle, type Report, type Section } from "../report.js";

const ROUNDS = 3;
const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

export const redis: Section = {
  name: "redis",
  title: `Redis (${ROUNDS} interleaved rounds)`,
  async run(report: Report) {
    const rounds: Round[] = await storeRounds(ROUNDS);
    const median = (row: string, contender: ContenderName) =>
      middle(rounds.map((round) => round[row]?.[contender] ?? Number.NaN));
    /** The median over rounds of a per-round ratio (rounds ran the contenders side by side). */
    const ratio = (row: string, ours: ContenderName, theirs: (r: Round) => number) =>
      middle(rounds.map((round) => (round[row]?.[ours] ?? Number.NaN) / theirs(round)));
    const ours: ContenderName = "RedisStore (node-redis)";
    const lines: string[] = [];
    for (const row of ROWS) {
      const name = rowName(row);
      const vsKeyv = ratio(name, ours, (r) => r[name]?.["Keyv + @keyv/redis"] ?? Number.NaN);
      const fastestRaw = (r: Round) =>
        Math.max(r[name]?.["raw node-redis"] ?? 0, r[name]?.["raw ioredis"] ?? 0);
      const vsRaw = ratio(name, ours, fastestRaw);
      report.check(
        `RedisStore ${name}: >= 1x Keyv + @keyv/redis and >= 0.8x the fastest raw client`,
        vsKeyv >= 1 && vsRaw >= 0.8,
        `${vsKeyv.toFixed(2)}x Keyv, ${vsRaw.toFixed(2)}x fastest raw (median of ${ROUNDS} rounds)`,
      );
      const cells = CONTENDERS.map((contender) => fmt(median(name, contender)));
      lines.push(
        `| ${name} | ${cells.join(" | ")} | ${vsKeyv.toFixed(2)}x | ${vsRaw.toFixed(2)}x |`,
      );
    }
    const latency = await downLatency();
    for (const row of latency.filter((r) => r.name.includes("down"))) {
      report.check(
        `${row.name}: added latency p90 under 5 ms`,
        row.p90Ms < 5,
        `p50 ${row.p50Ms.toFixed(3)} ms, p90 ${row.p90Ms.toFixed(3)} ms`,
      );
    }
    report.add(`## RedisStore vs raw clients and Keyv + @keyv/redis

A redis-server on loopback started by the benchmark; ops/s, the median of ${ROUNDS} interleaved
rounds (each round runs every contender on every row, in a rotated order). Values are strings
of 100 B and 64 KiB; sequential calls, and 64 calls in flight. RedisStore does more per call than
a raw GET/SET: an envelope with a checksum around a V8-serialized entry, and on a set an index
member (a batched ZADD in the same round trip) for scoped clears and listings. RedisStore
(node-redis) is \`{ url }\` (node-redis is the default client); RedisStore (ioredis) is
\`{ client: new Redis(url) }\`. "envelope only" is RedisStore's floor: the same envelope
(encodeEntry / decodeEntry) over node-redis's \`sendCommand\`, with no index, no breaker, no
deadline. Raw clients use their usual API (\`client.get\`, \`client.set\`). Keyv + @keyv/redis
uses node-redis. The ratios compare RedisStore (node-redis) with Keyv and with the faster raw
client of the same round.

| operation | ${CONTENDERS.join(" | ")} | vs Keyv | vs fastest raw |
|---|${CONTENDERS.map(() => "---:").join("|")}|---:|---:|
${lines.join("\n")}

What a \`cache(fn, { store })\` call costs per call, fn a trivial async function, 2,000 calls one
after another (each call's own time; misses use new arguments every call). Down: a port with
nothing listening, and a TCP server that accepts and never answers; the store's breaker opens
at the first failure, so the first call pays at most one deadline (300 ms) and the rest run
uncached at once.

| RedisStore | p50 per call | p90 per call |
|---|---:|---:|
${latency.map((r) => `| ${r.name} | ${r.p50Ms.toFixed(3)} ms | ${r.p90Ms.toFixed(3)} ms |`).join("\n")}`);
  },
};
