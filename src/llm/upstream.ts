/**
 * The upstream, as the pipeline calls it: a function from a request to a status, headers and a
 * byte stream. Two of them: `httpUpstream` (node:http/https with keep-alive, no Web
 * `Request`/`Response` objects on the gateway's path) and `fetchUpstream` (any `fetch`: the
 * OpenAI SDK's, or a fetch-style handler such as the local engine's).
 *
 * Deadlines are per phase, not per call: `firstByteTimeoutMs` until the response's headers, and
 * `idleTimeoutMs` between body chunks, so a healthy stream may last as long as it streams. A
 * failure is an `UpstreamError` that keeps its cause and a `reason` fit for metrics and logs
 * (never a header, a key or a body).
 */

import http from "node:http";
import https from "node:https";
import type { ByteStream } from "./answer.js";
import { fromWebStream } from "./answer.js";
import { upstreamSpan } from "./tracing.js";

export interface UpstreamRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body: Uint8Array | string | undefined;
  signal?: AbortSignal | undefined;
}

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: ByteStream;
}

export type Upstream = (request: UpstreamRequest) => Promise<UpstreamResponse>;

export type UpstreamFailure =
  | "first-byte-timeout"
  | "idle-timeout"
  | "refused"
  | "dns"
  | "reset"
  | "tls"
  | "aborted"
  | "failed";

/** The upstream failed: `reason` says how, `cause` is what the client library threw. */
export class UpstreamError extends Error {
  override readonly name = "UpstreamError";
  constructor(
    readonly reason: UpstreamFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** 504 for deadlines, 502 for everything else. */
  get status(): number {
    return this.reason === "first-byte-timeout" || this.reason === "idle-timeout" ? 504 : 502;
  }
}

export interface Deadlines {
  /** Until the response's status and headers, ms. @default 120000 */
  firstByteTimeoutMs?: number;
  /** Between two chunks of the response's body, ms. @default 120000 */
  idleTimeoutMs?: number;
}

const agents = {
  http: new http.Agent({ keepAlive: true, maxSockets: 512 }),
  https: new https.Agent({ keepAlive: true, maxSockets: 512 }),
};

/** An upstream reached over node:http or node:https, with keep-alive connections. */
export function httpUpstream(deadlines: Deadlines = {}): Upstream {
  return withDeadlines(
    (request) =>
      new Promise<UpstreamResponse>((resolve, reject) => {
        const secure = request.url.protocol === "https:";
        const call = (secure ? https : http).request(
          request.url,
          {
            method: request.method,
            headers: request.headers,
            agent: secure ? agents.https : agents.http,
            ...(request.signal !== undefined && { signal: request.signal }),
          },
          (response) => {
            resolve({
              status: response.statusCode ?? 502,
              headers: response.headers,
              body: nodeBody(response),
            });
          },
        );
        call.on("error", (error) => reject(classify(error, request.signal)));
        call.end(request.body);
      }),
    deadlines,
  );
}

function nodeBody(response: http.IncomingMessage): ByteStream {
  return {
    cancel: (reason) => {
      response.destroy(reason instanceof Error ? reason : undefined);
    },
    async *[Symbol.asyncIterator]() {
      try {
        for await (const chunk of response) yield chunk as Buffer;
      } catch (error) {
        throw classify(error, undefined);
      }
    },
  };
}

type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** An upstream reached through a `fetch` (or a fetch-style handler). */
export function fetchUpstream(fetch: Fetch, deadlines: Deadlines = {}): Upstream {
  return withDeadlines(async (request) => {
    let response: Response;
    try {
      response = await fetch(request.url, {
        method: request.method,
        headers: request.headers,
        ...(request.body !== undefined && {
          body: request.body as NonNullable<RequestInit["body"]>,
        }),
        ...(request.signal !== undefined && { signal: request.signal }),
      });
    } catch (error) {
      throw classify(error, request.signal);
    }
    const headers: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      headers[name] = value;
    });
    const body: ByteStream =
      response.body === null ? emptyBody() : wrapErrors(fromWebStream(response.body));
    return { status: response.status, headers, body };
  }, deadlines);
}

/** Wraps an upstream with a first-byte deadline and an idle deadline between chunks. */
export function withDeadlines(upstream: Upstream, deadlines: Deadlines): Upstream {
  const firstByteMs = deadlines.firstByteTimeoutMs ?? 120_000;
  const idleMs = deadlines.idleTimeoutMs ?? 120_000;
  return async (request) => {
    const traced = upstreamSpan(request);
    const controller = new AbortController();
    const outer = request.signal;
    const onAbort = () => controller.abort(outer?.reason);
    if (outer?.aborted) onAbort();
    else outer?.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(
      () =>
        controller.abort(
          new UpstreamError(
            "first-byte-timeout",
            `infercache: the upstream did not answer within ${firstByteMs} ms`,
          ),
        ),
      firstByteMs,
    );
    let response: UpstreamResponse;
    try {
      response = await upstream({ ...request, signal: controller.signal });
    } catch (error) {
      outer?.removeEventListener("abort", onAbort);
      const reason = controller.signal.reason;
      traced?.end(reason instanceof UpstreamError ? reason : error);
      throw reason instanceof UpstreamError ? reason : error;
    } finally {
      clearTimeout(timer);
    }
    traced?.span.setAttribute("http.response.status_code", response.status);
    const source = response.body;
    const body: ByteStream = {
      cancel: (reason) => {
        traced?.end();
        outer?.removeEventListener("abort", onAbort);
        source.cancel(reason);
      },
      async *[Symbol.asyncIterator]() {
        const iterator = source[Symbol.asyncIterator]();
        try {
          for (;;) {
            let idle: NodeJS.Timeout | undefined;
            const next = await Promise.race([
              iterator.next(),
              new Promise<never>((_, reject) => {
                idle = setTimeout(() => {
                  const error = new UpstreamError(
                    "idle-timeout",
                    `infercache: the upstream sent nothing for ${idleMs} ms`,
                  );
                  source.cancel(error);
                  reject(error);
                }, idleMs);
              }),
            ]).finally(() => clearTimeout(idle));
            if (next.done === true) return;
            yield next.value;
          }
        } catch (error) {
          traced?.end(error);
          throw error;
        } finally {
          traced?.end();
          outer?.removeEventListener("abort", onAbort);
          await iterator.return?.();
        }
      },
    };
    return { ...response, body };
  };
}

function emptyBody(): ByteStream {
  return {
    cancel: () => {},
    async *[Symbol.asyncIterator]() {},
  };
}

function wrapErrors(body: ByteStream): ByteStream {
  return {
    cancel: (reason) => body.cancel(reason),
    async *[Symbol.asyncIterator]() {
      try {
        yield* body;
      } catch (error) {
        throw classify(error, undefined);
      }
    },
  };
}

/** An UpstreamError for what a client library threw, keeping it as the cause. */
export function classify(error: unknown, signal: AbortSignal | undefined): UpstreamError {
  if (error instanceof UpstreamError) return error;
  if (signal?.aborted === true && signal.reason instanceof UpstreamError) return signal.reason;
  const found = codeOf(error);
  const reason: UpstreamFailure =
    signal?.aborted === true || found.name === "AbortError"
      ? "aborted"
      : found.code === "ECONNREFUSED"
        ? "refused"
        : found.code === "ENOTFOUND" || found.code === "EAI_AGAIN"
          ? "dns"
          : found.code === "ECONNRESET" || found.code === "EPIPE" || found.code === "UND_ERR_SOCKET"
            ? "reset"
            : /CERT|TLS|SSL/.test(found.code ?? "")
              ? "tls"
              : "failed";
  const messages: Record<UpstreamFailure, string> = {
    "first-byte-timeout": "the upstream did not answer in time",
    "idle-timeout": "the upstream stopped sending",
    refused: "the upstream refused the connection",
    dns: "the upstream's host name could not be resolved",
    reset: "the upstream closed the connection",
    tls: "the upstream's TLS certificate or handshake failed",
    aborted: "the request was aborted",
    failed: "the upstream could not be reached",
  };
  return new UpstreamError(reason, `infercache: ${messages[reason]}`, { cause: error });
}

/** The error code and name of an error or of the causes it wraps (fetch wraps them). */
function codeOf(error: unknown): { code?: string; name?: string } {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current !== undefined && current !== null; depth++) {
    const { code, name, cause } = current as { code?: unknown; name?: unknown; cause?: unknown };
    if (typeof code === "string") return { code, name: typeof name === "string" ? name : "" };
    if (name === "AbortError") return { name };
    current = cause;
  }
  return {};
}
