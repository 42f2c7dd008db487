#!/usr/bin/env node
/**
 * `infercache serve`: the OpenAI-compatible caching gateway.
 *
 *   infercache serve --upstream https://api.openai.com/v1       # in front of an API
 *   infercache serve --model ../shared/models/llama-2-tiny-random.gguf   # the local engine
 *
 * Options (or environment): --upstream (INFERCACHE_UPSTREAM), --model (INFERCACHE_MODEL),
 * --port (PORT, 8080; 0 = any free port), --host (127.0.0.1), --store (sqlite:PATH, redis://…,
 * memory; default sqlite:./.infercache/cache.db), --shared-cache, --admin-token
 * (INFERCACHE_ADMIN_TOKEN), --tenant-secret (INFERCACHE_TENANT_SECRET). SIGINT/SIGTERM drain the
 * requests in flight, then exit.
 */

import { parseArgs } from "node:util";
import type { Store } from "../store/store.js";

const usage = `Usage: infercache serve (--upstream URL | --model PATH) [--port 8080] [--host 127.0.0.1]
                       [--store sqlite:PATH | redis://HOST:PORT | memory] [--shared-cache]
                       [--admin-token TOKEN] [--tenant-secret SECRET]`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command !== "serve") {
    process.stderr.write(
      `${command === undefined ? "" : `Unknown command \`${command}\`.\n`}${usage}\n`,
    );
    return 2;
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: rest,
      options: {
        upstream: { type: "string" },
        model: { type: "string" },
        port: { type: "string" },
        host: { type: "string" },
        store: { type: "string" },
        "shared-cache": { type: "boolean" },
        "admin-token": { type: "string" },
        "tenant-secret": { type: "string" },
      },
    }).values;
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${usage}\n`);
    return 2;
  }
  const upstream = (values.upstream as string | undefined) ?? process.env.INFERCACHE_UPSTREAM;
  const model = (values.model as string | undefined) ?? process.env.INFERCACHE_MODEL;
  if ((upstream === undefined || upstream === "") && (model === undefined || model === "")) {
    process.stderr.write(
      "infercache serve needs something to cache: set --upstream URL (or INFERCACHE_UPSTREAM) for an OpenAI-compatible API,\n" +
        "or --model PATH (or INFERCACHE_MODEL) for the local engine, e.g. INFERCACHE_MODEL=../shared/models/llama-2-tiny-random.gguf npm start\n",
    );
    return 2;
  }
  const port = Number((values.port as string | undefined) ?? process.env.PORT ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(
      `Expected --port to be a port number (0 for any free port), got \`${String(values.port)}\`\n`,
    );
    return 2;
  }
  const host = (values.host as string | undefined) ?? "127.0.0.1";
  const store = await openStore(
    (values.store as string | undefined) ?? "sqlite:./.infercache/cache.db",
  );
  const { createGateway } = await import("../server/gateway.js");
  const { serveFetchHandler } = await import("../llm/http-adapter.js");
  let engine: { handle(request: Request): Promise<Response>; close(): Promise<void> } | undefined;
  if (upstream === undefined || upstream === "") {
    const { LlamaEngine } = await import("../llama/engine.js");
    engine = await LlamaEngine.load({ modelPath: model as string });
  }
  const gateway = createGateway({
    ...(engine !== undefined ? { engine } : { upstream: upstream as string }),
    store,
    sharedCache: values["shared-cache"] === true,
    ...(((values["admin-token"] as string | undefined) ?? process.env.INFERCACHE_ADMIN_TOKEN) !==
      undefined && {
      adminToken: ((values["admin-token"] as string | undefined) ??
        process.env.INFERCACHE_ADMIN_TOKEN) as string,
    }),
    ...(((values["tenant-secret"] as string | undefined) ??
      process.env.INFERCACHE_TENANT_SECRET) !== undefined && {
      tenantSecret: ((values["tenant-secret"] as string | undefined) ??
        process.env.INFERCACHE_TENANT_SECRET) as string,
    }),
  });
  const served = await serveFetchHandler(gateway.handle, { port, host });
  process.stdout.write(
    `infercache gateway listening on ${served.url}/v1 (${engine !== undefined ? `local model ${model}` : `upstream ${upstream}`}, store ${store.kind})\n`,
  );
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  process.stdout.write("infercache gateway draining…\n");
  await served.drain();
  await store.close();
  await engine?.close();
  return 0;
}

async function openStore(spec: string): Promise<Store> {
  if (spec === "memory") {
    const { MemoryStore } = await import("../store/memory.js");
    return new MemoryStore({ maxSize: 10_000 });
  }
  if (spec.startsWith("redis://") || spec.startsWith("rediss://")) {
    const { RedisStore } = await import("../store/redis.js");
    return new RedisStore({ url: spec });
  }
  if (spec.startsWith("sqlite:")) {
    const { SqliteStore } = await import("../store/sqlite.js");
    return new SqliteStore({ path: spec.slice("sqlite:".length) });
  }
  throw new TypeError(
    `Expected --store to be sqlite:PATH, redis://HOST:PORT or memory, got \`${spec}\``,
  );
}

if (
  import.meta.url === `file://${process.argv[1]}` ||
  process.argv[1]?.endsWith("cli/main.js") ||
  process.argv[1]?.endsWith("cli/main.ts")
) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`infercache: ${(error as Error).message}\n`);
      process.exit(1);
    },
  );
}
