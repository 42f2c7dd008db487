/** `infercache stats | purge | export | import`: what is in a store, and moving it. */

import { createReadStream, createWriteStream, existsSync } from "node:fs";
import { createInterface } from "node:readline";
import { decodeEntry, encodeEntry } from "../store/envelope.js";
import type { Entry, Store } from "../store/store.js";
import {
  DEFAULT_NAMESPACE,
  DEFAULT_STORE,
  openStore,
  option,
  parse,
  STORE_OPTIONS,
  UsageError,
  type Values,
} from "./shared.js";

const STORE_HELP = `  --store SPEC          sqlite:PATH (default ${DEFAULT_STORE}), redis://HOST:PORT
  --namespace NAME      default gateway`;

export const STATS_HELP = `Usage: infercache stats [--store SPEC] [--namespace NAME] [--json]
       infercache stats --url http://127.0.0.1:8080 --admin-token T

Entries (and bytes, where the store knows them) of a namespace, or a running gateway's
counters (hits, misses, time and tokens saved) through its admin API.

${STORE_HELP}
  --url URL             a running gateway (env INFERCACHE_URL); with --admin-token
  --admin-token T       env INFERCACHE_ADMIN_TOKEN
  --json                print JSON
`;

export const PURGE_HELP = `Usage: infercache purge [--store SPEC] [--namespace NAME | --all]

Removes every entry of a namespace (default gateway), or of every namespace with --all.

${STORE_HELP}
  --all                 every namespace in the store
`;

export const EXPORT_HELP = `Usage: infercache export [--store SPEC] [--namespace NAME] [--out FILE]

Writes the shared entries of a namespace as JSON lines (to FILE, or standard output):
{"key", "namespace", "createdAt", "expiresAt"?, "computeMs"?, "value"} where the value is
plain JSON, else "envelope" (base64 of the checksummed binary form). Per-session entries are
not exported (sessions end with their connection).

${STORE_HELP}
  --out FILE            default standard output
`;

export const IMPORT_HELP = `Usage: infercache import FILE.jsonl [--store SPEC] [--namespace NAME]

Reads what export wrote into a store. Entries keep their namespace unless --namespace is
given. A bad line is reported with its number and skipped; entries already in the store are
only replaced by lines with the same key.

${STORE_HELP}
`;

export async function statsCommand(args: string[]): Promise<number> {
  const { values } = parse(args, {
    ...STORE_OPTIONS,
    url: { type: "string" },
    "admin-token": { type: "string" },
    json: { type: "boolean" },
  });
  if (values.help === true) {
    process.stdout.write(STATS_HELP);
    return 0;
  }
  const url = option(values, "url", "INFERCACHE_URL");
  if (url !== undefined) return gatewayStats(url, values);
  const namespace = option(values, "namespace") ?? DEFAULT_NAMESPACE;
  return withStore(values, async (store) => {
    const entries = await store.size({ namespace });
    const shared = await store.size({ namespace, session: null });
    const usage = store.usage?.(namespace);
    const report = {
      store: store.kind,
      namespace,
      entries,
      sessionEntries: entries - shared,
      ...(usage !== undefined && { bytes: usage.bytes }),
    };
    if (values.json === true) process.stdout.write(`${JSON.stringify(report)}\n`);
    else {
      process.stdout.write(
        `${store.kind} store, namespace ${namespace}: ${entries} entries (${report.sessionEntries} in sessions)` +
          `${usage !== undefined ? `, ${formatBytes(usage.bytes)}` : ""}\n`,
      );
    }
    return 0;
  });
}

async function gatewayStats(url: string, values: Values): Promise<number> {
  const token = option(values, "admin-token", "INFERCACHE_ADMIN_TOKEN");
  if (token === undefined)
    throw new UsageError(
      "stats --url needs the gateway's --admin-token (or INFERCACHE_ADMIN_TOKEN)",
    );
  const response = await fetch(`${url.replace(/\/+$/, "")}/admin/stats`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  if (!response.ok) {
    process.stderr.write(`the gateway answered ${response.status}: ${text}\n`);
    return 1;
  }
  const stats = JSON.parse(text) as Record<string, number>;
  if (values.json === true) process.stdout.write(`${text}\n`);
  else {
    const answered = (stats.hits ?? 0) + (stats.misses ?? 0) + (stats.coalesced ?? 0);
    const rate = answered === 0 ? 0 : ((stats.hits ?? 0) + (stats.coalesced ?? 0)) / answered;
    process.stdout.write(
      `hits ${stats.hits}, misses ${stats.misses}, coalesced ${stats.coalesced}, bypassed ${stats.bypassed}, errors ${stats.errors}\n` +
        `hit rate ${(rate * 100).toFixed(1)}%, time saved ${(stats.timeSavedSeconds ?? 0).toFixed(1)} s, tokens saved ${stats.tokensSaved}\n` +
        `entries ${stats.entries}, ${formatBytes(stats.bytes ?? 0)}\n`,
    );
  }
  return 0;
}

export async function purgeCommand(args: string[]): Promise<number> {
  const { values } = parse(args, { ...STORE_OPTIONS, all: { type: "boolean" } });
  if (values.help === true) {
    process.stdout.write(PURGE_HELP);
    return 0;
  }
  const namespace = option(values, "namespace");
  if (values.all === true && namespace !== undefined)
    throw new UsageError("pass --namespace NAME or --all, not both");
  return withStore(values, async (store) => {
    const removed = await store.clear(
      values.all === true ? undefined : { namespace: namespace ?? DEFAULT_NAMESPACE },
    );
    process.stdout.write(
      `removed ${removed} entries from ${values.all === true ? "every namespace" : `namespace ${namespace ?? DEFAULT_NAMESPACE}`}\n`,
    );
    return 0;
  });
}

export async function exportCommand(args: string[]): Promise<number> {
  const { values } = parse(args, { ...STORE_OPTIONS, out: { type: "string" } });
  if (values.help === true) {
    process.stdout.write(EXPORT_HELP);
    return 0;
  }
  const namespace = option(values, "namespace") ?? DEFAULT_NAMESPACE;
  const file = option(values, "out");
  return withStore(values, async (store) => {
    const out = file === undefined ? process.stdout : createWriteStream(file);
    let count = 0;
    for await (const [key, entry] of store.entries({ namespace })) {
      const line = `${JSON.stringify(exportLine(key, namespace, entry))}\n`;
      if (!out.write(line))
        await new Promise<void>((resolve) => out.once("drain", () => resolve()));
      count++;
    }
    if (out !== process.stdout)
      await new Promise<void>((resolve, reject) => {
        out.once("error", reject);
        out.end(resolve);
      });
    process.stderr.write(`exported ${count} entries of namespace ${namespace}\n`);
    return 0;
  });
}

export async function importCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, STORE_OPTIONS, 1);
  if (values.help === true) {
    process.stdout.write(IMPORT_HELP);
    return 0;
  }
  const file = positionals[0];
  if (file === undefined) throw new UsageError(`import needs a file.\n${IMPORT_HELP}`);
  const input = createReadStream(file);
  await new Promise<void>((resolve, reject) => {
    input.once("open", () => resolve());
    input.once("error", (error) =>
      reject(new UsageError(`cannot read \`${file}\`: ${error.message}`)),
    );
  });
  const target = option(values, "namespace");
  return withStore(values, async (store) => {
    let number = 0;
    let imported = 0;
    const problems: string[] = [];
    for await (const text of createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })) {
      number++;
      if (text.trim() === "") continue;
      let parsed: { key: string; namespace: string; entry: Entry };
      try {
        parsed = importLine(JSON.parse(text) as unknown);
      } catch (error) {
        problems.push(`line ${number}: ${(error as Error).message}`);
        continue;
      }
      const outcome = await store.set(
        parsed.key,
        { namespace: target ?? parsed.namespace },
        parsed.entry,
      );
      if (outcome === "stored") imported++;
      else problems.push(`line ${number}: not stored (${outcome})`);
    }
    process.stdout.write(`imported ${imported} entries, skipped ${problems.length}\n`);
    for (const problem of problems.slice(0, 20)) process.stderr.write(`  ${problem}\n`);
    return problems.length > 0 ? 1 : 0;
  });
}

/** One exported entry: plain JSON values as they are, anything else as a checksummed envelope. */
export function exportLine(key: string, namespace: string, entry: Entry): Record<string, unknown> {
  const line: Record<string, unknown> = { key, namespace, createdAt: entry.createdAt };
  if (entry.expiresAt !== undefined) line.expiresAt = entry.expiresAt;
  if (entry.computeMs !== undefined) line.computeMs = entry.computeMs;
  if (entry.rawKey === undefined && isPlainJson(entry.value)) line.value = entry.value;
  else line.envelope = encodeEntry(entry).toString("base64");
  return line;
}

export function importLine(value: unknown): { key: string; namespace: string; entry: Entry } {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new TypeError("expected a JSON object as written by infercache export");
  const line = value as Record<string, unknown>;
  if (typeof line.key !== "string" || line.key === "")
    throw new TypeError('"key" must be a non-empty string');
  if (typeof line.namespace !== "string" || line.namespace === "")
    throw new TypeError('"namespace" must be a non-empty string');
  if (typeof line.createdAt !== "number") throw new TypeError('"createdAt" must be a number (ms)');
  let entry: Entry;
  if (typeof line.envelope === "string") {
    entry = decodeEntry(Buffer.from(line.envelope, "base64"));
  } else if ("value" in line) {
    entry = { value: line.value, createdAt: line.createdAt };
    if (typeof line.computeMs === "number") entry.computeMs = line.computeMs;
  } else throw new TypeError('expected "value" or "envelope"');
  if (line.expiresAt !== undefined) {
    if (typeof line.expiresAt !== "number")
      throw new TypeError('"expiresAt" must be a number (ms)');
    entry.expiresAt = line.expiresAt;
  }
  return { key: line.key, namespace: line.namespace, entry };
}

function isPlainJson(value: unknown): boolean {
  if (value === null || typeof value === "string" || typeof value === "boolean") return true;
  if (typeof value === "number") return Number.isFinite(value) && !Object.is(value, -0);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++)
      if (!(i in value) || !isPlainJson(value[i])) return false;
    return true;
  }
  if (typeof value !== "object") return false;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  for (const item of Object.values(value)) if (!isPlainJson(item)) return false;
  return true;
}

async function withStore(values: Values, run: (store: Store) => Promise<number>): Promise<number> {
  const spec = option(values, "store") ?? DEFAULT_STORE;
  if (spec === "memory")
    throw new UsageError(
      "a memory store lives inside one process: pass --store sqlite:PATH or redis://…",
    );
  if (spec.startsWith("sqlite:") && !existsSync(spec.slice("sqlite:".length)))
    throw new UsageError(
      `no SQLite store at \`${spec.slice("sqlite:".length)}\`: pass the --store the gateway uses`,
    );
  const store = await openStore(spec);
  try {
    return await run(store);
  } finally {
    await store.close();
  }
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
