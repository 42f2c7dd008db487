/**
 * Tenants: the keyed hash (HMAC-SHA-256) of every credential a request carries for the
 * upstream — `Authorization`, `x-api-key` (Anthropic), `api-key` (Azure OpenAI),
 * `x-goog-api-key` (Gemini), and the `key` / `api-key` / `api_key` query parameters — so a wrong
 * key, or none, never reads a valid key's answers, whichever way the upstream takes its key.
 * Requests without any credential share one tenant of their own ("anonymous").
 *
 * The secret is persisted with the store when the store can keep one (SQLite, Redis), so
 * restarts and other instances on the same store keep their hits; otherwise it is random per
 * process. Credentials are never logged or kept: only their hashes, in a bounded map.
 */

import { createHmac } from "node:crypto";
import { CREDENTIAL_PARAMS } from "../../llm/pipeline.js";
import { header, type LlmRequest, type RawHeaders } from "../../llm/protocol.js";

export const CREDENTIAL_HEADERS = [
  "authorization",
  "x-api-key",
  "api-key",
  "x-goog-api-key",
] as const;

/** The tenant of requests without credentials. */
export const ANONYMOUS = "anonymous";

export class Tenants {
  readonly #secret: string;
  readonly #known = new Map<string, string>();

  constructor(secret: string) {
    this.#secret = secret;
  }

  /** The tenant of a request. */
  of(request: Pick<LlmRequest, "headers" | "url">): string {
    return this.ofParts(
      request.headers,
      request.url.search === "" ? undefined : request.url.searchParams,
    );
  }

  ofParts(headers: RawHeaders, query: URLSearchParams | undefined): string {
    let material = "";
    for (const name of CREDENTIAL_HEADERS) {
      const value = header(headers, name);
      if (value !== undefined) material += `${name}\u0000${value}\u0000`;
    }
    if (query !== undefined) {
      for (const name of CREDENTIAL_PARAMS) {
        for (const value of query.getAll(name)) material += `?${name}\u0000${value}\u0000`;
      }
    }
    if (material === "") return ANONYMOUS;
    let tenant = this.#known.get(material);
    if (tenant === undefined) {
      tenant = createHmac("sha256", this.#secret).update(material).digest("hex").slice(0, 32);
      if (this.#known.size >= 10_000) this.#known.clear();
      this.#known.set(material, tenant);
    }
    return tenant;
  }
}
