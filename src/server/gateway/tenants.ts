/**
 * Tenants: the keyed hash (HMAC-SHA-256) of every credential a request carries for the
 * upstream — every header whose role is `credential` (`llm/headers.ts`: `Authorization`,
 * `x-api-key`, `api-key`, `x-goog-api-key`, `Cookie`, and any name that reads as a key, token,
 * secret or password) and the credential query parameters (`key`, `api-key`, … in any case) —
 * so a wrong key, or none, never reads a valid key's answers, whichever way the upstream takes
 * its key. Requests without any credential share one tenant of their own ("anonymous").
 *
 * Each part is length-prefixed before hashing, so no value can spell another split of the parts.
 * The secret is persisted with the store when the store can keep one (SQLite, Redis), so
 * restarts and other instances on the same store keep their hits; otherwise it is random per
 * process. Credentials are never logged or written anywhere; to spare a hash per request, the
 * hashes of recent short credentials are remembered in a bounded in-memory map (the process holds
 * those credentials anyway while it forwards them).
 */

import { createHmac } from "node:crypto";
import { headerRole } from "../../llm/headers.js";
import { isCredentialParam } from "../../llm/pipeline.js";
import type { LlmRequest, RawHeaders } from "../../llm/protocol.js";

/** The tenant of requests without credentials. */
export const ANONYMOUS = "anonymous";

/** Credentials longer than this are hashed each time rather than remembered. */
const MAX_REMEMBERED = 512;

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
    // Usually one credential header: sorted only when there are more.
    let parts: string[] = [];
    for (const name in headers) {
      const value = headers[name];
      if (value === undefined || headerRole(name) !== "credential") continue;
      parts.push(name, Array.isArray(value) ? value.join(", ") : value);
    }
    if (parts.length > 2) parts = sortedPairs(parts);
    if (query !== undefined) {
      for (const [name, value] of query) {
        if (isCredentialParam(name)) parts.push(`?${name.toLowerCase()}`, value);
      }
    }
    if (parts.length === 0) return ANONYMOUS;
    let material = "";
    for (const part of parts) material += `${part.length}:${part}`;
    let tenant = material.length <= MAX_REMEMBERED ? this.#known.get(material) : undefined;
    if (tenant === undefined) {
      tenant = createHmac("sha256", this.#secret).update(material).digest("hex").slice(0, 32);
      if (material.length <= MAX_REMEMBERED) {
        if (this.#known.size >= 10_000) this.#known.clear();
        this.#known.set(material, tenant);
      }
    }
    return tenant;
  }
}

/** `[name, value, name, value, …]` sorted by name (names are unique: they are an object's keys). */
function sortedPairs(parts: string[]): string[] {
  const pairs: [string, string][] = [];
  for (let i = 0; i < parts.length; i += 2)
    pairs.push([parts[i] as string, parts[i + 1] as string]);
  pairs.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return pairs.flat();
}
