/**
 * Request keys for OpenAI-compatible APIs: everything that can change the output is in the key,
 * nothing that cannot.
 *
 * The whole request body is hashed with `hashKey` — messages in order with every content part,
 * tools, response_format, every sampling parameter, reasoning settings, and any field this code
 * has never heard of (an unknown field may change the output, so it is kept: a needless miss
 * costs money, a wrong hit costs correctness). Only transport fields are dropped: `stream` and
 * `stream_options` (a streamed and a plain answer are the same answer) and `user` (an end-user
 * id for abuse monitoring). Object key order never matters; array order always does (the seed
 * recipe sorts messages, which changes their meaning).
 *
 * Keys are scoped by the upstream (its base URL), optionally by a tenant, and by a version.
 */

import { hashKey } from "../key/hash-key.js";

/** Fields that do not change what the model answers. */
export const TRANSPORT_FIELDS: readonly string[] = ["stream", "stream_options", "user"];

export interface KeyScope {
  /** The upstream's base URL (e.g. `https://api.openai.com/v1`): different servers, different keys. */
  upstream?: string | undefined;
  /** A tenant (e.g. a hash of the API key): one tenant never reads another's entries. */
  tenant?: string | undefined;
  /** Bump to stop serving what was cached before. */
  version?: string | number | undefined;
}

/** The key of a chat completion request (`/chat/completions`). */
export function chatKey(request: Record<string, unknown>, scope: KeyScope = {}): string {
  return requestKey("chat", request, scope);
}

/** The key of a text completion request (`/completions`). */
export function completionKey(request: Record<string, unknown>, scope: KeyScope = {}): string {
  return requestKey("completion", request, scope);
}

/**
 * The key of one embedding input: the model, the input (string or token ids) and the options that
 * change the vector or its encoding (`dimensions`, `encoding_format`, and any other field).
 */
export function embeddingKey(
  model: string,
  input: unknown,
  options: Record<string, unknown> = {},
  scope: KeyScope = {},
): string {
  return hashKey(
    { kind: "embedding", model, input, options: withoutTransport(options) },
    { context: scopeContext(scope), root: "embedding" },
  );
}

function requestKey(kind: string, request: Record<string, unknown>, scope: KeyScope): string {
  if (typeof request !== "object" || request === null || Array.isArray(request)) {
    throw new TypeError(
      `Expected the ${kind} request to be an object, got ${Array.isArray(request) ? "an array" : typeof request}`,
    );
  }
  return hashKey(
    { kind, request: withoutTransport(request) },
    { context: scopeContext(scope), root: "request" },
  );
}

function withoutTransport(request: Record<string, unknown>): Record<string, unknown> {
  // A null-prototype copy: on `{}`, `kept["__proto__"] = value` would call the inherited setter
  // (dropping a primitive, replacing the prototype with an object) instead of keeping the field
  // that JSON.parse made an own property. hashKey keys both prototypes alike.
  const kept: Record<string, unknown> = Object.create(null);
  for (const [name, value] of Object.entries(request)) {
    if (!TRANSPORT_FIELDS.includes(name)) kept[name] = value;
  }
  return kept;
}

function scopeContext(scope: KeyScope): string {
  return JSON.stringify([
    scope.upstream ?? "",
    scope.tenant ?? "",
    scope.version === undefined ? "" : `${typeof scope.version}:${scope.version}`,
  ]);
}
