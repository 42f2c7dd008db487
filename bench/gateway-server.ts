/**
 * One server of the gateway benchmark, in its own process (forked with IPC by
 * `bench/gateway-procs.ts`), so no two servers and no load generator share an event loop:
 *
 *   upstream  a loopback OpenAI-format upstream (chat completions, plain or `stream: true`)
 *   bare      a bare node:http server answering every request with the same bytes and headers
 *   node-http the gateway's own HTTP layer (`nodeServer` + `Router` from src/server/http) answering
 *             the same bytes as `bare` without the pipeline: what the plumbing costs on its own
 *   proxy     a bare node:http pipe proxy to the upstream (the limit of any forwarding server)
 *   gateway   `createGateway()` over the upstream, with a MemoryStore or a SqliteStore file
 *
 * Usage: fork(this file, [kind, JSON config]); it sends `{ type: "ready", url }`, then answers
 * `cpu` (this process's user+system CPU time and the requests it has served since it started)
 * and `stats` (the gateway's hits and misses), starts and stops a CPU profile of itself
 * (`profile-start` with the interval in µs, `profile-stop` with the file to write: the
 * inspector's sampling profiler, as `--cpu-prof`, but over the load only, not the start-up), and closes on `exit`.
 *
 * `INFERCACHE_BENCH_DIST=1` runs the gateway from `dist/` (built by `npm run build`) instead of
 * `src/` through tsx: the same code, with line numbers a profile can point at.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { Session } from "node:inspector";
import { tmpdir } from "node:os";
import { join } from "node:path";

export type ServerConfig =
  | { kind: "upstream" }
  | {
      kind: "bare" | "node-http";
      status: number;
      headers: Record<string, string>;
      body: string;
    }
  | { kind: "proxy"; upstream: string }
  | { kind: "gateway"; store: "memory" | "sqlite"; upstream: string };

export type ToServer =
  | { type: "cpu" | "stats" | "exit"; id: number }
  | { type: "profile-start"; id: number; interval: number }
  | { type: "profile-stop"; id: number; path: string };
export type FromServer =
  | { type: "ready"; url: string }
  | { type: "cpu"; id: number; userUs: number; systemUs: number; requests: number }
  | { type: "stats"; id: number; hits: number; misses: number; errors: number }
  | { type: "exit" | "profile-start" | "profile-stop"; id: number };

/** The answer text: a function of the last user message, padded to a realistic ~1 KB. */
const FILLER =
  " Caching an answer means the second identical request costs a lookup instead of a model call;".repeat(
    10,
  );

function startUpstream(): http.Server {
  let counter = 0;
  return http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const json = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
        model?: string;
        stream?: boolean;
        messages?: { content?: string }[];
      };
      const text = `echo: ${json.messages?.at(-1)?.content ?? ""}.${FILLER}`;
      const id = `chatcmpl-${++counter}`;
      const model = json.model ?? "bench";
      if (json.stream === true) {
        response.writeHead(200, { "content-type": "text/event-stream" });
        const base = { id, object: "chat.completion.chunk", created: 1_700_000_000, model };
        const pieces = text.match(/.{1,64}/gs) ?? [];
        const chunk = (delta: unknown, finish: string | null) =>
          `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`;
        let out = chunk({ role: "assistant", content: "" }, null);
        for (const piece of pieces) out += chunk({ content: piece }, null);
        out += chunk({}, "stop");
        out += "data: [DONE]\n\n";
        response.end(out);
        return;
      }
      const body = JSON.stringify({
        id,
        object: "chat.completion",
        created: 1_700_000_000,
        model,
        choices: [
          {
            index: 0,
            message: { role: "assistant", content: text, refusal: null },
            logprobs: null,
            finish_reason: "stop",
          },
        ],
        usage: { prompt_tokens: 20, completion_tokens: 200, total_tokens: 220 },
      });
      response.writeHead(200, { "content-type": "application/json" });
      response.end(body);
    });
  });
}

function startBare(config: Extract<ServerConfig, { kind: "bare" | "node-http" }>): http.Server {
  const body = Buffer.from(config.body);
  return http.createServer((request, response) => {
    // Read the body like any server that looks at it, then answer the same bytes.
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      response.writeHead(config.status, config.headers);
      response.end(body);
    });
  });
}

function startProxy(config: Extract<ServerConfig, { kind: "proxy" }>): http.Server {
  const target = new URL(config.upstream);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  return http.createServer((request, response) => {
    const upstream = http.request(
      {
        host: target.hostname,
        port: target.port,
        path: request.url,
        method: request.method,
        headers: { ...request.headers, host: target.host },
        agent,
      },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      },
    );
    upstream.on("error", () => response.destroy());
    request.pipe(upstream);
  });
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? "{}") as ServerConfig;
  const send = (message: FromServer) => process.send?.(message);
  let server: http.Server;
  let stats = () => ({ hits: 0, misses: 0, errors: 0 });
  let close = async () => {};
  if (config.kind === "node-http") {
    const { nodeServer, Router }: typeof import("../src/server/http/node-http.js") = await import(
      `${process.env.INFERCACHE_BENCH_DIST === "1" ? "../dist" : "../src"}/server/http/node-http.js`
    );
    const routes = new Router()
      .under("*", "/v1/", async (request) => {
        await request.body();
        // A fresh headers object per answer, as the pipeline makes one.
        return { status: config.status, headers: { ...config.headers }, body: config.body };
      })
      .handler();
    const node = nodeServer(routes);
    const url = await node.listen();
    server = node.server;
    close = () => node.close(1000);
    count(server);
    send({ type: "ready", url });
  } else if (config.kind === "gateway") {
    const from = process.env.INFERCACHE_BENCH_DIST === "1" ? "../dist" : "../src";
    const { createGateway }: typeof import("../src/server.js") = await import(`${from}/server.js`);
    let store: import("../src/store/store.js").Store | undefined;
    let dir: string | undefined;
    if (config.store === "sqlite") {
      const { SqliteStore }: typeof import("../src/sqlite.js") = await import(`${from}/sqlite.js`);
      dir = mkdtempSync(join(tmpdir(), "infercache-gateway-bench-"));
      store = new SqliteStore({ path: join(dir, "cache.db") });
    }
    const gateway = createGateway({
      upstream: config.upstream,
      ...(store !== undefined && { store }),
      logger: { warn: (message) => process.stderr.write(`${message}\n`) },
    });
    const url = await gateway.listen();
    server = gateway.server.server;
    stats = () => {
      const s = gateway.pipeline.stats();
      return { hits: s.hits, misses: s.misses, errors: s.errors };
    };
    close = async () => {
      await gateway.close(1000);
      await store?.close?.();
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    };
    count(server);
    send({ type: "ready", url });
  } else {
    server =
      config.kind === "upstream"
        ? startUpstream()
        : config.kind === "proxy"
          ? startProxy(config)
          : startBare(config);
    // As the gateway's server: idle keep-alive sockets live 5 s.
    server.keepAliveTimeout = 5_000;
    count(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    const port = typeof address === "object" && address !== null ? address.port : 0;
    close = () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    send({ type: "ready", url: `http://127.0.0.1:${port}` });
  }
  process.on("message", (message: ToServer) => {
    if (message.type === "cpu") {
      const cpu = process.cpuUsage();
      send({
        type: "cpu",
        id: message.id,
        userUs: cpu.user,
        systemUs: cpu.system,
        requests: served,
      });
    } else if (message.type === "stats") {
      send({ type: "stats", id: message.id, ...stats() });
    } else if (message.type === "profile-start") {
      profiler.connect();
      profiler.post("Profiler.enable", () =>
        profiler.post("Profiler.setSamplingInterval", { interval: message.interval }, () =>
          profiler.post("Profiler.start", () => send({ type: "profile-start", id: message.id })),
        ),
      );
    } else if (message.type === "profile-stop") {
      profiler.post("Profiler.stop", (error, result) => {
        if (error === null) writeFileSync(message.path, JSON.stringify(result.profile));
        profiler.disconnect();
        send({ type: "profile-stop", id: message.id });
      });
    } else if (message.type === "exit") {
      void close().finally(() => {
        send({ type: "exit", id: message.id });
        process.disconnect?.();
        process.exit(0);
      });
    }
  });
  // The benchmark's process went away without saying so: do not outlive it.
  process.on("disconnect", () => process.exit(0));
}

const profiler = new Session();
let served = 0;
function count(server: http.Server): void {
  server.on("request", () => {
    served++;
  });
}

await main();
