/**
 * What one API family teaches the pipeline: a `Protocol` owns its routes, which parts of a
 * request form the key and which are transport, billing or retention hints that stay out of it,
 * its stream grammar (when a recorded stream is a whole answer, and not an error), the
 * conversions between its streamed and plain answers, how its errors look, and how its usage
 * (tokens, cached tokens) is read. The pipeline (`pipeline.ts`) knows none of these; adding an
 * API is adding a protocol.
 */

/** A request as the pipeline sees it, whatever server or client it came through. */
export interface LlmRequest {
  method: string;
  /** The URL the request goes to upstream: the upstream's base, the API path and the query. */
  url: URL;
  /** Request headers, lowercase names (node:http's `IncomingMessage.headers` shape). */
  headers: RawHeaders;
  body: Uint8Array;
  /** Fires when the client is gone. */
  signal?: AbortSignal | undefined;
}

export type RawHeaders = Readonly<Record<string, string | string[] | undefined>>;

export function header(headers: RawHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(", ") : value;
}

/** What a protocol made of a request. */
export interface ParsedCall {
  /**
   * What forms the key beyond the route, the protocol's key headers and the query string: the
   * body without the fields that cannot change the answer. Any hashable value.
   */
  keyMaterial: unknown;
  /** Whether the client asked for a stream. */
  stream: boolean;
  /** The model asked for, for metrics and the dashboard (never used to key: the body is). */
  model: string | undefined;
  /** Sampling without a fixed seed: the sampling policy decides whether and how to cache. */
  sampled: boolean;
  /** A reason never to cache this request (it depends on state the key cannot see). */
  bypass?: string | undefined;
  /** How many answers the request asks for (`n`): more than one is not cached unless asked. */
  choices?: number | undefined;
  /** Protocol-specific facts the conversions need (e.g. `include_usage`). */
  details?: Record<string, unknown> | undefined;
}

/** Tokens an answer cost, as its usage reported them. */
export interface Usage {
  input: number;
  output: number;
  /** Input tokens the upstream served from its own prompt cache. */
  cachedInput: number;
  total: number;
}

export const NO_USAGE: Usage = { input: 0, output: 0, cachedInput: 0, total: 0 };

/** A stored answer. Text bodies are kept as received: a replay is byte for byte. */
export interface AnswerRecord {
  /** The protocol that stored it (`Protocol.name`). */
  protocol: string;
  /** `sse`: an event stream as received; `json`/`text`: a plain body; `binary`: bytes. */
  format: "json" | "sse" | "text" | "binary";
  status: number;
  contentType: string;
  body: string | Uint8Array;
  usage: Usage;
}

export interface Protocol {
  /** A short name (`chat`, `completion`, `embeddings`, …), in records, metrics and the badge. */
  readonly name: string;
  /** API paths it answers, relative to the upstream's base (e.g. `/chat/completions`). */
  readonly paths: readonly string[];
  /**
   * Request headers that change the upstream's answer and so are part of the key (lowercase),
   * e.g. `openai-organization`, `anthropic-version`.
   */
  readonly keyHeaders: readonly string[];
  /**
   * Parses a request body (bytes as received, with their content type and the upstream URL, for
   * APIs whose path or query says what the body does not: Gemini streams by path). The result
   * may depend on the URL's path and query, but not on its credential parameters.
   * @throws RequestError for a body it cannot key safely (the gateway answers 4xx with it).
   */
  parse(body: Uint8Array, contentType: string | undefined, url: URL): ParsedCall;
  /**
   * The URL that scopes the key, for APIs where two URLs ask for one answer: Gemini's
   * `…:streamGenerateContent?alt=sse` and `…:generateContent` are the same call, streamed or
   * not, so they share one key and the pipeline converts between them.
   * @default the request's URL
   */
  keyUrl?(url: URL): URL;
  /** Whether a recorded stream is a whole answer: its terminator is there, and no error event. */
  isCompleteStream(text: string): boolean;
  /** Whether a plain body with a success status is really an answer (not an error object). */
  isAnswer(body: string): boolean;
  /**
   * The record of a plain (not streamed) success answer, for protocols whose answers are not
   * JSON text (audio bytes, subtitles): `undefined` when it is not an answer. Without it, the
   * body is decoded as UTF-8 and kept as a `json` record when `isAnswer` says so.
   */
  record?(status: number, contentType: string, body: Uint8Array): AnswerRecord | undefined;
  /**
   * The plain answer a recorded stream adds up to, or `undefined` when it cannot be converted
   * exactly (then the request is a miss and the upstream is asked for the form it wants).
   */
  toJson(record: AnswerRecord): string | undefined;
  /**
   * The events that would have streamed a plain answer (each without its blank line), or
   * `undefined` when they cannot carry it exactly.
   */
  toStream(record: AnswerRecord, call: ParsedCall): string[] | undefined;
  /** Usage of an answer (plain or streamed). */
  usage(format: AnswerRecord["format"], body: string): Usage;
  /** An error body in this API's shape. */
  errorBody(status: number, message: string): string;
}

/** A request the pipeline refuses: the client's mistake, answered with `status` and `message`. */
export class RequestError extends Error {
  override readonly name = "RequestError";
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}
