import { middle, type Report, type Section } from "../report.js";
import {
  CONTENDERS,
  jsonFileRows,
  lockedWrites,
  type OpsRow,
  rowName,
  sessionClear,
  storeRounds,
} from "../sqlite.js";

const ROUNDS = 3;

const us = (value: number) => (Number.isNaN(value) ? "—" : `${value.toFixed(1)} µs`);
const ops = (value: number) => Math.round(value).toLocaleString("en-US");

export const sqlite: Section = {
  name: "sqlite",
  title: `SQLite (${ROUNDS} interleaved rounds)`,
  async run(report: Report) {
    const rounds = await storeRounds(ROUNDS);
    const row = (name: string): OpsRow => {
      const all = rounds.map((r) => r.rows.get(name));
      if (all.some((r) => r === undefined)) throw new Error(`no row ${name}`);
      const rows = all as OpsRow[];
      return {
        name,
        opsPerSec: middle(rows.map((r) => r.opsPerSec)),
        medianUs: middle(rows.map((r) => r.medianUs)),
        cpuUs: middle(rows.map((r) => r.cpuUs)),
      };
    };
    /** SqliteStore's speed as a fraction of raw better-sqlite3's, the median of per-round ratios. */
    const ratio = (op: "get" | "set", size: string) =>
      middle(
        rounds.map(
          (r) =>
            (r.rows.get(rowName("SqliteStore", op, size))?.opsPerSec ?? 0) /
            (r.rows.get(rowName("raw better-sqlite3", op, size))?.opsPerSec ?? 1),
        ),
      );
    /** The same ratio in CPU time: raw's CPU per call over SqliteStore's. */
    const cpuRatio = (op: "get" | "set", size: string) =>
      middle(
        rounds.map(
          (r) =>
            (r.rows.get(rowName("raw better-sqlite3", op, size))?.cpuUs ?? 0) /
            (r.rows.get(rowName("SqliteStore", op, size))?.cpuUs ?? 1),
        ),
      );
    const targets = [
      ["get", "100 B", 0.8],
      ["get", "64 KiB", 0.7],
      ["set", "100 B", 0.6],
      ["set", "64 KiB", 0.6],
    ] as const;
    for (const [op, size, target] of targets) {
      const r = ratio(op, size);
      report.check(
        `SqliteStore ${op}, ${size} >= ${target}x raw better-sqlite3`,
        r >= target,
        `${r.toFixed(2)}x (median of ${ROUNDS} rounds; in CPU time ${cpuRatio(op, size).toFixed(2)}x)`,
      );
    }
    const smallGet = row(rowName("SqliteStore", "get", "100 B")).opsPerSec;
    const smallSet = row(rowName("SqliteStore", "set", "100 B")).opsPerSec;
    report.check(
      "SqliteStore small get >= 100k ops/s",
      smallGet >= 100_000,
      `${ops(smallGet)} ops/s`,
    );
    report.check(
      "SqliteStore small set >= 20k ops/s",
      smallSet >= 20_000,
      `${ops(smallSet)} ops/s`,
    );

    const lines = [
      `| operation | ${CONTENDERS.join(" | ")} | SqliteStore / raw | in CPU time |`,
      `|---|${CONTENDERS.map(() => "---:").join("|")}|---:|---:|`,
    ];
    for (const size of ["100 B", "64 KiB"]) {
      for (const op of ["get", "set"] as const) {
        const cells = CONTENDERS.map((c) => {
          const r = row(rowName(c, op, size));
          return `${us(r.medianUs)} (CPU ${us(r.cpuUs)})`;
        });
        lines.push(
          `| ${op}, ${size} | ${cells.join(" | ")} | ${ratio(op, size).toFixed(2)}x | ${cpuRatio(op, size).toFixed(2)}x |`,
        );
      }
    }

    const waiting = await lockedWrites(1000, 5000);
    const refused = await lockedWrites(1000, 300);
    const lockRow = (r: typeof waiting) =>
      `| ${r.holdMs} ms | ${r.busyTimeoutMs} ms | ${r.writes} | ${r.stored} | ${r.refused} | ${r.medianMs.toFixed(0)} ms | ${r.maxMs.toFixed(0)} ms | ${r.stallMs.toFixed(1)} ms |`;
    const stall = Math.max(waiting.stallMs, refused.stallMs);
    report.check(
      "SqliteStore: another process's write lock stalls the event loop <= 50 ms",
      stall <= 50,
      `${stall.toFixed(1)} ms longest stall`,
    );

    const sessions = await sessionClear();
    report.check(
      "SqliteStore: ending a session at 300k rows reads only its rows",
      sessions.withIndexMs < 1,
      `${sessions.withIndexMs.toFixed(2)} ms (without the index: ${sessions.withoutIndexMs.toFixed(1)} ms)`,
    );

    const json = await jsonFileRows();
    report.add(`## SqliteStore vs raw better-sqlite3, lmdb and Keyv + @keyv/sqlite

One file on local disk per contender. Raw better-sqlite3 is a bare \`SELECT value FROM kv WHERE
key = ?\` and a bare upsert on a two-column table, with SqliteStore's pragmas (WAL,
\`synchronous = NORMAL\`); lmdb is \`open({ noSync: true })\` (no fsync per commit, as SQLite's
WAL with NORMAL; with lmdb's default an awaited put waited for an fsync, milliseconds here), get
and an awaited put (msgpack values); Keyv is \`new Keyv({ store: new KeyvSqlite(…) })\`. Every call
is awaited in the same loop (raw better-sqlite3 and lmdb's get are wrapped in an async function).
Values of 100 B (a string; 10,000 keys) and 64 KiB (a Buffer; 500 keys). Sets replace existing
keys with a different value each time: SQLite skips writing a page an update leaves unchanged,
so a "bare upsert" of a constant value measures a fraction of a real write (5 µs of CPU against
11.5 µs for a changing 100 B value). Each cell is the median latency and, in brackets, the
process's CPU time per call (user + system, all threads, GC included): on a shared machine the
latency also counts other processes' turns. Medians of ${ROUNDS} interleaved rounds; the ratio
columns are medians of the per-round ratios, raw's figure over SqliteStore's (1.00x = as fast as
raw). What SqliteStore adds to a get is the envelope's check and decode: a CRC-32 of the payload
(~14 µs at 64 KiB on this CPU, \`zlib.crc32\` without SIMD) and a JSON.parse or V8 deserialize.

${lines.join("\n")}

### Writes while another process holds the write lock

A child process holds \`BEGIN IMMEDIATE\` on the file for 1 s while this process writes a 100 B
entry every 10 ms. Writes wait asynchronously (back-off, in order) and land once the lock is
released, or are refused when \`busyTimeoutMs\` passes; the event loop's longest stall is measured
with \`monitorEventLoopDelay\`. Before this change each write slept the event loop for up to
\`busyTimeoutMs\` (5 s) and opening a store during the lock threw \`SQLITE_BUSY\`.

| lock held | busyTimeoutMs | writes | stored | refused | median latency | max latency | longest stall |
|---|---:|---:|---:|---:|---:|---:|---:|
${lockRow(waiting)}
${lockRow(refused)}

### Ending a session among ${ops(sessions.rows)} rows

\`clear({ session })\` (what the gateway runs when a session's event stream ends) of one session's
${sessions.sessionRows} rows, median of 20 sessions: ${sessions.withIndexMs.toFixed(2)} ms with the
session index (schema 2), ${sessions.withoutIndexMs.toFixed(1)} ms on a copy of the file without it
(schema 1's plan, a scan of every row). \`size({ session })\`: ${sessions.sizeWithIndexMs.toFixed(2)} ms.

### The seed's JSON file

The seed's file cache (\`load_cache\` + \`json.dump(indent=2)\` on every call), written the same way
in TypeScript: every lookup parses the whole file and every set rewrites it.

| operation | ops/s | median latency |
|---|---:|---:|
${json.map((r) => `| ${r.name} | ${ops(r.opsPerSec)} | ${us(r.medianUs)} |`).join("\n")}`);
  },
};
