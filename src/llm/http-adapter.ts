/**
 * Serves a fetch-style handler (`(request: Request) => Promise<Response>`) on node:http, streaming
 * response bodies as they are produced. Binds loopback unless told otherwise. Used by the local
 * llama engine and the gateway.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

export type FetchHandler = (request: Request) => Promise<Response>;

export interface NodeServeOptions {
  /** @default 0 (a free port) */
  port?: number;
  /** @default "127.0.0.1" */
  host?: string;
}

export interface ServedHandler {
  /** e.g. `http://127.0.0.1:41234` */
  url: string;
  port: number;
  server: Server;
  /** Stops at once, cutting open connections. */
  close(): Promise<void>;
  /** Stops accepting, lets requests in flight finish (up to `timeoutMs`), then closes. */
  drain(timeoutMs?: number): Promise<void>;
}

export async function serveFetchHandler(
  handler: FetchHandler,
  options: NodeServeOptions = {},
): Promise<ServedHandler> {
  const server = createServer((incoming, outgoing) => {
    void respond(handler, incoming, outgoing);
  });
  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
    port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
    drain: (timeoutMs = 10_000) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.closeAllConnections(), timeoutMs);
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}

async function respond(
  handler: FetchHandler,
  incoming: IncomingMessage,
  outgoing: ServerResponse,
): Promise<void> {
  const controller = abortOnClose(outgoing);
  try {
    const method = incoming.method ?? "GET";
    // Buffer the body: a Web stream wrapped around the socket costs more than the bytes do.
    let body: Buffer | undefined;
    if (method !== "GET" && method !== "HEAD") {
      const chunks: Buffer[] = [];
      for await (const chunk of incoming) chunks.push(chunk as Buffer);
      body = Buffer.concat(chunks);
    }
    const response = await handler(toWebRequest(incoming, body, controller.signal));
    await writeWebResponse(response, outgoing, controller.signal);
  } catch (error) {
    writeFailure(outgoing, error);
  }
}

/** An AbortController that fires when the client goes away before the response is finished. */
export function abortOnClose(outgoing: ServerResponse): AbortController {
  const controller = new AbortController();
  outgoing.once("close", () => {
    if (!outgoing.writableFinished) controller.abort(new Error("client disconnected"));
  });
  return controller;
}

/** A Web `Request` for a node:http request whose body has been read. */
export function toWebRequest(
  incoming: IncomingMessage,
  body: Buffer | undefined,
  signal: AbortSignal,
): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(incoming.headers)) {
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else if (value !== undefined) headers.set(name, value);
  }
  const method = incoming.method ?? "GET";
  return new Request(`http://${incoming.headers.host ?? "localhost"}${incoming.url ?? "/"}`, {
    method,
    headers,
    signal,
    ...(body !== undefined && method !== "GET" && method !== "HEAD" && { body }),
  });
}

/** Writes a Web `Response` to node:http, streaming its body; stops when `signal` fires. */
export async function writeWebResponse(
  response: Response,
  outgoing: ServerResponse,
  signal: AbortSignal,
): Promise<void> {
  outgoing.statusCode = response.status;
  response.headers.forEach((value, name) => {
    if (name !== "set-cookie") outgoing.setHeader(name, value);
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) outgoing.setHeader("set-cookie", cookies);
  if (response.body === null) {
    outgoing.end();
    return;
  }
  outgoing.flushHeaders();
  const reader = response.body.getReader();
  // A read waiting for the next chunk (an idle event stream) ends when the client leaves.
  const cancel = () => {
    reader.cancel(signal.reason).catch(() => {});
  };
  if (signal.aborted) cancel();
  else signal.addEventListener("abort", cancel, { once: true });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done || signal.aborted) break;
      outgoing.write(value);
    }
  } finally {
    signal.removeEventListener("abort", cancel);
  }
  outgoing.end();
}

/** A 500 with a JSON error, or a cut connection once the headers are out. */
export function writeFailure(outgoing: ServerResponse, error: unknown): void {
  if (!outgoing.headersSent) {
    outgoing.statusCode = 500;
    outgoing.setHeader("content-type", "application/json");
    outgoing.end(
      JSON.stringify({ error: { message: (error as Error).message, type: "server_error" } }),
    );
  } else {
    outgoing.destroy(error as Error);
  }
}
