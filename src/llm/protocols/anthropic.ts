/**
 * Anthropic Messages (`POST /messages`), plain and streamed, and token counting
 * (`POST /messages/count_tokens`). Batches (`/messages/batches…`) pass through.
 *
 * The key: the whole body — `messages` in order with every content block (thinking blocks with
 * their signatures, tool uses and results, images, documents), `system`, `tools`,
 * `tool_choice`, `thinking`, `max_tokens`, `stop_sequences`, every sampling parameter and any
 * field this code does not know — minus `stream` (the pipeline converts), `metadata`
 * (`user_id`, an end-user id for abuse monitoring) and `cache_control` wherever Anthropic takes
 * it: at the top (automatic prompt caching), on system blocks, on tools, on the content blocks
 * of messages, inside tool results' content and documents' content sources. `cache_control`
 * marks prompt-cache breakpoints: it changes what a call costs and how fast it is, never what it
 * answers. Inside a tool's `input_schema` or a tool use's `input` a field of that name is data,
 * and stays in. Plus the `anthropic-version`, `anthropic-beta` and `anthropic-workspace-id`
 * headers (`anthropic-user-profile-id` is attribution, like `metadata`). The tenant comes from
 * `x-api-key` (see `server/gateway/tenants.ts`).
 *
 * The stream grammar (https://docs.anthropic.com/en/api/messages-streaming, and how
 * anthropic-sdk-typescript's `MessageStream` accumulates it, src/lib/MessageStream.ts):
 * `message_start`, then per content block `content_block_start`, `content_block_delta`s and
 * `content_block_stop`, then `message_delta` (stop reason, final usage) and `message_stop`;
 * `ping`s anywhere. A stream is an answer when it ends with `message_stop`, has no `error` event
 * (an `overloaded_error` mid-stream is a 529 in disguise), and every delta is of a type this
 * module can add up (`text_delta`, `input_json_delta`, `thinking_delta`, `signature_delta`,
 * `citations_delta`): a stream with a newer delta is replayed to nobody rather than added up
 * wrong for a plain request. Thinking blocks keep their `signature` and redacted thinking its
 * `data` exactly, in both directions: the API refuses a later turn whose thinking was altered.
 *
 * Usage: the answer's body is the recorded one on a hit, so its `usage` (with
 * `cache_creation_input_tokens` / `cache_read_input_tokens`) is what the call that produced it
 * cost. `x-infercache: hit` and `x-infercache-saved-tokens` say this request cost nothing.
 */

import { type Json, parseJsonObject, without } from "../json-body.js";
import type { AnswerRecord, ParsedCall, Protocol, Usage } from "../protocol.js";
import { NO_USAGE } from "../protocol.js";
import { modelOf, parseObject } from "./openai.js";
import { typedEvent, typedEvents, typeOf } from "./typed-events.js";

/** Headers that change what Anthropic answers. */
export const ANTHROPIC_KEY_HEADERS = [
  "anthropic-version",
  "anthropic-beta",
  "anthropic-workspace-id",
] as const;

/** Delta types `assembleMessage` adds up (a stream with another is not stored). */
const KNOWN_DELTAS = new Set([
  "text_delta",
  "input_json_delta",
  "thinking_delta",
  "signature_delta",
  "citations_delta",
]);

export const messagesProtocol: Protocol = {
  name: "messages",
  paths: ["/messages"],
  keyHeaders: ANTHROPIC_KEY_HEADERS,
  parse(body: Uint8Array): ParsedCall {
    const json = parseJsonObject(body);
    return {
      keyMaterial: keyMaterial(json, ["stream", "metadata"]),
      stream: json.stream === true,
      model: modelOf(json),
      // Anthropic's temperature defaults to 1 and it takes no seed.
      sampled: typeof json.temperature !== "number" || json.temperature > 0,
    };
  },
  isCompleteStream: (text) => readStream(text).complete,
  isAnswer: (body) => isMessage(parseObject(body)),
  toJson: (record: AnswerRecord) => JSON.stringify(assembleMessage(record.body as string)),
  toStream: (record: AnswerRecord) => synthesizeMessage(parseObject(record.body as string) ?? {}),
  usage(format, body): Usage {
    const message = format === "sse" ? assembleMessage(body) : parseObject(body);
    return anthropicUsage(message?.usage);
  },
  errorBody: anthropicError,
};

/**
 * `POST /messages/count_tokens`: free, but rate-limited and a round trip. Always plain: a
 * `stream` field is not the API's, so it stays in the key (and the upstream refuses it).
 */
export const countTokensProtocol: Protocol = {
  name: "count_tokens",
  paths: ["/messages/count_tokens"],
  keyHeaders: ANTHROPIC_KEY_HEADERS,
  parse(body: Uint8Array): ParsedCall {
    const json = parseJsonObject(body);
    return {
      keyMaterial: keyMaterial(json, []),
      stream: false,
      model: modelOf(json),
      sampled: false,
    };
  },
  isCompleteStream: () => false,
  isAnswer: (body) => typeof parseObject(body)?.input_tokens === "number",
  toJson: (record: AnswerRecord) => record.body as string,
  toStream: () => [],
  usage: () => NO_USAGE,
  errorBody: anthropicError,
};

/** Anthropic's error shape: `{ type: "error", error: { type, message } }`. */
export function anthropicError(status: number, message: string): string {
  const type =
    status === 401
      ? "authentication_error"
      : status === 403
        ? "permission_error"
        : status === 404
          ? "not_found_error"
          : status === 413
            ? "request_too_large"
            : status === 429
              ? "rate_limit_error"
              : status === 504
                ? "timeout_error"
                : status === 529
                  ? "overloaded_error"
                  : status >= 500
                    ? "api_error"
                    : "invalid_request_error";
  return JSON.stringify({ type: "error", error: { type, message } });
}

function keyMaterial(body: Json, out: readonly string[]): Json {
  const kept = without(body, [...out, "cache_control"]);
  if (Array.isArray(kept.system)) kept.system = kept.system.map(withoutCacheControl);
  if (Array.isArray(kept.tools)) kept.tools = kept.tools.map(withoutCacheControl);
  if (Array.isArray(kept.messages)) kept.messages = kept.messages.map(withoutCacheControl);
  return kept;
}

/**
 * A message, system block, tool or content block without `cache_control`, recursively through
 * the places that hold content blocks: `content` (a message's blocks, a tool result's) and a
 * document's `source.content`. Nothing else is entered: `input`, `input_schema` are data.
 */
function withoutCacheControl(item: unknown): unknown {
  if (typeof item !== "object" || item === null || Array.isArray(item)) return item;
  const kept = without(item as Json, ["cache_control"]);
  if (Array.isArray(kept.content)) kept.content = kept.content.map(withoutCacheControl);
  const source = kept.source as Json | undefined;
  if (typeof source === "object" && source !== null && Array.isArray(source.content)) {
    kept.source = { ...source, content: source.content.map(withoutCacheControl) };
  }
  return kept;
}

function isMessage(json: Json | undefined): boolean {
  return json !== undefined && json.type === "message" && Array.isArray(json.content);
}

/** Usage as Anthropic reports it: `input_tokens` excludes the cache's reads and writes. */
export function anthropicUsage(usage: unknown): Usage {
  if (typeof usage !== "object" || usage === null) return NO_USAGE;
  const u = usage as Record<string, unknown>;
  const read = count(u.cache_read_input_tokens);
  const input = count(u.input_tokens) + count(u.cache_creation_input_tokens) + read;
  const output = count(u.output_tokens);
  return { input, output, cachedInput: read, total: input + output };
}

function count(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : 0;
}

/** A recorded stream read the way the SDK reads it: the message it adds up to, if whole. */
function readStream(text: string): { message: Json | undefined; complete: boolean } {
  let message: Json | undefined;
  let content: Json[] = [];
  const json: (string | undefined)[] = [];
  let stopped = false;
  let known = true;
  for (const event of typedEvents(text)) {
    const type = typeOf(event);
    if (type === "error" || event.event === "error") return { message, complete: false };
    if (type === "ping") continue;
    const data = event.data;
    if (data === undefined) return { message, complete: false };
    if (stopped) known = false; // anything but a ping after message_stop
    switch (type) {
      case "message_start": {
        const start = data.message as Json | undefined;
        if (message !== undefined || typeof start !== "object" || start === null) {
          return { message, complete: false };
        }
        content = Array.isArray(start.content) ? [...(start.content as Json[])] : [];
        message = { ...start, content, usage: { ...(start.usage as Json | undefined) } };
        break;
      }
      case "content_block_start": {
        const index = Number(data.index);
        content[index] = { ...(data.content_block as Json) };
        break;
      }
      case "content_block_delta": {
        const index = Number(data.index);
        const block = content[index];
        const delta = data.delta as Json | undefined;
        if (block === undefined || delta === undefined || !KNOWN_DELTAS.has(String(delta.type))) {
          known = false;
          break;
        }
        if (delta.type === "text_delta") block.text = `${block.text ?? ""}${delta.text ?? ""}`;
        else if (delta.type === "thinking_delta")
          block.thinking = `${block.thinking ?? ""}${delta.thinking ?? ""}`;
        else if (delta.type === "signature_delta") block.signature = delta.signature;
        else if (delta.type === "citations_delta")
          block.citations = [...((block.citations as unknown[] | null) ?? []), delta.citation];
        else json[index] = `${json[index] ?? ""}${delta.partial_json ?? ""}`;
        break;
      }
      case "content_block_stop": {
        const index = Number(data.index);
        const partial = json[index];
        const block = content[index];
        if (partial !== undefined && block !== undefined) {
          try {
            block.input = partial === "" ? {} : JSON.parse(partial);
          } catch {
            known = false;
          }
        }
        break;
      }
      case "message_delta": {
        if (message === undefined) return { message, complete: false };
        const delta = (data.delta as Json | undefined) ?? {};
        for (const [name, value] of Object.entries(delta)) message[name] = value;
        const usage = message.usage as Json;
        for (const [name, value] of Object.entries((data.usage as Json | undefined) ?? {})) {
          if (value !== null && value !== undefined) usage[name] = value;
        }
        break;
      }
      case "message_stop":
        stopped = true;
        break;
      default:
        // An event type this module does not know may carry state it would drop.
        known = false;
    }
  }
  if (message !== undefined) message.content = content.filter((block) => block !== undefined);
  return { message, complete: message !== undefined && stopped && known };
}

/** The message a recorded stream adds up to (`messages.create` without `stream`). */
export function assembleMessage(text: string): Json {
  return readStream(text).message ?? { type: "message", content: [] };
}

/**
 * The events that would have streamed a message: `message_start` (the message with no content
 * and no stop reason yet, its usage as recorded), a `ping`, each block's start, delta and stop,
 * then `message_delta` (stop reason and every usage counter, which the SDK copies over) and
 * `message_stop`. Read back by the SDK's `MessageStream`, they give the message again.
 */
export function synthesizeMessage(message: Json): string[] {
  const events: string[] = [];
  const emit = (type: string, fields: Json = {}) => events.push(typedEvent({ type, ...fields }));
  const usage = (message.usage as Json | undefined) ?? {};
  emit("message_start", {
    message: { ...message, content: [], stop_reason: null, stop_sequence: null, usage },
  });
  emit("ping");
  const blocks = Array.isArray(message.content) ? (message.content as Json[]) : [];
  blocks.forEach((block, index) => {
    blockEvents(block, index, emit);
    emit("content_block_stop", { index });
  });
  const delta: Json = { stop_reason: message.stop_reason ?? null };
  delta.stop_sequence = message.stop_sequence ?? null;
  for (const name of ["stop_details", "container"]) {
    if (message[name] !== undefined) delta[name] = message[name];
  }
  const final: Json = {};
  for (const name of [
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "server_tool_use",
    "output_tokens_details",
  ]) {
    if (usage[name] !== undefined) final[name] = usage[name];
  }
  emit("message_delta", { delta, usage: final });
  emit("message_stop");
  return events;
}

function blockEvents(block: Json, index: number, emit: (type: string, fields: Json) => void) {
  const delta = (value: Json) => emit("content_block_delta", { index, delta: value });
  switch (block.type) {
    case "text": {
      const citations = Array.isArray(block.citations) ? (block.citations as unknown[]) : undefined;
      emit("content_block_start", {
        index,
        content_block: { ...block, text: "", ...(citations !== undefined && { citations: [] }) },
      });
      if (typeof block.text === "string" && block.text !== "") {
        delta({ type: "text_delta", text: block.text });
      }
      for (const citation of citations ?? []) delta({ type: "citations_delta", citation });
      return;
    }
    case "thinking": {
      const start: Json = { ...block, thinking: "" };
      delete start.signature;
      emit("content_block_start", { index, content_block: start });
      if (typeof block.thinking === "string" && block.thinking !== "") {
        delta({ type: "thinking_delta", thinking: block.thinking });
      }
      if (typeof block.signature === "string") {
        delta({ type: "signature_delta", signature: block.signature });
      }
      return;
    }
    case "tool_use":
    case "server_tool_use":
    case "mcp_tool_use":
      emit("content_block_start", { index, content_block: { ...block, input: {} } });
      delta({ type: "input_json_delta", partial_json: JSON.stringify(block.input ?? {}) });
      return;
    default:
      // redacted_thinking, tool results and anything newer arrive whole in their start event.
      emit("content_block_start", { index, content_block: block });
  }
}
