/**
 * The HTTP plumbing the gateway, `serve()` and the local engine share: a route table, a
 * node:http server that runs it (bodies read once and bounded, answers written with
 * back-pressure, a stream cancelled when its client leaves, draining close), and the adapters
 * between it and fetch-style handlers (`Request` → `Response`).
 *
 * The hot path allocates little: no URL object, no Web `Request`/`Response`, and the abort
 * signal of a request is only made when someone asks for it.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import {
  type Answer,
  type ByteStream,
  fromWebStream,
  isByteStream,
  toWebStream,
} from "../../llm/answer.js";
import type { RawHeaders } from "../../llm/protocol.js";
import { HttpError } from "./errors.js";

export interface HttpRequest {
  readonly method: string;
  /** The path and query as received, e.g. `/v1/chat/completions?x=1`. */
  readonly url: string;
  /** The path without the query. */
  readonly path: string;
  /** The query string with its `?`, or `""`. */
  readonly search: string;
  readonly headers: RawHeaders;
  /** Fires when the client has gone (made on first use). */
  readonly signal: AbortSignal;
  readonly remoteAddress: string | undefined;
  /** The body, read once. @throws HttpError 413 past the server's limit */
  body(): Promise<Buffer>;
}

export type Handler = (request: HttpRequest) => Answer | Promise<Answer>;

interface Route {
  method: string;
  path: string;
  prefix: boolean;
  handler: Handler;
}

/** Routes by method and path: exact paths first, then the longest matching prefix. */
export class Router {
  readonly #exact = new Map<string, Map<string, Handler>>();
  readonly #prefixes: Route[] = [];

  /** `method` is an HTTP method or `*`. */
  on(method: string, path: string, handler: Handler): this {
    let byMethod = this.#exact.get(path);
    if (byMethod === undefined) {
      byMethod = new Map();
      this.#exact.set(path, byMethod);
    }
    byMethod.set(method, handler);
    return this;
  }

  /** Every path under `path` (e.g. `/v1/`). */
  under(method: string, path: string, handler: Handler): this {
    this.#prefixes.push({ method, path, prefix: true, handler });
    this.#prefixes.sort((a, b) => b.path.length - a.path.length);
    return this;
  }

  /** The handler of a request, or an error answer (404 with the routes, 405). */
  match(method: string, path: string): Handler | HttpError {
    const byMethod = this.#exact.get(path);
    if (byMethod !== undefined) {
      const handler = byMethod.get(method) ?? byMethod.get("*");
      if (handler !== undefined) return handler;
    }
    for (const route of this.#prefixes) {
      if (path.startsWith(route.path) && (route.method === "*" || route.method === method)) {
        return route.handler;
      }
    }
    if (byMethod !== undefined) {
      return new HttpError(
        405,
        `${method} is not supported on ${path}; use ${[...byMethod.keys()].join(" or ")}`,
      );
    }
    // The path is not echoed: it may hold what its sender should not see in an error.
    return new HttpError(
      404,
      `no route for this ${method} path; the routes are ${this.describe()}`,
    );
  }

  /** The routes, for a 404's message. */
  describe(): string {
    const routes = [...this.#exact.entries()].flatMap(([path, methods]) =>
      [...methods.keys()].map((method) => `${method === "*" ? "" : `${method} `}${path}`),
    );
    for (const route of this.#prefixes)
      routes.push(`${route.method === "*" ? "" : `${route.method} `}${route.path}*`);
    return routes.join(", ");
  }

  /** A handler running this table (errors become JSON answers). */
  handler(): Handler {
    return (request) => {
      const found = this.match(request.method, request.path);
      return found instanceof HttpError ? found.answer() : found(request);
    };
  }
}

export interface ListenOptions {
  /** @default 0 (a free port) */
  port?: number;
  /** @default "127.0.0.1" */
  host?: string;
}

export interface ServerOptions {
  /** Request bodies past this get 413. @default 10 MiB */
  bodyLimitBytes?: number;
  /** Time for a whole request (headers and body) to arrive, ms. @default 60000 */
  requestTimeoutMs?: number;
  /** A connection with no bytes moving either way this long is closed, ms. @default 300000 */
  idleSocketTimeoutMs?: number;
  /** What a handler that throws answers (an `HttpError` carries its own status). */
  onError?: (error: unknown, request: HttpRequest) => Answer;
}

export interface NodeServer {
  readonly server: Server;
  /** Starts listening and resolves the base URL, e.g. `http://127.0.0.1:8080`. */
  listen(options?: ListenOptions): Promise<string>;
  /** Stops accepting, lets requests in flight finish (up to `timeoutMs`), then closes. */
  close(timeoutMs?: number): Promise<void>;
}

/** A node:http server running `handler`. */
export function nodeServer(handler: Handler, options: ServerOptions = {}): NodeServer {
  const limit = options.bodyLimitBytes ?? 10 * 1024 * 1024;
  const onError = options.onError ?? defaultError;
  const server = createServer((incoming, outgoing) => {
    void respond(handler, incoming, outgoing, limit, onError);
  });
  // Keep-alive connections outlive a quick test or benchmark; idle ones are closed on close().
  server.keepAliveTimeout = 5_000;
  // A request (headers and body) must arrive within a minute; a connection with nothing moving
  // either way for 5 minutes (a client that stopped reading) is closed. Both outlast the
  // upstream deadlines' defaults (2 minutes), so no healthy answer is cut.
  server.requestTimeout = options.requestTimeoutMs ?? 60_000;
  server.timeout = options.idleSocketTimeoutMs ?? 300_000;
  return {
    server,
    listen: (listen = {}) =>
      new Promise<string>((resolve, reject) => {
        const host = listen.host ?? "127.0.0.1";
        const fail = (error: Error) => reject(listenError(error, host, listen.port ?? 0));
        server.once("error", fail);
        server.listen(listen.port ?? 0, host, () => {
          server.off("error", fail);
          resolve(baseUrl(server, host));
        });
      }),
    close: (timeoutMs = 10_000) =>
      new Promise<void>((resolve) => {
        if (!server.listening) {
          resolve();
          return;
        }
        const timer = setTimeout(() => server.closeAllConnections(), timeoutMs);
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}

/** The base URL of a listening server, with IPv6 hosts in brackets. */
export function baseUrl(server: Server, host: string): string {
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

function listenError(error: Error, host: string, port: number): Error {
  const code = (error as { code?: string }).code;
  if (code === "EADDRINUSE") {
    return new Error(`infercache: port ${port} on ${host} is in use; pick another with --port`, {
      cause: error,
    });
  }
  if (code === "EADDRNOTAVAIL") {
    return new Error(`infercache: ${host} is not an address of this machine; check --host`, {
      cause: error,
    });
  }
  return error;
}

class NodeRequest implements HttpRequest {
  readonly method: string;
  readonly url: string;
  readonly path: string;
  readonly search: string;
  readonly headers: RawHeaders;
  readonly #incoming: IncomingMessage;
  readonly #outgoing: ServerResponse;
  readonly #limit: number;
  #controller: AbortController | undefined;
  #body: Promise<Buffer> | undefined;

  constructor(incoming: IncomingMessage, outgoing: ServerResponse, limit: number) {
    this.#incoming = incoming;
    this.#outgoing = outgoing;
    this.#limit = limit;
    this.method = incoming.method ?? "GET";
    this.url = incoming.url ?? "/";
    const q = this.url.indexOf("?");
    this.path = q === -1 ? this.url : this.url.slice(0, q);
    this.search = q === -1 ? "" : this.url.slice(q);
    this.headers = incoming.headers;
  }

  get remoteAddress(): string | undefined {
    return this.#incoming.socket.remoteAddress;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      const controller = new AbortController();
      this.#controller = controller;
      const outgoing = this.#outgoing;
      if (outgoing.destroyed && !outgoing.writableFinished) controller.abort(gone());
      else
        outgoing.once("close", () => {
          if (!outgoing.writableFinished) controller.abort(gone());
        });
    }
    return this.#controller.signal;
  }

  body(): Promise<Buffer> {
    this.#body ??= readBody(this.#incoming, this.#limit);
    return this.#body;
  }
}

function gone(): Error {
  return new Error("infercache: the client disconnected");
}

async function readBody(incoming: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(incoming.headers["content-length"] ?? Number.NaN);
  if (declared > limit) {
    incoming.resume();
    throw new HttpError(413, `the request body is ${declared} bytes; the limit is ${limit}`);
  }
  // Events rather than `for await`: an async iterator over a stream costs a few µs per request
  // in listeners and promises, a tenth of a hit.
  if (incoming.destroyed) throw gone();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (error: Error | undefined) => {
      incoming.off("data", onData);
      incoming.off("end", onEnd);
      incoming.off("error", onError);
      incoming.off("close", onClose);
      if (error === undefined) {
        resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
      } else {
        reject(error);
      }
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        chunks.length = 0;
        done(new HttpError(413, `the request body is over the limit of ${limit} bytes`));
        incoming.resume();
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => done(undefined);
    const onError = (error: Error) => done(error);
    const onClose = () => done(gone());
    incoming.on("data", onData);
    incoming.once("end", onEnd);
    incoming.once("error", onError);
    incoming.once("close", onClose);
  });
}

async function respond(
  handler: Handler,
  incoming: IncomingMessage,
  outgoing: ServerResponse,
  limit: number,
  onError: (error: unknown, request: HttpRequest) => Answer,
): Promise<void> {
  const request = new NodeRequest(incoming, outgoing, limit);
  let answer: Answer;
  try {
    answer = await handler(request);
  } catch (error) {
    answer = error instanceof HttpError ? error.answer() : onError(error, request);
  }
  await writeAnswer(outgoing, answer);
}

/** Bodies larger than this are written in slices of this size. */
const SLICE = 256 * 1024;

/**
 * Writes an answer to node:http. A streamed body is written as it comes, waiting for the socket
 * when it is full; when the client leaves, the stream is cancelled (its upstream may then stop).
 */
export async function writeAnswer(outgoing: ServerResponse, answer: Answer): Promise<void> {
  const body = answer.body;
  if (!isByteStream(body)) {
    if (outgoing.destroyed) return;
    // A known length: the client knows where the answer ends, and node writes it without
    // chunked framing (`writeHead` without one commits to chunks).
    const headers = answer.headers;
    if (answer.status !== 204 && answer.status !== 304) {
      headers["content-length"] =
        typeof body === "string" ? String(Buffer.byteLength(body)) : String(body.byteLength);
    }
    outgoing.writeHead(answer.status, headers);
    if (body.length <= SLICE) {
      outgoing.end(body);
      return;
    }
    // A large body goes out in slices as the client takes them, so a client that does not read
    // holds one slice of memory, not a copy of the whole answer.
    for (let at = 0; at < body.length && !outgoing.destroyed; ) {
      let end = Math.min(at + SLICE, body.length);
      // Never cut a string between the two halves of a surrogate pair.
      if (typeof body === "string" && end < body.length) {
        const last = body.charCodeAt(end - 1);
        if (last >= 0xd800 && last <= 0xdbff) end--;
      }
      const slice = typeof body === "string" ? body.slice(at, end) : body.subarray(at, end);
      at = end;
      if (!outgoing.write(slice)) await drained(outgoing);
    }
    if (!outgoing.destroyed) outgoing.end();
    return;
  }
  if (outgoing.destroyed) {
    body.cancel(gone());
    return;
  }
  outgoing.writeHead(answer.status, answer.headers);
  outgoing.flushHeaders();
  let closed = false;
  const onClose = () => {
    closed = true;
    body.cancel(gone());
  };
  outgoing.once("close", onClose);
  try {
    for await (const chunk of body) {
      if (closed) break;
      if (!outgoing.write(chunk)) await drained(outgoing);
    }
    outgoing.off("close", onClose);
    if (!closed) outgoing.end();
  } catch (error) {
    outgoing.off("close", onClose);
    // The headers are out: all a failing stream can do is cut the connection.
    outgoing.destroy(error instanceof Error ? error : undefined);
  }
}

function drained(outgoing: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      outgoing.off("drain", done);
      outgoing.off("close", done);
      resolve();
    };
    outgoing.once("drain", done);
    outgoing.once("close", done);
  });
}

function defaultError(): Answer {
  return new HttpError(500, "infercache: the server failed to answer").answer();
}

/** The route table as a fetch-style handler, for servers that speak `Request`/`Response`. */
export function fetchHandlerOf(handler: Handler, bodyLimitBytes = 10 * 1024 * 1024) {
  return async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    const headers: Record<string, string> = {};
    request.headers.forEach((value, name) => {
      headers[name] = value;
    });
    let body: Promise<Buffer> | undefined;
    const http: HttpRequest = {
      method: request.method,
      url: url.pathname + url.search,
      path: url.pathname,
      search: url.search,
      headers,
      signal: request.signal,
      remoteAddress: undefined,
      body: () => {
        body ??= request.arrayBuffer().then((buffer) => {
          if (buffer.byteLength > bodyLimitBytes) {
            throw new HttpError(
              413,
              `the request body is over the limit of ${bodyLimitBytes} bytes`,
            );
          }
          return Buffer.from(buffer);
        });
        return body;
      },
    };
    let answer: Answer;
    try {
      answer = await handler(http);
    } catch (error) {
      answer = error instanceof HttpError ? error.answer() : defaultError();
    }
    const content = answer.body;
    return new Response(
      isByteStream(content)
        ? toWebStream(content)
        : (content as ConstructorParameters<typeof Response>[0]),
      { status: answer.status, headers: answer.headers },
    );
  };
}

/** A fetch-style handler as a route handler (the local engine behind the gateway or a port). */
export function handlerOf(fetchHandler: (request: Request) => Promise<Response>): Handler {
  return async (request) => {
    const method = request.method;
    const body = method === "GET" || method === "HEAD" ? undefined : await request.body();
    const headers = new Headers();
    for (const [name, value] of Object.entries(request.headers)) {
      if (Array.isArray(value)) for (const v of value) headers.append(name, v);
      else if (value !== undefined) headers.set(name, value);
    }
    const response = await fetchHandler(
      new Request(`http://${request.headers.host ?? "localhost"}${request.url}`, {
        method,
        headers,
        signal: request.signal,
        ...(body !== undefined && { body }),
      }),
    );
    const out: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      out[name] = value;
    });
    const stream: ByteStream | undefined =
      response.body === null ? undefined : fromWebStream(response.body);
    return { status: response.status, headers: out, body: stream ?? "" };
  };
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

/** Serves a fetch-style handler (the local engine, a test upstream) on node:http, loopback by default. */
export async function serveFetchHandler(
  fetchHandler: (request: Request) => Promise<Response>,
  options: ListenOptions & ServerOptions = {},
): Promise<ServedHandler> {
  const served = nodeServer(handlerOf(fetchHandler), options);
  const url = await served.listen(options);
  const address = served.server.address();
  return {
    url,
    port: typeof address === "object" && address !== null ? address.port : 0,
    server: served.server,
    close: () =>
      new Promise<void>((resolve) => {
        served.server.closeAllConnections();
        served.server.close(() => resolve());
      }),
    drain: (timeoutMs) => served.close(timeoutMs),
  };
}

/**
 * Makes a close end when the work does. node:http's `close()` closes the connections idle at
 * that moment, then waits — up to `NodeServer.close`'s timeout — on two kinds it does not count
 * idle: connections that never sent a request (a browser's preconnect, the spare one fetch opens
 * after an aborted stream), and keep-alive ones whose response was still running and ends later.
 * Returns what to call on close: it destroys the first kind now, and closes each of the others as
 * soon as its response is out (and answers arriving meanwhile say `Connection: close`).
 */
export function closeWhenIdle(server: Server): () => void {
  const unused = new Set<Socket>();
  let closing = false;
  const onFinish = () => {
    // After node:http's own finish handling, which makes the connection idle.
    if (closing) setImmediate(() => server.closeIdleConnections());
  };
  server.on("connection", (socket: Socket) => {
    unused.add(socket);
    socket.once("close", () => unused.delete(socket));
  });
  server.on("request", (request: IncomingMessage, response: ServerResponse) => {
    unused.delete(request.socket);
    if (closing) response.shouldKeepAlive = false;
    response.once("finish", onFinish);
  });
  return () => {
    closing = true;
    for (const socket of unused) socket.destroy();
  };
}

/** An AbortController that fires when the client goes away before the response is finished. */
export function abortOnClose(outgoing: ServerResponse): AbortController {
  const controller = new AbortController();
  outgoing.once("close", () => {
    if (!outgoing.writableFinished) controller.abort(gone());
  });
  return controller;
}
