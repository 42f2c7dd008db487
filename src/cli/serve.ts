/** `infercache serve`: the OpenAI-compatible caching gateway until SIGINT/SIGTERM, then a drain. */

import { parseSize } from "../base/size.js";
import type { LlamaEngineOptions } from "../llama/engine.js";
import {
  DEFAULT_STORE,
  GATEWAY_OPTIONS,
  integer,
  keyingOptions,
  openSource,
  openStore,
  option,
  parse,
  UsageError,
} from "./shared.js";

export const SERVE_HELP = `Usage: infercache serve (--upstream URL | --model PATH) [options]

Starts the OpenAI-compatible caching gateway: /v1/chat/completions, /v1/completions and
/v1/embeddings are cached, other /v1/* requests pass through; the dashboard is at /.

  --upstream URL        an OpenAI-compatible base URL (env INFERCACHE_UPSTREAM), e.g.
                        https://api.openai.com/v1, http://127.0.0.1:11434/v1 (Ollama)
  --model PATH          a GGUF model served by the built-in engine (env INFERCACHE_MODEL)
  --port N              default 8080 (env PORT); 0 picks a free port
  --host HOST           default 127.0.0.1 (loopback only); 0.0.0.0 to listen on every interface
  --store SPEC          sqlite:PATH (default ${DEFAULT_STORE}), redis://HOST:PORT, memory
  --namespace NAME      default gateway
  --shared-cache        share answers between API keys (default: partitioned by API key)
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
    "state-memory": { type: "string" },
    "state-dir": { type: "string" },
    "state-dir-size": { type: "string" },
    "no-state-cache": { type: "boolean" },
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
  const gatewayOptions = {
    ...keyingOptions(values),
    ...(concurrency > 0 && { upstreamQueue: { concurrency, maxQueue } }),
    bodyLimitBytes: integer(values, "body-limit", 10 * 1024 * 1024, 1),
    firstByteTimeoutMs: integer(values, "first-byte-timeout", 120_000, 1),
    idleTimeoutMs: integer(values, "idle-timeout", 120_000, 1),
    ...(Array.isArray(values["allow-namespace"]) && {
      namespaces: values["allow-namespace"] as string[],
    }),
    ...(Array.isArray(values["allowed-origin"]) && {
      allowedOrigins: values["allowed-origin"] as string[],
    }),
  };
  const adminToken = option(values, "admin-token", "INFERCACHE_ADMIN_TOKEN");
  const local = option(values, "upstream", "INFERCACHE_UPSTREAM") === undefined;
  const stateCache = stateCacheOptions(values, local);
  const source = await openSource(values, stateCache === undefined ? {} : { stateCache });
  const store = await openStore(option(values, "store") ?? DEFAULT_STORE);
  const { createGateway } = await import("../server/gateway/gateway.js");
  const gateway = createGateway({
    ...source.gateway,
    store,
    ...gatewayOptions,
    ...(adminToken !== undefined && { adminToken }),
  });
  const url = await gateway.listen({ port, host: option(values, "host") ?? "127.0.0.1" });
  process.stdout.write(
    `infercache gateway listening on ${url}/v1 (${source.label}, store ${store.kind}); dashboard at ${url}/\n`,
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
