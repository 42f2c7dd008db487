/** `infercache stats | purge | export | import`: what is in a store, and moving it. */

import { existsSync } from "node:fs";
import {
  hasPurgeFields,
  type PurgeFields,
  purgeFilterOf,
} from "../server/gateway/purge-request.js";
import { decodeEntry, encodeEntry } from "../store/envelope.js";
import { isSealed, type SealedStore } from "../store/sealed.js";
import type { Entry, PurgeFilter, Store } from "../store/store.js";
import { type TextSink, writeFileAtomically } from "./atomic-file.js";
import { MAX_LINE_BYTES, openLines } from "./lines.js";
import {
  CommandError,
  DEFAULT_NAMESPACE,
  DEFAULT_STORE,
  ENCRYPTION_HELP,
  encryptionKeys,
  formatBytes,
  type OpenStoreOptions,
  openPlainStore,
  option,
  parse,
  reasonOf,
  STORE_OPTIONS,
  sealedView,
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

export const PURGE_HELP = `Usage: infercache purge [--store SPEC] [--namespace NAME | --all] [FILTER…]
       infercache purge --url http://127.0.0.1:8080 --admin-token T [--namespace NAME | --all] [FILTER…]

Removes every entry of a namespace (default gateway), or of every namespace with --all; with
filters, only the entries matching all of them. Against a store directly, or a running
gateway through its admin API (POST /admin/purge), which also drops its memory copies.

${STORE_HELP}
  --all                 every namespace in the store
  --url URL             a running gateway (env INFERCACHE_URL); with --admin-token
  --admin-token T       env INFERCACHE_ADMIN_TOKEN
Filters (combined with AND):
  --tag T               entries tagged T (x-infercache-tags, or tags in the library);
                        repeat it for any of several tags
  --model M             answers for model M
  --upstream URL        answers from that upstream origin
  --tenant ID           answers of one tenant (its id as the admin feed shows it)
  --older-than AGE      written more than AGE ago: seconds, or 30m, 12h, 7d
`;

export const EXPORT_HELP = `Usage: infercache export [--store SPEC] [--namespace NAME] [--out FILE]

Writes the shared entries of a namespace as JSON lines (to FILE, or standard output):
{"key", "namespace", "createdAt", "expiresAt"?, "staleAt"?, "computeMs"?, "value"} where the value is
plain JSON, else "envelope" (base64 of the checksummed binary form). Per-session entries are
not exported (sessions end with their connection). FILE is written whole or not at all (a
temporary file beside it, renamed once complete); a failure exits 1 and leaves FILE as it was.
With --encryption-key, every value is written sealed (entries the store holds in the clear are
sealed on the way out) and keys are keyed hashes; a store with sealed entries needs the key.

${STORE_HELP}
${ENCRYPTION_HELP}
  --out FILE            default standard output
`;

export const IMPORT_HELP = `Usage: infercache import FILE.jsonl [--store SPEC] [--namespace NAME]

Reads what export wrote into a store; a SQLite file that does not exist yet is created (a
backup restored on a new machine). Entries keep their namespace unless --namespace is given.
A line that cannot be stored (not an entry, longer than 256 MiB, a value nested too deeply) is
reported with its number and skipped, the rest are still read, and a summary always ends the
run (exit 1 when a line was skipped); entries already in the store are only replaced by lines
with the same key. Sealed entries need --encryption-key with the key they were sealed with
(they are stored sealed with the first key given); with a key, entries in the clear are sealed.

${STORE_HELP}
${ENCRYPTION_HELP}
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
  return withStore(values, {}, async (store) => {
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
  let base: URL;
  try {
    base = new URL(url);
  } catch {
    base = new URL("invalid:");
  }
  if (base.protocol !== "http:" && base.protocol !== "https:")
    throw new UsageError(
      `Expected --url to be an http:// or https:// URL such as http://127.0.0.1:8080, got \`${url}\``,
    );
  const where = url.replace(/\/+$/, "");
  let response: Response;
  let text: string;
  try {
    response = await fetch(`${where}/admin/stats`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(10_000),
    });
    text = await response.text();
  } catch (error) {
    throw new CommandError(
      `cannot reach the gateway at ${where}: ${fetchFailure(error)}; is \`infercache serve\` running there?`,
    );
  }
  if (!response.ok) {
    process.stderr.write(`the gateway answered ${response.status}: ${text}\n`);
    return 1;
  }
  let stats: Record<string, number>;
  try {
    stats = JSON.parse(text) as Record<string, number>;
  } catch {
    throw new CommandError(
      `${where}/admin/stats did not answer with a gateway's stats (not JSON): is it an infercache gateway?`,
    );
  }
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
  const { values } = parse(args, {
    ...STORE_OPTIONS,
    all: { type: "boolean" },
    url: { type: "string" },
    "admin-token": { type: "string" },
    tag: { type: "string", multiple: true },
    model: { type: "string" },
    upstream: { type: "string" },
    tenant: { type: "string" },
    "older-than": { type: "string" },
  });
  if (values.help === true) {
    process.stdout.write(PURGE_HELP);
    return 0;
  }
  const namespace = option(values, "namespace");
  if (values.all === true && namespace !== undefined)
    throw new UsageError("pass --namespace NAME or --all, not both");
  const tags = values.tag as string[] | undefined;
  const fields: PurgeFields = {
    namespace: values.all === true ? "*" : (namespace ?? DEFAULT_NAMESPACE),
    ...(tags !== undefined && { tag: tags }),
    ...(option(values, "model") !== undefined && { model: option(values, "model") }),
    ...(option(values, "upstream") !== undefined && { upstream: option(values, "upstream") }),
    ...(option(values, "tenant") !== undefined && { tenant: option(values, "tenant") }),
    ...(option(values, "older-than") !== undefined && { olderThan: option(values, "older-than") }),
  };
  const where =
    values.all === true ? "every namespace" : `namespace ${namespace ?? DEFAULT_NAMESPACE}`;
  const url = option(values, "url", "INFERCACHE_URL");
  if (url !== undefined) return gatewayPurge(url, values, fields, where);
  if (hasPurgeFields(fields)) {
    let filter: PurgeFilter;
    try {
      filter = purgeFilterOf(fields, Date.now(), DEFAULT_NAMESPACE);
    } catch (error) {
      throw new UsageError(cliWords((error as Error).message));
    }
    return withStore(values, {}, async (store) => {
      if (store.purge === undefined) {
        throw new CommandError(`the ${store.kind} store cannot purge by tag or age`);
      }
      const removed = await store.purge(filter);
      process.stdout.write(`removed ${removed} matching entries from ${where}\n`);
      return 0;
    });
  }
  return withStore(values, {}, async (store) => {
    const removed = await store.clear(
      values.all === true ? undefined : { namespace: namespace ?? DEFAULT_NAMESPACE },
    );
    process.stdout.write(
      `removed ${removed} entries from ${values.all === true ? "every namespace" : `namespace ${namespace ?? DEFAULT_NAMESPACE}`}\n`,
    );
    return 0;
  });
}

/** A filter's error in the CLI's words (`--older-than`, not `olderThan`). */
function cliWords(message: string): string {
  return message
    .replace("`olderThan`", "--older-than")
    .replace(/`tag(\[\d+\])?`/, "--tag")
    .replace(/`(model|upstream|tenant)`/, "--$1");
}

/** `purge --url`: the same fields through a running gateway's `POST /admin/purge`. */
async function gatewayPurge(
  url: string,
  values: Values,
  fields: PurgeFields,
  where: string,
): Promise<number> {
  const token = option(values, "admin-token", "INFERCACHE_ADMIN_TOKEN");
  if (token === undefined) {
    throw new UsageError(
      "purge --url needs the gateway's --admin-token (or INFERCACHE_ADMIN_TOKEN)",
    );
  }
  if (!/^https?:\/\//.test(url)) {
    throw new UsageError(
      `Expected --url to be an http:// or https:// URL such as http://127.0.0.1:8080, got \`${url}\``,
    );
  }
  const base = url.replace(/\/+$/, "");
  let response: Response;
  let text: string;
  try {
    response = await fetch(`${base}/admin/purge`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify(fields),
      signal: AbortSignal.timeout(60_000),
    });
    text = await response.text();
  } catch (error) {
    throw new CommandError(
      `cannot reach the gateway at ${base}: ${fetchFailure(error)}; is \`infercache serve\` running there?`,
    );
  }
  if (!response.ok) {
    process.stderr.write(`the gateway answered ${response.status}: ${text}\n`);
    return response.status === 400 ? 2 : 1;
  }
  const removed = (JSON.parse(text) as { removed?: unknown }).removed;
  process.stdout.write(
    `removed ${String(removed)} ${hasPurgeFields(fields) ? "matching " : ""}entries from ${where}\n`,
  );
  return 0;
}

export async function exportCommand(args: string[]): Promise<number> {
  const { values } = parse(args, { ...STORE_OPTIONS, out: { type: "string" } });
  if (values.help === true) {
    process.stdout.write(EXPORT_HELP);
    return 0;
  }
  const namespace = option(values, "namespace") ?? DEFAULT_NAMESPACE;
  const file = option(values, "out");
  return withStore(values, { encryption: true }, async (store, sealed) => {
    let count = 0;
    let sealedAsStored = 0;
    let damaged = 0;
    const scope = { namespace };
    const produce = async (sink: TextSink) => {
      for await (const [key, stored] of store.entries(scope)) {
        let line: Record<string, unknown>;
        if (sealed === undefined) {
          if (isSealed(stored)) sealedAsStored++;
          line = exportLine(key, namespace, stored);
        } else {
          const opened = sealed.open(key, scope, stored);
          if (opened.state === "unknown-key")
            throw new CommandError(
              `an entry of namespace ${namespace} is sealed with key id \`${opened.keyId}\`, which --encryption-key does not hold: pass that key too, after the current one`,
            );
          if (opened.state === "corrupt") {
            damaged++;
            continue;
          }
          // Sealed entries go out as they are stored; entries in the clear are sealed first.
          const out =
            opened.state === "open" ? { key, entry: stored } : sealed.seal(key, scope, stored);
          if (out === "not-serializable") continue;
          line = exportLine(out.key, namespace, out.entry);
        }
        await sink.write(`${JSON.stringify(line)}\n`);
        count++;
      }
    };
    if (file === undefined) await produce(stdoutSink());
    else await writeFileAtomically(file, produce);
    process.stderr.write(
      `exported ${count} entries of namespace ${namespace}${sealed === undefined ? "" : `, sealed with key id ${sealed.currentKeyId} or older`}\n`,
    );
    if (sealedAsStored > 0)
      process.stderr.write(
        `  ${sealedAsStored} of them are sealed (encrypted) and were written as they are: import them with the key they were sealed with\n`,
      );
    if (damaged > 0)
      process.stderr.write(
        `  ${damaged} entries did not open (damaged, or moved) and were left out\n`,
      );
    return 0;
  });
}

/** Standard output with back-pressure; a closed pipe (`export | head`) is a CommandError. */
function stdoutSink(): TextSink {
  let failure: Error | undefined;
  process.stdout.on("error", (error) => {
    failure = error;
  });
  return {
    write: async (text) => {
      if (failure === undefined && !process.stdout.write(text))
        await new Promise<void>((resolve) => {
          const done = () => {
            process.stdout.off("drain", done);
            process.stdout.off("error", done);
            resolve();
          };
          process.stdout.once("drain", done);
          process.stdout.once("error", done);
        });
      if (failure !== undefined)
        throw new CommandError(`cannot write to standard output: ${reasonOf(failure)}`);
    },
  };
}

export async function importCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, STORE_OPTIONS, 1);
  if (values.help === true) {
    process.stdout.write(IMPORT_HELP);
    return 0;
  }
  const file = positionals[0];
  if (file === undefined) throw new UsageError(`import needs a file.\n${IMPORT_HELP}`);
  const input = await openLines(file);
  const target = option(values, "namespace");
  return withStore(values, { create: true, encryption: true }, async (store, sealed) => {
    let imported = 0;
    const problems: string[] = [];
    let stopped: Error | undefined;
    try {
      for await (const line of input) {
        if ("tooLong" in line) {
          problems.push(
            `line ${line.number}: ${formatBytes(line.tooLong)}, longer than the ${MAX_LINE_BYTES / 1024 ** 2} MiB a line may have`,
          );
          continue;
        }
        if (line.text.trim() === "") continue;
        let parsed: { key: string; namespace: string; entry: Entry };
        try {
          parsed = importLine(JSON.parse(line.text) as unknown);
        } catch (error) {
          problems.push(`line ${line.number}: ${reasonOf(error)}`);
          continue;
        }
        let write: () => Promise<string>;
        const scope = { namespace: target ?? parsed.namespace };
        if (sealed === undefined) {
          if (isSealed(parsed.entry)) {
            problems.push(
              `line ${line.number}: the entry is sealed (encrypted): pass the --encryption-key it was written with`,
            );
            continue;
          }
          write = () => store.set(parsed.key, scope, parsed.entry);
        } else {
          const opened = sealed.open(parsed.key, { namespace: parsed.namespace }, parsed.entry);
          if (opened.state === "unknown-key" || opened.state === "corrupt") {
            problems.push(
              `line ${line.number}: ${opened.state === "corrupt" ? `does not open: ${opened.reason}` : `sealed with key id \`${opened.keyId}\`, which --encryption-key does not hold`}`,
            );
            continue;
          }
          // Opened entries are sealed again under their address here, with the current key.
          const entry = opened.state === "open" ? opened.entry : parsed.entry;
          const key = opened.state === "open" ? opened.key : parsed.key;
          write = () => sealed.set(key, scope, entry);
        }
        let outcome: string;
        try {
          outcome = await write();
        } catch (error) {
          problems.push(`line ${line.number}: not stored: ${storeFailure(error)}`);
          continue;
        }
        if (outcome === "stored") imported++;
        else problems.push(`line ${line.number}: not stored (${outcome})`);
      }
    } catch (error) {
      // The file could not be read on (a disk error): what was read is stored; say where it ended.
      stopped = error as Error;
    }
    process.stdout.write(`imported ${imported} entries, skipped ${problems.length}\n`);
    for (const problem of problems.slice(0, 20)) process.stderr.write(`  ${problem}\n`);
    if (problems.length > 20) process.stderr.write(`  … and ${problems.length - 20} more\n`);
    if (stopped !== undefined) throw stopped;
    return problems.length > 0 ? 1 : 0;
  });
}

/** Why a store refused an entry; a value too deep to encode overflows the stack. */
function storeFailure(error: unknown): string {
  if (error instanceof RangeError && /call stack/i.test(error.message))
    return "the value is nested too deeply to encode";
  return reasonOf(error);
}

/** Why a fetch failed: node's "fetch failed" keeps the reason in `cause`. */
function fetchFailure(error: unknown): string {
  if ((error as Error).name === "TimeoutError") return "no answer within 10 s";
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code;
  if (code === "ECONNREFUSED") return "connection refused";
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return "no such host";
  if (code === "ECONNRESET") return "the connection was reset";
  return cause?.message ?? reasonOf(error);
}

/** One exported entry: plain JSON values as they are, anything else as a checksummed envelope. */
export function exportLine(key: string, namespace: string, entry: Entry): Record<string, unknown> {
  const line: Record<string, unknown> = { key, namespace, createdAt: entry.createdAt };
  if (entry.expiresAt !== undefined) line.expiresAt = entry.expiresAt;
  // Without it an entry kept to be served stale would come back fresh until its expiresAt.
  if (entry.staleAt !== undefined) line.staleAt = entry.staleAt;
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
  if (line.staleAt !== undefined) {
    if (typeof line.staleAt !== "number") throw new TypeError('"staleAt" must be a number (ms)');
    entry.staleAt = line.staleAt;
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

async function withStore(
  values: Values,
  options: Pick<OpenStoreOptions, "create"> & { encryption?: boolean },
  run: (store: Store, sealed: SealedStore | undefined) => Promise<number>,
): Promise<number> {
  const spec = option(values, "store") ?? DEFAULT_STORE;
  if (spec === "memory")
    throw new UsageError(
      "a memory store lives inside one process: pass --store sqlite:PATH or redis://…",
    );
  const keys = options.encryption === true ? encryptionKeys(values) : undefined;
  const path = spec.startsWith("sqlite:") ? spec.slice("sqlite:".length) : undefined;
  const created = options.create === true && path !== undefined && !existsSync(path);
  const store = await openPlainStore(spec, {
    ...(options.create !== undefined && { create: options.create }),
  });
  // The store as it is (export copies sealed entries), and the view that opens and seals them.
  const sealed = options.encryption === true ? await sealedView(store, keys, spec) : undefined;
  if (created) process.stdout.write(`created a new SQLite store at ${path}\n`);
  try {
    return await run(store, sealed);
  } finally {
    await store.close();
  }
}
