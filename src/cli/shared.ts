/** What the `infercache` commands share: option parsing, the store, the gateway's options. */

import { existsSync } from "node:fs";
import { isAbsolute, relative as relativePath } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { CACHE_MODES, type CacheMode } from "../base/mode.js";
import { parseSize } from "../base/size.js";
import type { LlamaEngineOptions } from "../llama/engine.js";
import {
  EncryptionKeyError,
  parseEncryptionKeys,
  SEAL_CHECK_NAMESPACE,
  SealedStore,
} from "../store/sealed.js";
import type { Store } from "../store/store.js";

export type Values = Record<string, string | boolean | string[] | undefined>;
type OptionSpec = Record<
  string,
  { type: "string" | "boolean"; short?: string; multiple?: boolean }
>;

/** Thrown for bad command lines: the message says what to pass; the exit code is 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/**
 * Thrown when a command cannot do its work (a store it cannot reach, a port in use, a file it
 * cannot write): the message names the cause and the fix; the exit code is 1.
 */
export class CommandError extends Error {
  override readonly name = "CommandError";
}

export const DEFAULT_STORE = "sqlite:./.infercache/cache.db";
export const DEFAULT_NAMESPACE = "gateway";

/**
 * The tiny random-weight test model committed in the repository's models/ (not in the npm
 * package): what `serve` and `warm` run when neither a model nor an upstream is given.
 */
export const BUNDLED_MODEL = fileURLToPath(
  new URL("../../models/llama-2-tiny-random.gguf", import.meta.url),
);

export const STORE_OPTIONS: OptionSpec = {
  store: { type: "string" },
  namespace: { type: "string" },
  "encryption-key": { type: "string" },
  help: { type: "boolean", short: "h" },
};

export const GATEWAY_OPTIONS: OptionSpec = {
  ...STORE_OPTIONS,
  upstream: { type: "string" },
  model: { type: "string" },
  "shared-cache": { type: "boolean" },
  "tenant-secret": { type: "string" },
  concurrency: { type: "string" },
  hooks: { type: "string" },
};

export const HOOKS_HELP = `  --hooks FILE          a module exporting \`redact(request)\` (returns the body to key, store
                        and send upstream instead) and/or \`noStore(request)\` (true: answer
                        without the cache); request is { method, path, headers, body }`;

/**
 * The gateway's `redact` / `noStore` hooks from `--hooks FILE`: named exports, or the same
 * names on the default export. Refused when the file is missing or exports neither.
 */
export async function loadHooks(values: Values): Promise<{
  redact?: (request: import("../llm/hooks.js").LlmHookRequest) => unknown;
  noStore?: (request: import("../llm/hooks.js").LlmHookRequest) => boolean | Promise<boolean>;
}> {
  const file = option(values, "hooks");
  if (file === undefined) return {};
  const { resolve } = await import("node:path");
  const { pathToFileURL } = await import("node:url");
  const path = resolve(file);
  if (!existsSync(path))
    throw new UsageError(`--hooks: no file at \`${file}\`; pass the path of a JavaScript module`);
  let loaded: Record<string, unknown>;
  try {
    loaded = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (error) {
    throw new CommandError(`cannot load --hooks ${file}: ${reasonOf(error)}`);
  }
  const from = (name: string): unknown =>
    loaded[name] ?? (loaded.default as Record<string, unknown> | undefined)?.[name];
  const hooks: Record<string, unknown> = {};
  for (const name of ["redact", "noStore"]) {
    const hook = from(name);
    if (hook === undefined) continue;
    if (typeof hook !== "function")
      throw new UsageError(`--hooks ${file}: \`${name}\` must be a function, got ${typeof hook}`);
    hooks[name] = hook;
  }
  if (Object.keys(hooks).length === 0)
    throw new UsageError(
      `--hooks ${file} exports neither \`redact\` nor \`noStore\`: export one or both (export function redact(request) { … })`,
    );
  return hooks as Awaited<ReturnType<typeof loadHooks>>;
}

export function parse(
  args: string[],
  options: OptionSpec,
  positionals = 0,
): { values: Values; positionals: string[] } {
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({ args, options, allowPositionals: positionals > 0, strict: true }) as {
      values: Values;
      positionals: string[];
    };
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (parsed.positionals.length > positionals)
    throw new UsageError(`Unexpected argument \`${parsed.positionals[positionals]}\``);
  return parsed;
}

/** A string option, else an environment variable; "" counts as unset. */
export function option(values: Values, name: string, env?: string): string | undefined {
  const given = values[name];
  const value =
    typeof given === "string" ? given : env === undefined ? undefined : process.env[env];
  return value === undefined || value === "" ? undefined : value;
}

export function integer(values: Values, name: string, fallback: number, min = 0): number {
  const text = option(values, name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min)
    throw new UsageError(`Expected --${name} to be an integer >= ${min}, got \`${text}\``);
  return value;
}

/** How many entries and bytes a store may hold; 0 = unlimited. */
export interface StoreBounds {
  maxSize: number;
  maxMemory: number;
}

/** What `serve` bounds its store with unless told: memory by count and bytes, SQLite by bytes. */
export const DEFAULT_BOUNDS = {
  memory: { maxSize: 10_000, maxMemory: 256 * 1024 * 1024 },
  sqlite: { maxSize: 0, maxMemory: 1024 * 1024 * 1024 },
} as const;

/** `--max-size N` and `--max-memory SIZE` over the store kind's defaults. */
export function storeBounds(values: Values, spec: string): StoreBounds | undefined {
  const given =
    option(values, "max-size") !== undefined || option(values, "max-memory") !== undefined;
  if (isRedis(spec)) {
    if (given)
      throw new UsageError(
        "Redis bounds itself: set its maxmemory (and maxmemory-policy volatile-lru) instead of --max-size / --max-memory",
      );
    return undefined;
  }
  const defaults = spec === "memory" ? DEFAULT_BOUNDS.memory : DEFAULT_BOUNDS.sqlite;
  const text = option(values, "max-memory");
  let maxMemory: number = defaults.maxMemory;
  if (text !== undefined) {
    try {
      maxMemory = parseSize(/^\d+$/.test(text) ? Number(text) : text, "--max-memory");
    } catch {
      throw new UsageError(
        `Expected --max-memory to be a size such as 1048576, 100kb, 512mb or 2gb (0 = unlimited), got \`${text}\``,
      );
    }
  }
  return { maxSize: integer(values, "max-size", defaults.maxSize), maxMemory };
}

/** "at most 10000 entries and 256.0 MiB", "at most 1.0 GiB", "unbounded". */
export function describeBounds(bounds: StoreBounds | undefined): string {
  if (bounds === undefined) return "";
  const parts = [
    ...(bounds.maxSize > 0 ? [`${bounds.maxSize} entries`] : []),
    ...(bounds.maxMemory > 0 ? [formatBytes(bounds.maxMemory)] : []),
  ];
  return parts.length === 0 ? ", unbounded" : `, at most ${parts.join(" and ")}`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
}

function isRedis(spec: string): boolean {
  return spec.startsWith("redis://") || spec.startsWith("rediss://");
}

/** A store spec as it can be printed: a Redis URL without its credentials. */
export function printableStore(spec: string): string {
  if (!isRedis(spec)) return spec;
  try {
    const url = new URL(spec);
    return `${url.protocol}//${url.host}${url.pathname === "/" ? "" : url.pathname}`;
  } catch {
    return "redis://…";
  }
}

export interface OpenStoreOptions {
  bounds?: StoreBounds | undefined;
  /** Create a SQLite file that does not exist yet (else refuse: a wrong path is likelier). */
  create?: boolean;
  /** Whether `--store memory` would do for this command (said when SQLite cannot load). */
  memoryWouldDo?: boolean;
  /**
   * `--encryption-key` (see `encryptionKeys`): the store is returned sealed, after its keys were
   * checked. Without keys, a store holding sealed entries is refused (see `sealedView`).
   */
  encryption?: string | undefined;
}

export const ENCRYPTION_HELP = `  --encryption-key KEYS seal values at rest with AES-256-GCM, keys hashed (env
                        INFERCACHE_ENCRYPTION_KEY): 32 bytes as base64 (openssl rand -base64 32),
                        or [id:]base64 entries separated by commas, newest first: new writes use
                        the first, older ones still open what they sealed (rotation)`;

/** `--encryption-key`, else INFERCACHE_ENCRYPTION_KEY, checked (never printed). */
export function encryptionKeys(values: Values): string | undefined {
  const text = option(values, "encryption-key", "INFERCACHE_ENCRYPTION_KEY");
  if (text === undefined) return undefined;
  try {
    parseEncryptionKeys(text, "--encryption-key");
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  return text;
}

/**
 * The store seen through `keys`, checked against the check values the keys left in it (a wrong
 * key is a CommandError naming the key ids, never a key). Without keys: `undefined`, or a
 * UsageError when the store holds sealed entries, so nothing writes plaintext next to them or
 * claims to export what it cannot read. Closes the store when it throws.
 */
export async function sealedView(
  store: Store,
  keys: string | undefined,
  spec: string,
): Promise<SealedStore | undefined> {
  try {
    if (keys === undefined) {
      if ((await store.size({ namespace: SEAL_CHECK_NAMESPACE, session: null })) > 0)
        throw new UsageError(
          `the store at ${printableStore(spec)} holds sealed (encrypted) entries: pass the key they were written with, --encryption-key KEYS or INFERCACHE_ENCRYPTION_KEY`,
        );
      return undefined;
    }
    if (store.sync !== undefined)
      throw new UsageError(
        "--encryption-key seals what is at rest: a memory store keeps nothing at rest; pass --store sqlite:PATH or redis://…",
      );
    const sealed = new SealedStore(store, { keys });
    await sealed.check();
    return sealed;
  } catch (error) {
    await store.close();
    if (error instanceof EncryptionKeyError) throw new CommandError(reasonOf(error));
    throw error;
  }
}

/**
 * `sqlite:PATH`, `redis://…` or `memory`, checked before any work: a Redis that does not answer
 * or a SQLite peer that is not installed is a `CommandError` that says so, never a command that
 * runs on and reports what it did not store.
 */
export async function openStore(spec: string, options: OpenStoreOptions = {}): Promise<Store> {
  const store = await openPlainStore(spec, options);
  if (store.sync !== undefined && options.encryption === undefined) return store;
  return (await sealedView(store, options.encryption, spec)) ?? store;
}

/** `openStore` without the encryption step: the store as it is, sealed entries and all. */
export async function openPlainStore(spec: string, options: OpenStoreOptions): Promise<Store> {
  if (spec === "memory") {
    const { MemoryStore } = await import("../store/memory.js");
    return new MemoryStore(options.bounds ?? DEFAULT_BOUNDS.memory);
  }
  if (isRedis(spec)) return openRedis(spec);
  if (spec.startsWith("sqlite:") && spec.length > "sqlite:".length) {
    const path = spec.slice("sqlite:".length);
    if (options.create !== true && !existsSync(path))
      throw new UsageError(`no SQLite store at \`${path}\`: pass the --store the gateway uses`);
    return openSqlite(path, options);
  }
  throw new UsageError(
    `Expected --store to be sqlite:PATH, redis://HOST:PORT or memory, got \`${spec}\``,
  );
}

async function openSqlite(path: string, options: OpenStoreOptions): Promise<Store> {
  const { mkdirSync } = await import("node:fs");
  const { dirname } = await import("node:path");
  try {
    const { SqliteStore } = await import("../store/sqlite.js");
    mkdirSync(dirname(path), { recursive: true });
    return new SqliteStore({ path, ...options.bounds });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause;
    if (cause?.code === "MODULE_NOT_FOUND" && /better-sqlite3/.test((error as Error).message)) {
      throw new CommandError(
        `the SQLite store (sqlite:${path}) needs the package better-sqlite3: run \`npm install better-sqlite3\`` +
          (options.memoryWouldDo === true
            ? ", or pass --store memory (answers kept in this process only) or --store redis://HOST:PORT"
            : ", or pass --store redis://HOST:PORT"),
      );
    }
    throw new CommandError(`cannot open the SQLite store at ${path}: ${reasonOf(error)}`);
  }
}

/** How long `openRedis` waits for a first answer. */
const REDIS_PROBE_MS = 10_000;

async function openRedis(spec: string): Promise<Store> {
  const { RedisStore } = await import("../store/redis/redis-store.js");
  const { RedisUnavailableError } = await import("../store/redis/connection.js");
  const target = printableStore(spec).replace(/^rediss?:\/\//, "");
  // The store's own warnings ("calls run uncached") would only repeat the error below while the
  // command checks the connection; once it answered, `serve` logs outages as they come.
  let checking = true;
  const store = new RedisStore({
    url: spec,
    logger: { warn: (message) => (checking ? undefined : console.warn(message)) },
  });
  try {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer within ${REDIS_PROBE_MS / 1000} s`)),
        REDIS_PROBE_MS,
      );
    });
    await Promise.race([
      store.get("infercache-cli-probe", { namespace: DEFAULT_NAMESPACE }),
      timeout,
    ]).finally(() => clearTimeout(timer));
  } catch (error) {
    await store.close();
    const reason = error instanceof RedisUnavailableError ? error.reason : reasonOf(error);
    throw new CommandError(
      `cannot reach Redis at ${target}: ${reason}; start Redis there, or pass another --store`,
    );
  }
  checking = false;
  return store;
}

/** An error's message without the library's `infercache: ` prefix or a Node error code. */
export function reasonOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/^infercache: /, "").replace(/^[A-Z][A-Z0-9_]+: ([^,]+),.*$/, "$1");
}

/** The local engine: a fetch-style handler with resources to close. */
type Engine = { handle(request: Request): Promise<Response>; close(): Promise<void> };

/** What the gateway caches: an upstream URL, or a GGUF model for the local engine. */
export type SourceSpec = { upstream: string } | { model: string; bundled: boolean };

/**
 * --upstream or --model (a flag wins over the other one's environment variable), else
 * INFERCACHE_UPSTREAM or INFERCACHE_MODEL, else the bundled test model when it is there (a
 * checkout; the npm package does not ship it). Both at once is a usage error, as in
 * `createGateway`.
 */
export function sourceSpec(values: Values): SourceSpec {
  const flags = { upstream: option(values, "upstream"), model: option(values, "model") };
  if (flags.upstream !== undefined && flags.model !== undefined)
    throw new UsageError("pass --upstream URL or --model PATH, not both");
  if (flags.upstream !== undefined) return { upstream: flags.upstream };
  if (flags.model !== undefined) return { model: flags.model, bundled: false };
  const env = {
    upstream: option({}, "upstream", "INFERCACHE_UPSTREAM"),
    model: option({}, "model", "INFERCACHE_MODEL"),
  };
  if (env.upstream !== undefined && env.model !== undefined)
    throw new UsageError(
      "INFERCACHE_UPSTREAM and INFERCACHE_MODEL are both set: unset one, or pass --upstream URL or --model PATH",
    );
  if (env.upstream !== undefined) return { upstream: env.upstream };
  if (env.model !== undefined) return { model: env.model, bundled: false };
  if (existsSync(BUNDLED_MODEL)) return { model: BUNDLED_MODEL, bundled: true };
  throw new UsageError(
    "nothing to cache: set --upstream URL (or INFERCACHE_UPSTREAM) for an OpenAI-compatible API,\n" +
      "or --model PATH (or INFERCACHE_MODEL) for the local engine, e.g. --model ./models/qwen2.5-0.5b-instruct-q4_k_m.gguf",
  );
}

/** The engine or upstream the gateway caches, from --model / --upstream (see `sourceSpec`). */
export async function openSource(
  values: Values,
  spec: SourceSpec = sourceSpec(values),
  engineOptions: Omit<LlamaEngineOptions, "modelPath"> = {},
): Promise<{
  /** Spread into createGateway's options. */
  gateway: { upstream: string | ((request: Request) => Promise<Response>) };
  engine: Engine | undefined;
  label: string;
  /** The model name clients send, for the local engine. */
  modelName?: string;
}> {
  if ("upstream" in spec)
    return {
      gateway: { upstream: spec.upstream },
      engine: undefined,
      label: `upstream ${spec.upstream}`,
    };
  if (!existsSync(spec.model))
    throw new UsageError(`--model: no file at \`${spec.model}\`; pass the path of a GGUF model`);
  const { LlamaEngine } = await import("../llama/engine.js");
  const engine = await LlamaEngine.load({ modelPath: spec.model, ...engineOptions });
  return {
    gateway: { upstream: (request: Request) => engine.handle(request) },
    engine,
    label: spec.bundled
      ? `the bundled test model ${shortPath(spec.model)}`
      : `local model ${spec.model}`,
    modelName: engine.modelName,
  };
}

/** A path relative to the working directory when it lies below it. */
function shortPath(path: string): string {
  const relative = relativePath(process.cwd(), path);
  return relative.startsWith("..") || isAbsolute(relative) ? path : relative;
}

/** The gateway options that decide keys, so `warm` writes what `serve` reads. */
export function keyingOptions(values: Values): {
  namespace: string;
  sharedCache: boolean;
  tenantSecret?: string;
} {
  const tenantSecret = option(values, "tenant-secret", "INFERCACHE_TENANT_SECRET");
  return {
    namespace: option(values, "namespace") ?? DEFAULT_NAMESPACE,
    sharedCache: values["shared-cache"] === true,
    ...(tenantSecret !== undefined && { tenantSecret }),
  };
}

/** `--mode` (or `env`), checked against the modes `allowed`; `fallback` without one. */
export function modeOption(
  values: Values,
  fallback: CacheMode,
  allowed: readonly CacheMode[] = CACHE_MODES,
  env?: string,
): CacheMode {
  const text = option(values, "mode", env);
  if (text === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(text))
    throw new UsageError(
      `Expected --mode to be one of ${allowed.join(", ")}, got \`${text.slice(0, 40)}\``,
    );
  return text as CacheMode;
}
