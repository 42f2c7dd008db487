/**
 * Per-request cache controls in HTTP's terms (`Cache-Control` on the request, RFC 9111 §5.2.1),
 * each defined once here and in the README:
 *
 * - `no-cache`: do not answer from the cache; ask the upstream and store its answer.
 * - `no-store`: do not store this answer (a stored one may still be served).
 * - `max-age=N`: the client takes an answer at most N seconds old (HTTP's meaning); an answer
 *   fetched for it is stored for N seconds, since older would not be served to it anyway.
 *   `max-age=0` therefore never serves a stored answer and stores nothing: 0 never means
 *   forever.
 * - `s-maxage=N`: how long the shared cache keeps this answer (HTTP's shared-cache lifetime),
 *   overriding `max-age`'s; it does not limit what is served. `s-maxage=0` stores nothing.
 * - `only-if-cached`: answer from the cache or not at all (504), never from the upstream.
 * - `stale-while-revalidate=N` (RFC 5861, taken on the request here): an answer up to N seconds
 *   past its lifetime may be served at once (`x-infercache: stale`) while one refresh runs in
 *   the background. Overrides the operator's default for this request; 0 turns it off.
 * - `stale-if-error=N` (RFC 5861): when the upstream fails (a 5xx, a timeout, a refused
 *   connection, a dead local model), an answer up to N seconds past its lifetime is served
 *   instead of the error. Both apply only to answers stored with a lifetime (`max-age`,
 *   `s-maxage` or the operator's ttl).
 *
 * Unknown directives are ignored, as HTTP says; a directive with a bad value (`max-age=soon`)
 * is a 400, so a typo never turns a bound into "forever".
 */

import { RequestError } from "./protocol.js";

export interface CacheControl {
  noStore: boolean;
  noCache: boolean;
  onlyIfCached: boolean;
  /** The oldest stored answer the client takes, ms (`max-age`). */
  acceptAgeMs: number | undefined;
  /** How long to keep the answer, ms (`s-maxage`, else `max-age`); 0 = do not store. */
  ttlMs: number | undefined;
  /** `stale-while-revalidate`, ms; undefined: the operator's default. */
  staleWhileRevalidateMs?: number | undefined;
  /** `stale-if-error`, ms; undefined: the operator's default. */
  staleIfErrorMs?: number | undefined;
}

const NONE: CacheControl = {
  noStore: false,
  noCache: false,
  onlyIfCached: false,
  acceptAgeMs: undefined,
  ttlMs: undefined,
};

/** @throws RequestError for a directive with a bad value. */
export function parseCacheControl(header: string | null | undefined): CacheControl {
  if (header === null || header === undefined || header === "") return NONE;
  const control: CacheControl = { ...NONE };
  let maxAge: number | undefined;
  let sMaxAge: number | undefined;
  for (const part of header.toLowerCase().split(",")) {
    const [rawName, rawValue] = part.split("=", 2) as [string, string | undefined];
    const name = rawName.trim();
    if (name === "no-store") control.noStore = true;
    else if (name === "no-cache") control.noCache = true;
    else if (name === "only-if-cached") control.onlyIfCached = true;
    else if (name === "max-age") maxAge = seconds(name, rawValue);
    else if (name === "s-maxage") sMaxAge = seconds(name, rawValue);
    else if (name === "stale-while-revalidate")
      control.staleWhileRevalidateMs = seconds(name, rawValue) * 1000;
    else if (name === "stale-if-error") control.staleIfErrorMs = seconds(name, rawValue) * 1000;
  }
  if (maxAge !== undefined) control.acceptAgeMs = maxAge * 1000;
  const lifetime = sMaxAge ?? maxAge;
  if (lifetime !== undefined) control.ttlMs = lifetime * 1000;
  return control;
}

function seconds(name: string, raw: string | undefined): number {
  const text = raw?.trim().replace(/^"(.*)"$/, "$1") ?? "";
  if (!/^\d{1,10}$/.test(text)) {
    throw new RequestError(
      400,
      `Cache-Control ${name} must be a whole number of seconds, like ${name}=3600`,
    );
  }
  return Number(text);
}
