/**
 * What the OpenAI-style protocols share: the error shape, usage, the stream grammar (`data:`
 * events ending with `data: [DONE]`), and which request fields stay out of keys.
 *
 * Out of every key, with the reason:
 * - `stream`: a streamed and a plain answer are the same answer (the pipeline converts).
 * - `stream_options` except `include_usage`: transport (`include_obfuscation` pads chunks).
 *   `include_usage` stays in, because it changes what a stream carries (a usage chunk, and
 *   `"usage": null` on every other chunk), and a replay must be what was asked.
 * - `user`, `safety_identifier`: end-user ids for abuse monitoring; the answer does not depend
 *   on them (keying them would lose every hit across users).
 * - `metadata`, `store`: retention and dashboards on the provider's side.
 * - `prompt_cache_key`, `prompt_cache_retention`: routing hints for the provider's own prompt
 *   cache; they change cost and latency, not the answer.
 * - `cache_control` on messages, content parts, system blocks and tools (Anthropic-style prompt
 *   caching, also taken by OpenAI-compatible routers): billing. Only there: a field named
 *   `cache_control` inside a tool's JSON schema is part of the schema and stays in the key.
 * Everything else, known or not, is in the key: an unknown field may change the answer.
 */

import { type Json, without } from "../json-body.js";
import { NO_USAGE, type Usage } from "../protocol.js";
import { dataOf, eventTypes } from "../sse.js";

/** Request fields that never change an OpenAI-style answer (see the module header). */
export const OUT_OF_KEY = [
  "stream",
  "stream_options",
  "user",
  "safety_identifier",
  "metadata",
  "store",
  "prompt_cache_key",
  "prompt_cache_retention",
] as const;

/** Headers that change what an OpenAI-style upstream answers. */
export const OPENAI_KEY_HEADERS = [
  "openai-organization",
  "openai-project",
  "openai-beta",
  // Anthropic's version and betas: OpenAI-compatible routers in front of Claude honour them.
  "anthropic-version",
  "anthropic-beta",
] as const;

export function openaiError(status: number, message: string): string {
  const type =
    status === 401
      ? "authentication_error"
      : status === 429
        ? "rate_limit_error"
        : status >= 500
          ? "server_error"
          : "invalid_request_error";
  return JSON.stringify({ error: { message, type, param: null, code: null } });
}

/** The body minus what stays out of the key, with `include_usage` kept for streams. */
export function keyMaterial(body: Json, extraOut: readonly string[] = []): Json {
  const kept = without(body, [...OUT_OF_KEY, ...extraOut]);
  // include_usage as given (a lenient server may read "true" as true): only absent and false,
  // which mean the same, share a key.
  const usage = (body.stream_options as { include_usage?: unknown } | undefined)?.include_usage;
  if (body.stream === true && usage !== undefined && usage !== false) {
    kept.stream_options = { include_usage: usage };
  }
  for (const field of ["messages", "tools", "system"] as const) {
    if (Array.isArray(kept[field]))
      kept[field] = (kept[field] as unknown[]).map(withoutCacheControl);
  }
  return kept;
}

export function includeUsage(body: Json): boolean {
  return (body.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true;
}

/** A message, content part, system block or tool without its `cache_control` (and its parts'). */
function withoutCacheControl(item: unknown): unknown {
  if (typeof item !== "object" || item === null || Array.isArray(item)) return item;
  const kept = without(item as Json, ["cache_control"]);
  if (Array.isArray(kept.content)) kept.content = kept.content.map(withoutCacheControl);
  return kept;
}

/** Sampled: a temperature above 0 (the default is 1) and no seed (`null` is no seed). */
export function isSampled(body: Json): boolean {
  const seeded = body.seed !== undefined && body.seed !== null;
  return (typeof body.temperature !== "number" || body.temperature > 0) && !seeded;
}

export function modelOf(body: Json): string | undefined {
  return typeof body.model === "string" ? body.model : undefined;
}

/**
 * A recorded stream is a whole answer when its last data is `[DONE]`, no event is typed
 * `error`, and every other data payload is a well-formed chunk: a JSON object without an
 * `error` field whose `choices` (when there) is an array of objects, none finishing with
 * `"error"` — and at least one chunk has a choice (a bare `[DONE]` is no answer).
 */
export function isCompleteOpenAIStream(text: string, kind: "chat" | "completion"): boolean {
  if (eventTypes(text).includes("error")) return false;
  const payloads = dataOf(text);
  if (payloads.at(-1)?.trim() !== "[DONE]") return false;
  let choices = 0;
  for (let i = 0; i < payloads.length - 1; i++) {
    const chunk = parseObject(payloads[i] as string);
    if (chunk === undefined || chunk.error !== undefined || chunk.object === "error") return false;
    if (chunk.choices === undefined) continue;
    if (!Array.isArray(chunk.choices)) return false;
    for (const choice of chunk.choices as unknown[]) {
      if (!wellFormedChoice(choice, kind, "delta")) return false;
      choices++;
    }
  }
  return choices > 0;
}

/**
 * A plain body is an answer when it is a JSON object without an error whose `choices` is a
 * non-empty array of well-formed choices (none finished by an error).
 */
export function isOpenAIAnswer(body: string, kind: "chat" | "completion"): boolean {
  const json = parseObject(body);
  if (json === undefined || json.error !== undefined || json.object === "error") return false;
  const choices = json.choices;
  if (!Array.isArray(choices) || choices.length === 0) return false;
  return choices.every((choice) => wellFormedChoice(choice, kind, "message"));
}

function wellFormedChoice(
  choice: unknown,
  kind: "chat" | "completion",
  part: "delta" | "message",
): boolean {
  if (typeof choice !== "object" || choice === null || Array.isArray(choice)) return false;
  const c = choice as Json;
  if (c.finish_reason === "error") return false;
  if (kind === "completion") return c.text === undefined || typeof c.text === "string";
  const inner = c[part];
  if (inner === undefined) return part === "delta";
  if (typeof inner !== "object" || inner === null || Array.isArray(inner)) return false;
  return wellFormedMessage(inner as Json);
}

/** The known fields of a message or delta have the types the API gives them (unknown ones pass). */
function wellFormedMessage(message: Json): boolean {
  for (const field of ["role", "content", "refusal", "reasoning_content", "reasoning"]) {
    const value = message[field];
    if (value !== undefined && value !== null && typeof value !== "string") return false;
  }
  const isObject = (value: unknown) =>
    typeof value === "object" && value !== null && !Array.isArray(value);
  const call = message.function_call;
  if (call !== undefined && call !== null && !isObject(call)) return false;
  const tools = message.tool_calls;
  if (tools === undefined || tools === null) return true;
  if (!Array.isArray(tools)) return false;
  return tools.every(
    (tool) =>
      isObject(tool) &&
      ((tool as Json).function === undefined || isObject((tool as Json).function)),
  );
}

/** A plain body is an answer when it is a JSON object without an error, holding a `field` array. */
export function isAnswerWith(body: string, field: string): boolean {
  const json = parseObject(body);
  return (
    json !== undefined &&
    json.error === undefined &&
    json.object !== "error" &&
    Array.isArray(json[field])
  );
}

export function parseObject(text: string): Json | undefined {
  try {
    const value = JSON.parse(text) as unknown;
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Json)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Usage as OpenAI reports it (`prompt_tokens`, `completion_tokens`, cached tokens). */
export function openaiUsage(usage: unknown): Usage {
  if (typeof usage !== "object" || usage === null) return NO_USAGE;
  const u = usage as {
    prompt_tokens?: unknown;
    completion_tokens?: unknown;
    total_tokens?: unknown;
    prompt_tokens_details?: { cached_tokens?: unknown } | null;
  };
  const input = count(u.prompt_tokens);
  const output = count(u.completion_tokens);
  return {
    input,
    output,
    cachedInput: count(u.prompt_tokens_details?.cached_tokens),
    total: count(u.total_tokens) || input + output,
  };
}

function count(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : 0;
}
