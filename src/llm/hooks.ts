/**
 * The `redact` and `noStore` hooks of `cachingFetch` and the gateway (`--hooks ./hooks.js`).
 *
 * `noStore(request)` sees the request as the client sent it; when it says `true`, the request
 * bypasses the cache (never read, never stored; `x-infercache: bypass`). `redact(request)` then
 * returns the body to use instead — for the key *and* for the upstream: the model sees the
 * redacted body, so an answer is only ever served for the input that produced it. Requests whose
 * bodies redact the same share one answer; that is the point, and the risk (see the README).
 *
 * Hooks run before the request is parsed; a hook that throws fails the request (`HookError`,
 * a 500 from the gateway) with nothing sent upstream and nothing stored.
 */

import { HookError } from "../base/hook-error.js";
import type { LlmRequest, RawHeaders } from "./protocol.js";

/** What a hook sees of a request. */
export interface LlmHookRequest {
  readonly method: string;
  /** The API path as the upstream sees it, e.g. `/v1/chat/completions`. */
  readonly path: string;
  readonly headers: RawHeaders;
  /** The body parsed as JSON when it is JSON, else its bytes (a multipart form). */
  readonly body: unknown;
}

export interface LlmHooks {
  /**
   * The body to key, store under and send upstream instead of the client's: a JSON value (sent
   * as JSON), a string or bytes. Runs after `noStore`, for every cached route.
   */
  redact?: ((request: LlmHookRequest) => unknown) | undefined;
  /** `true`: answer this request without reading or writing the cache (a bypass). */
  noStore?: ((request: LlmHookRequest) => boolean | Promise<boolean>) | undefined;
}

/** Checks hook options once, at construction. */
export function checkHooks(hooks: LlmHooks, what: string): LlmHooks | undefined {
  for (const name of ["redact", "noStore"] as const) {
    const hook = hooks[name];
    if (hook !== undefined && typeof hook !== "function") {
      throw new TypeError(
        `${what}: Expected \`${name}\` to be a function, got \`${String(hook)}\` (${typeof hook})`,
      );
    }
  }
  return hooks.redact === undefined && hooks.noStore === undefined ? undefined : hooks;
}

/** Runs the hooks on a request: the request to use, and whether it must bypass the cache. */
export async function applyHooks(
  request: LlmRequest,
  hooks: LlmHooks,
): Promise<{ request: LlmRequest; noStore: boolean }> {
  const view: LlmHookRequest = {
    method: request.method,
    path: request.url.pathname,
    headers: request.headers,
    body: bodyOf(request),
  };
  let noStore = false;
  if (hooks.noStore !== undefined) {
    let verdict: unknown;
    try {
      verdict = await hooks.noStore(view);
    } catch (error) {
      throw HookError.threw("noStore", error);
    }
    if (typeof verdict !== "boolean") {
      throw new HookError("noStore", `returned ${typeof verdict}, not a boolean`);
    }
    noStore = verdict;
  }
  if (hooks.redact === undefined) return { request, noStore };
  let body: unknown;
  try {
    body = await hooks.redact(view);
  } catch (error) {
    throw HookError.threw("redact", error);
  }
  const bytes = bytesOf(body);
  if (bytes === undefined) {
    throw new HookError("redact", `returned ${body === null ? "null" : typeof body}, not a body`);
  }
  return { request: withBody(request, bytes), noStore };
}

function bodyOf(request: LlmRequest): unknown {
  const type = request.headers["content-type"];
  const text = Array.isArray(type) ? type.join(", ") : (type ?? "");
  if (!/\bjson\b/i.test(text) && text !== "") return request.body;
  try {
    return JSON.parse(Buffer.from(request.body).toString("utf8")) as unknown;
  } catch {
    return request.body;
  }
}

function bytesOf(body: unknown): Uint8Array | undefined {
  if (body instanceof Uint8Array) return body;
  if (typeof body === "string") return Buffer.from(body, "utf8");
  if (body === undefined || typeof body === "function" || typeof body === "symbol")
    return undefined;
  const text = JSON.stringify(body);
  return text === undefined ? undefined : Buffer.from(text, "utf8");
}

/** The request with another body; the signal stays the client's (read when needed). */
function withBody(request: LlmRequest, body: Uint8Array): LlmRequest {
  return {
    method: request.method,
    url: request.url,
    headers: request.headers,
    body,
    get signal() {
      return request.signal;
    },
  };
}
