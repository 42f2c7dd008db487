/** What the `infercache` commands share: option parsing, the store, the gateway's options. */

import { parseArgs } from "node:util";
import type { LlamaEngineOptions } from "../llama/engine.js";
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

export const DEFAULT_STORE = "sqlite:./.infercache/cache.db";
export const DEFAULT_NAMESPACE = "gateway";

export const STORE_OPTIONS: OptionSpec = {
  store: { type: "string" },
  namespace: { type: "string" },
  help: { type: "boolean", short: "h" },
};

export const GATEWAY_OPTIONS: OptionSpec = {
  ...STORE_OPTIONS,
  upstream: { type: "string" },
  model: { type: "string" },
  "shared-cache": { type: "boolean" },
  "tenant-secret": { type: "string" },
  concurrency: { type: "string" },
};

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

/** `sqlite:PATH`, `redis://…` or `memory`. */
export async function openStore(spec: string): Promise<Store> {
  if (spec === "memory") {
    const { MemoryStore } = await import("../store/memory.js");
    return new MemoryStore({ maxSize: 10_000 });
  }
  if (spec.startsWith("redis://") || spec.startsWith("rediss://")) {
    const { RedisStore } = await import("../store/redis/redis-store.js");
    return new RedisStore({ url: spec });
  }
  if (spec.startsWith("sqlite:") && spec.length > "sqlite:".length) {
    const { mkdirSync } = await import("node:fs");
    const { dirname } = await import("node:path");
    const path = spec.slice("sqlite:".length);
    mkdirSync(dirname(path), { recursive: true });
    const { SqliteStore } = await import("../store/sqlite.js");
    return new SqliteStore({ path });
  }
  throw new UsageError(
    `Expected --store to be sqlite:PATH, redis://HOST:PORT or memory, got \`${spec}\``,
  );
}

/** The local engine: a fetch-style handler with resources to close. */
type Engine = { handle(request: Request): Promise<Response>; close(): Promise<void> };

/**
 * The engine or upstream the gateway caches, from --model / --upstream or the environment;
 * `engine` adds options for the local engine (serve's KV-state cache).
 */
export async function openSource(
  values: Values,
  engine: Omit<LlamaEngineOptions, "modelPath"> = {},
): Promise<{
  /** Spread into createGateway's options. */
  gateway: { upstream: string | ((request: Request) => Promise<Response>) };
  engine: Engine | undefined;
  label: string;
}> {
  const upstream = option(values, "upstream", "INFERCACHE_UPSTREAM");
  const model = option(values, "model", "INFERCACHE_MODEL");
  if (upstream !== undefined)
    return { gateway: { upstream }, engine: undefined, label: `upstream ${upstream}` };
  if (model === undefined) {
    throw new UsageError(
      "nothing to cache: set --upstream URL (or INFERCACHE_UPSTREAM) for an OpenAI-compatible API,\n" +
        "or --model PATH (or INFERCACHE_MODEL) for the local engine, e.g. INFERCACHE_MODEL=../shared/models/llama-2-tiny-random.gguf npm start",
    );
  }
  const { existsSync } = await import("node:fs");
  if (!existsSync(model))
    throw new UsageError(`--model: no file at \`${model}\`; pass the path of a GGUF model`);
  const { LlamaEngine } = await import("../llama/engine.js");
  const loaded = await LlamaEngine.load({ modelPath: model, ...engine });
  return {
    gateway: { upstream: (request: Request) => loaded.handle(request) },
    engine: loaded,
    label: `local model ${model}`,
  };
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
