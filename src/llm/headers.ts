/**
 * What each request header is to the cache, decided once per header name:
 *
 * - `hop`: the connection's (RFC 9110 §7.6.1) or ours (`x-infercache-*`, `x-session-id`): never
 *   sent upstream, never keyed.
 * - `credential`: carries who is asking — `Authorization`, `x-api-key`, `api-key`,
 *   `x-goog-api-key`, `Cookie`, and any name that reads as a key, token, secret or password
 *   (`Ocp-Apim-Subscription-Key`, `x-auth-token`): part of the tenant, so a wrong credential never
 *   reads a valid one's answers.
 * - `transport`: cannot change the answer — content negotiation, the client's name and
 *   version (`user-agent`, `x-stainless-*`, `x-goog-api-client`), tracing and request ids,
 *   proxies' `x-forwarded-*`, browsers' `sec-*`: keyed, they would lose every hit.
 * - `keyed`: everything else, known or not (`OpenAI-Organization`, `anthropic-version`, a router's
 *   `x-portkey-provider`, a header nobody here has heard of): part of the key, because an
 *   unknown header may change the answer, as an unknown body field may.
 */

export type HeaderRole = "hop" | "credential" | "transport" | "keyed";

const HOP = new Set([
  "host",
  "connection",
  "keep-alive",
  "transfer-encoding",
  "content-length",
  "upgrade",
  "te",
  "trailer",
  "proxy-connection",
  "proxy-authorization",
  "proxy-authenticate",
  "accept-encoding",
  "expect",
  "x-session-id",
]);

const CREDENTIALS = new Set(["authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie"]);

const TRANSPORT = new Set([
  "accept",
  "accept-language",
  "content-type",
  "user-agent",
  "origin",
  "referer",
  "cache-control",
  "pragma",
  "dnt",
  "priority",
  "date",
  "if-none-match",
  "if-modified-since",
  "x-request-id",
  "x-client-request-id",
  "request-id",
  "idempotency-key",
  "traceparent",
  "tracestate",
  "baggage",
  "sentry-trace",
  "x-amzn-trace-id",
  "x-cloud-trace-context",
  "x-b3-traceid",
  "x-b3-spanid",
  "x-b3-sampled",
  "x-forwarded-for",
  "x-forwarded-host",
  "x-forwarded-proto",
  "x-forwarded-port",
  "x-real-ip",
  "forwarded",
  "via",
  "x-goog-api-client",
  // Anthropic: attribution of a request to an end user, and the browser-CORS opt-in.
  "anthropic-user-profile-id",
  "anthropic-dangerous-direct-browser-access",
]);

const TRANSPORT_PREFIXES = ["x-stainless-", "sec-", "x-infercache-", "cf-"];

/** Names that read as a credential: `…-key`, `…-token`, `…secret…`, `…password…`. */
const CREDENTIAL_NAME =
  /(^|[-_])(key|token|secret|password|passwd|credential|credentials|signature)([-_]|$)|^x-auth/;

const known = new Map<string, HeaderRole>();

/** The role of a (lowercase) header name. */
export function headerRole(name: string): HeaderRole {
  let role = known.get(name);
  if (role !== undefined) return role;
  role = HOP.has(name)
    ? "hop"
    : CREDENTIALS.has(name) || CREDENTIAL_NAME.test(name)
      ? "credential"
      : TRANSPORT.has(name) || TRANSPORT_PREFIXES.some((prefix) => name.startsWith(prefix))
        ? name.startsWith("x-infercache-")
          ? "hop"
          : "transport"
        : "keyed";
  // Bounded: names are few in practice, but a client can send any.
  if (known.size < 4096) known.set(name, role);
  return role;
}

/** Names listed in a `Connection` header are hop-by-hop for that request (RFC 9110 §7.6.1). */
export function connectionListed(value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? value.join(",") : value;
  const names = text
    .split(",")
    .map((part) => part.trim().toLowerCase())
    .filter((part) => part !== "" && part !== "close" && part !== "keep-alive");
  return names.length === 0 ? undefined : new Set(names);
}
