/**
 * infercache's own request headers, each validated: a value we cannot use is a 400 that names
 * the header and what it takes, never a silent default and never an unbounded allocation.
 *
 * - `x-infercache-namespace: NAME` — a namespace of the store for this request's entries.
 * - `x-infercache-sampling: cache | bypass | bucket=N` — the policy for sampled requests;
 *   N from 1 to `MAX_BUCKET` (keeping N answers means N store reads per request).
 * - `x-session-id: ID` (or the `infercache-session` cookie) — a private session.
 * - `x-infercache-mode: read-write | read-only | refresh | replay | record` — this request's
 *   cache mode (`base/mode.ts`), over the gateway's or `cachingFetch`'s. Like every
 *   `x-infercache-*` header it is never forwarded and never part of a key.
 */

import { CACHE_MODES, type CacheMode } from "../base/mode.js";
import { header, type RawHeaders, RequestError } from "./protocol.js";

/** What to do with sampled requests (temperature > 0, no seed). */
export type SamplingPolicy = "cache" | "bypass" | { bucket: number };

export const MAX_BUCKET = 16;
const NAME = /^[A-Za-z0-9._:@/-]{1,128}$/;
/** Safe inside a cookie value and a header: no `;`, `,`, quotes, spaces or backslashes. */
const SESSION = /^[A-Za-z0-9._~:@+=/-]{1,128}$/;

export const NAMESPACE_HEADER = "x-infercache-namespace";
export const SAMPLING_HEADER = "x-infercache-sampling";
export const SESSION_HEADER = "x-session-id";
export const MODE_HEADER = "x-infercache-mode";
export const SESSION_COOKIE = "infercache-session";

/** Checks a sampling policy given as an option. @throws TypeError */
export function checkPolicy(policy: SamplingPolicy, option: string): SamplingPolicy {
  if (policy === "cache" || policy === "bypass") return policy;
  if (
    typeof policy === "object" &&
    policy !== null &&
    Number.isSafeInteger(policy.bucket) &&
    policy.bucket >= 1 &&
    policy.bucket <= MAX_BUCKET
  ) {
    return policy;
  }
  throw new TypeError(
    `Expected \`${option}\` to be "cache", "bypass" or { bucket: N } with N from 1 to ${MAX_BUCKET}, got ${JSON.stringify(policy)}`,
  );
}

/** The sampling header's policy, or `undefined` without one. @throws RequestError */
export function samplingOf(headers: RawHeaders): SamplingPolicy | undefined {
  const value = header(headers, SAMPLING_HEADER);
  if (value === undefined) return undefined;
  const text = value.trim().toLowerCase();
  if (text === "cache" || text === "bypass") return text;
  const match = /^bucket\s*=\s*(\d{1,6})$/.exec(text);
  const size = match === null ? Number.NaN : Number(match[1]);
  if (!(size >= 1 && size <= MAX_BUCKET)) {
    throw new RequestError(
      400,
      `${SAMPLING_HEADER} must be "cache", "bypass" or "bucket=N" with N from 1 to ${MAX_BUCKET}`,
    );
  }
  return { bucket: size };
}

/** The mode header's value, or `undefined` without one. @throws RequestError */
export function modeHeaderOf(headers: RawHeaders): CacheMode | undefined {
  const value = header(headers, MODE_HEADER);
  if (value === undefined) return undefined;
  const text = value.trim().toLowerCase();
  if ((CACHE_MODES as readonly string[]).includes(text)) return text as CacheMode;
  throw new RequestError(
    400,
    `${MODE_HEADER} must be one of ${CACHE_MODES.map((mode) => `"${mode}"`).join(", ")}`,
  );
}

/** The namespace header's value, or `undefined`. @throws RequestError */
export function namespaceOf(headers: RawHeaders): string | undefined {
  const value = header(headers, NAMESPACE_HEADER);
  if (value === undefined) return undefined;
  if (!NAME.test(value)) {
    throw new RequestError(
      400,
      `${NAMESPACE_HEADER} must be 1 to 128 letters, digits or . _ : @ / -`,
    );
  }
  return value;
}

/** The session of a request: the `x-session-id` header, else the cookie. @throws RequestError */
export function sessionOf(headers: RawHeaders): string | undefined {
  let value = header(headers, SESSION_HEADER);
  if (value === undefined || value === "") {
    const cookie = header(headers, "cookie");
    value =
      cookie === undefined ? undefined : /(?:^|;\s*)infercache-session=([^;]*)/.exec(cookie)?.[1];
    if (value === undefined || value === "") return undefined;
  }
  if (!SESSION.test(value)) {
    throw new RequestError(
      400,
      `${SESSION_HEADER} (or the ${SESSION_COOKIE} cookie) must be 1 to 128 letters, digits or . _ ~ : @ + = / -`,
    );
  }
  return value;
}
