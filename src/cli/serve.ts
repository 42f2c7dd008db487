/** `infercache serve`: the OpenAI-compatible caching gateway until SIGINT/SIGTERM, then a drain. */

import { parseDuration } from "../base/duration.js";
import { parseSize } from "../base/size.js";
import type { LlamaEngineOptions } from "../llama/engine.js";
import {
  CommandError,
  DEFAULT_BOUNDS,
  DEFAULT_STORE,
  describeBounds,
  ENCRYPTION_HELP,
  encryptionKeys,
  formatBytes,
  GATEWAY_OPTIONS,
  HOOKS_HELP,
  integer,
  keyingOptions,
  loadHooks,
  modeOption,
  openSource,
  openStore,
  option,
  parse,
  printableStore,
  reasonOf,
  sourceSpec,
  storeBounds,
  UsageError,
} from "./shared.js";

export const SERVE_HELP = `Usage: infercache serve [--upstream URL | --model PATH] [options]

Starts the OpenAI-compatible caching gateway: /v1/chat/completions, /v1/completions and
/v1/embeddings are cached, other /v1/* requests pass through; the dashboard is at /.
With neither --upstream nor --model (nor their environment variables), a checkout serves its
bundled tiny test model (models/llama-2-tiny-random.gguf; random weights, gibberish answers).

  --upstream URL        an OpenAI-compatible base URL (env INFERCACHE_UPSTREAM), e.g.
                        https://api.openai.com/v1, http://127.0.0.1:11434/v1 (Ollama)
  --model PATH          a GGUF model served by the built-in engine (env INFERCACHE_MODEL)
  --port N              default 8080 (env PORT); 0 picks a free port
  --host HOST           default 127.0.0.1 (loopback only); 0.0.0.0 to listen on every interface
  --store SPEC          sqlite:PATH (default ${DEFAULT_STORE}), redis://HOST:PORT, memory
  --max-size N          entries the store keeps, least recently used beyond; 0 = unlimited
                        (default ${DEFAULT_BOUNDS.memory.maxSize} for memory, unlimited for SQLite)
  --max-memory SIZE     bytes the store keeps, e.g. 512mb or 2gb; 0 = unlimited
                        (default ${formatBytes(DEFAULT_BOUNDS.memory.maxMemory)} for memory, ${formatBytes(DEFAULT_BOUNDS.sqlite.maxMemory)} for SQLite); Redis bounds
                        itself (its maxmemory)
  --namespace NAME      default gateway
${ENCRYPTION_HELP}
${HOOKS_HELP}
  --shared-cache        share answers between API keys (default: partitioned by API key)
  --mode MODE           read-write (default), read-only (serve hits, store nothing), refresh
                        (always ask the upstream, store), replay (serve hits; anything else is
                        a 504 cache_miss and never reaches the upstream: CI on recorded
                        answers), record (as read-write, and also store sampled requests)
                        (env INFERCACHE_MODE); a request may pick its own with the
                        x-infercache-mode header
  --tenant-secret S     key of the credentials' hash (env INFERCACHE_TENANT_SECRET; default a
                        secret kept in the store, so restarts and other instances keep their hits)
  --admin-token T       enables /admin/* behind "Authorization: Bearer T" (env INFERCACHE_ADMIN_TOKEN)
  --concurrency N       upstream calls at once (default 0 = no limit)
  --max-queue N         with --concurrency: upstream calls waiting for a slot; more get 503
                        (default 0 = no limit)
  --body-limit BYTES    default 10485760
  --first-byte-timeout MS  until the upstream's response headers (default 120000)
  --allow-namespace N   a namespace clients may pick with x-infercache-namespace (repeatable);
                        without it any valid name is taken
  --allowed-origin URL  a web page origin allowed to POST to the gateway (repeatable); other
                        pages' cross-origin requests get 403
  --idle-timeout MS     between two chunks of an upstream's body (default 120000); a healthy
                        stream may last as long as it streams
  --ttl SECONDS         how long answers are fresh, in seconds or as 10m, 1h (default forever;
                        a request's max-age / s-maxage may ask for less)
  --stale-while-revalidate SECONDS
                        past its lifetime, serve an answer at once (x-infercache: stale) while
                        one refresh runs in the background, for this long (default 0); needs a
                        lifetime: --ttl, or the request's max-age / s-maxage
  --stale-if-error SECONDS
                        past its lifetime, serve an answer instead of an upstream failure (5xx,
                        timeout, refused connection, a dead local model) for this long
                        (default 0); a request's Cache-Control stale-while-revalidate=N and
                        stale-if-error=N override both

With --model, the engine keeps KV state between requests: a conversation's next turn, or another
user's prompt sharing a system prompt, evaluates only its new tokens.
  --state-memory SIZE   states kept in memory (a private tmpfs folder; default 1gb)
  --state-dir DIR       a disk tier: states memory evicts or cannot hold, and all of them at
                        shutdown, so conversations resume after a restart (default: none)
  --state-dir-size SIZE bytes of the disk tier (default 10gb)
  --no-state-cache      every request starts from an empty context
`;

/** serve's KV-state cache flags, as the local engine's options (undefined: turned off). */
function stateCacheOptions(
  values: Record<string, unknown>,
  local: boolean,
): LlamaEngineOptions["stateCache"] {
  const given = ["state-memory", "state-dir", "state-dir-size", "no-state-cache"].filter(
    (name) => values[name] !== undefined,
  );
  if (!local && given.length > 0)
    throw new UsageError(
      `--${given[0]} keeps the local engine's KV states: pass --model PATH, not --upstream`,
    );
  if (!local || values["no-state-cache"] === true) return undefined;
  const size = (name: string, fallback: string) => {
    const text = typeof values[name] === "string" ? (values[name] as string) : fallback;
    try {
      return parseSize(text, name);
    } catch {
      throw new UsageError(`Expected --${name} to be a size such as \`1gb\`, got \`${text}\``);
    }
  };
  const directory = values["state-dir"];
  if (values["state-dir-size"] !== undefined && typeof directory !== "string")
    throw new UsageError("--state-dir-size bounds the disk tier: pass --state-dir DIR too");
  return {
    capacityBytes: size("state-memory", "1gb"),
    ...(typeof directory === "string" &&
      directory !== "" && {
        disk: { directory, capacityBytes: size("state-dir-size", "10gb") },
      }),
  };
}

/** --ttl, --stale-while-revalidate and --stale-if-error: seconds, or durations such as `10m`. */
function lifetimeOptions(values: Record<string, unknown>): {
  ttl?: number;
  staleWhileRevalidate?: number;
  staleIfError?: number;
} {
  const ms = (name: string): number | undefined => {
    const text = values[name];
    if (typeof text !== "string") return undefined;
    if (/^\d+$/.test(text)) return Number(text) * 1000;
    try {
      return parseDuration(text, name);
    } catch {
      throw new UsageError(
        `Expected --${name} to be a number of seconds or a duration such as \`60\` or \`10m\`, got \`${text}\``,
      );
    }
  };
  const ttl = ms("ttl");
  const staleWhileRevalidate = ms("stale-while-revalidate");
  const staleIfError = ms("stale-if-error");
  return {
    ...(ttl !== undefined && ttl > 0 && { ttl }),
    ...(staleWhileRevalidate !== undefined && { staleWhileRevalidate }),
    ...(staleIfError !== undefined && { staleIfError }),
  };
}

export async function serveCommand(args: string[]): Promise<number> {
  const { values } = parse(args, {
    ...GATEWAY_OPTIONS,
    port: { type: "string" },
    host: { type: "string" },
    "admin-token": { type: "string" },
    "max-queue": { type: "string" },
    "body-limit": { type: "string" },
    "first-byte-timeout": { type: "string" },
    "allowed-origin": { type: "string", multiple: true },
    "allow-namespace": { type: "string", multiple: true },
    "idle-timeout": { type: "string" },
    ttl: { type: "string" },
    "stale-while-revalidate": { type: "string" },
    "stale-if-error": { type: "string" },
    "state-memory": { type: "string" },
    "state-dir": { type: "string" },
    "state-dir-size": { type: "string" },
    "no-state-cache": { type: "boolean" },
    "max-size": { type: "string" },
    "max-memory": { type: "string" },
    mode: { type: "string" },
  });
  if (values.help === true) {
    process.stdout.write(SERVE_HELP);
    return 0;
  }
  const port = integer({ port: option(values, "port", "PORT") }, "port", 8080);
  if (port > 65535) throw new UsageError(`Expected --port to be a port number, got \`${port}\``);
  const concurrency = integer(values, "concurrency", 0);
  const maxQueue = integer(values, "max-queue", 0);
  if (maxQueue > 0 && concurrency === 0)
    throw new UsageError(
      "--max-queue bounds the calls waiting for an upstream slot: pass --concurrency N too",
    );
  const mode = modeOption(values, "read-write", undefined, "INFERCACHE_MODE");
  const gatewayOptions = {
    ...keyingOptions(values),
    mode,
    ...(concurrency > 0 && { upstreamQueue: { concurrency, maxQueue } }),
    bodyLimitBytes: integer(values, "body-limit", 10 * 1024 * 1024, 1),
    firstByteTimeoutMs: integer(values, "first-byte-timeout", 120_000, 1),
    idleTimeoutMs: integer(values, "idle-timeout", 120_000, 1),
    ...lifetimeOptions(values),
    ...(Array.isArray(values["allow-namespace"]) && {
      namespaces: values["allow-namespace"] as string[],
    }),
    ...(Array.isArray(values["allowed-origin"]) && {
      allowedOrigins: values["allowed-origin"] as string[],
    }),
  };
  const adminToken = option(values, "admin-token", "INFERCACHE_ADMIN_TOKEN");
  const sourceOptions = sourceSpec(values);
  const stateCache = stateCacheOptions(values, !("upstream" in sourceOptions));
  const storeSpec = option(values, "store") ?? DEFAULT_STORE;
  const bounds = storeBounds(values, storeSpec);
  const host = option(values, "host") ?? "127.0.0.1";
  const encryption = encryptionKeys(values);
  const hooks = await loadHooks(values);
  const store = await openStore(storeSpec, {
    bounds,
    create: true,
    memoryWouldDo: true,
    encryption,
  });
  let source: Awaited<ReturnType<typeof openSource>>;
  try {
    source = await openSource(
      values,
      sourceOptions,
      stateCache === undefined ? {} : { stateCache },
    );
  } catch (error) {
    await store.close();
    throw error;
  }
  const { createGateway } = await import("../server/gateway/gateway.js");
  const gateway = createGateway({
    ...source.gateway,
    store,
    ...gatewayOptions,
    ...hooks,
    ...(adminToken !== undefined && { adminToken }),
  });
  let url: string;
  try {
    url = await gateway.listen({ port, host });
  } catch (error) {
    await gateway.close();
    await store.close();
    await source.engine?.close();
    throw listenFailure(error, host, port);
  }
  process.stdout.write(
    banner(
      url,
      source,
      // A CI log should say the gateway is replaying (or not storing), not leave it to be guessed.
      `${printableStore(storeSpec)}${describeBounds(bounds)}${mode === "read-write" ? "" : `, mode ${mode}`}${encryption === undefined ? "" : ", sealed"}`,
      "bundled" in sourceOptions && sourceOptions.bundled,
    ),
  );
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  process.stdout.write("infercache gateway draining…\n");
  await gateway.close();
  await store.close();
  await source.engine?.close();
  return 0;
}

/**
 * Where the gateway is and what to try; for the bundled model, also what it is and what to pass
 * for real answers.
 */
function banner(
  url: string,
  source: { label: string; modelName?: string },
  store: string,
  bundled: boolean,
): string {
  const body = JSON.stringify({
    model: source.modelName ?? "MODEL",
    messages: [{ role: "user", content: "Hello" }],
    temperature: 0,
    max_tokens: 16,
  });
  const auth = source.modelName === undefined ? ` -H "authorization: Bearer $API_KEY"` : "";
  const lines = [
    `infercache gateway listening on ${url}/v1 (${source.label}, store ${store})`,
    `  base URL   ${url}/v1`,
    `  dashboard  ${url}/`,
    `  try        curl -i ${url}/v1/chat/completions -H 'content-type: application/json'${auth} -d '${body}'`,
    "             (twice: the second answer says x-infercache: hit)",
  ];
  if (bundled)
    lines.push(
      "This is a tiny random-weight test model (its answers are gibberish): for real answers, pass --model PATH.gguf for a GGUF model or --upstream URL for an OpenAI-compatible API (e.g. https://api.openai.com/v1), or set INFERCACHE_MODEL or INFERCACHE_UPSTREAM.",
    );
  return `${lines.join("\n")}\n`;
}

/** A port in use or refused, said with the flag that fixes it. */
function listenFailure(error: unknown, host: string, port: number): CommandError {
  const code = ((error as { cause?: { code?: string } }).cause ?? (error as { code?: string }))
    .code;
  if (code === "EADDRINUSE")
    return new CommandError(
      `port ${port} on ${host} is in use (another gateway or server?): pass --port N (0 picks a free one)`,
    );
  if (code === "EACCES")
    return new CommandError(
      `port ${port} on ${host} needs privileges this process lacks: pass --port N above 1023`,
    );
  if (code === "EADDRNOTAVAIL")
    return new CommandError(`${host} is not an address of this machine: check --host`);
  return new CommandError(`cannot listen on ${host}:${port}: ${reasonOf(error)}`);
}
