/**
 * Encryption at rest: a hit through `cache(fn)` on a SqliteStore with and without a SealedStore
 * in front (no memory tier, so every hit reads the file and, sealed, opens the value), and the
 * store's own get and set beside it. Contenders run interleaved in each round, so machine noise
 * falls on both; the figures are medians of the rounds, and the ratio the median of the rounds'
 * ratios.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cache } from "../../src/index.js";
import { SqliteStore } from "../../src/sqlite.js";
import { SealedStore } from "../../src/store/sealed.js";
import type { Store } from "../../src/store/store.js";
import { formatNs, measureAsync } from "../measure.js";
import { middle, type Report, type Section } from "../report.js";

const ROUNDS = 5;
const KEYS = 100;
/** About what a chat answer record weighs: 1 KiB of text and a few fields. */
const answer = (i: number) => ({
  id: `chatcmpl-${i}`,
  text: `answer ${i} `.repeat(80).slice(0, 1024),
  usage: { prompt_tokens: 120, completion_tokens: 240 },
});

type Op = "hit" | "get" | "set";
const CONTENDERS = ["SqliteStore", "SealedStore(SqliteStore)"] as const;

async function round(dir: string, n: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const stores: Store[] = [
    new SqliteStore({ path: join(dir, `plain-${n}.db`) }),
    new SealedStore(new SqliteStore({ path: join(dir, `sealed-${n}.db`) }), {
      keys: randomBytes(32).toString("base64"),
    }),
  ];
  const prompts = Array.from({ length: KEYS }, (_, i) => `a prompt of some length, number ${i}`);
  const fns = stores.map((store) =>
    cache(async (prompt: string) => answer(prompt.length), { store, namespace: "bench" }),
  );
  for (const fn of fns) for (const prompt of prompts) await fn(prompt);
  const scope = { namespace: "raw" };
  for (const store of stores)
    for (let i = 0; i < KEYS; i++)
      await store.set(`k${i}`, scope, { value: answer(i), createdAt: Date.now() });
  const ops: [Op, (index: number) => (i: number) => Promise<unknown>][] = [
    [
      "hit",
      (c) => {
        const fn = fns[c] as (prompt: string) => Promise<unknown>;
        return (i) => fn(prompts[i % KEYS] as string);
      },
    ],
    ["get", (c) => (i) => (stores[c] as Store).get(`k${i % KEYS}`, scope)],
    [
      "set",
      (c) => (i) =>
        (stores[c] as Store).set(`k${i % KEYS}`, scope, {
          value: answer(i),
          createdAt: Date.now(),
        }),
    ],
  ];
  for (const [op, make] of ops) {
    for (const [c, name] of CONTENDERS.entries()) {
      const result = await measureAsync(`${name} ${op}`, make(c), {
        batch: 500,
        samples: 15,
        warmup: 3,
      });
      out.set(`${name} ${op}`, result.medianNs);
    }
  }
  for (const store of stores) await store.close();
  return out;
}

export const sealed: Section = {
  name: "sealed",
  title: `encryption at rest: SqliteStore with and without SealedStore (${ROUNDS} interleaved rounds)`,
  async run(report: Report) {
    const dir = mkdtempSync(join(tmpdir(), "infercache-bench-sealed-"));
    try {
      const rounds: Map<string, number>[] = [];
      for (let n = 0; n < ROUNDS; n++) rounds.push(await round(dir, n));
      const median = (name: string) => middle(rounds.map((r) => r.get(name) as number));
      const ratio = (op: Op) =>
        middle(
          rounds.map(
            (r) =>
              (r.get(`SealedStore(SqliteStore) ${op}`) as number) /
              (r.get(`SqliteStore ${op}`) as number),
          ),
        );
      const lines = [
        "| operation (1 KiB answer) | SqliteStore | SealedStore(SqliteStore) | sealed / plain |",
        "|---|---:|---:|---:|",
      ];
      const label: Record<Op, string> = {
        hit: "`cache(fn)` hit",
        get: "store get",
        set: "store set",
      };
      for (const op of ["hit", "get", "set"] as const) {
        lines.push(
          `| ${label[op]} | ${formatNs(median(`SqliteStore ${op}`))} | ${formatNs(median(`SealedStore(SqliteStore) ${op}`))} | ${ratio(op).toFixed(2)}x |`,
        );
      }
      console.log(lines.join("\n"));
      report.add(`## Encryption at rest

A hit through \`cache(fn)\` on a SqliteStore (no memory tier: every hit reads the file), with and
without \`SealedStore\` in front (AES-256-GCM, keys as HMAC-SHA256), and the store's own get and
set. Medians of ${ROUNDS} interleaved rounds (each the median of 15 samples of 500 calls), the
ratio the median of the rounds' ratios.

${lines.join("\n")}

Sealing costs an HMAC of the key and a GCM open (or seal) per call, plus the envelope of the
sealed value inside the store's own.`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
