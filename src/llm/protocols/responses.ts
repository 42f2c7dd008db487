/**
 * OpenAI Responses (`POST /responses`), plain and streamed. The rest of the family
 * (`GET /responses/{id}`, `…/input_items`, `…/cancel`, `DELETE`, `/responses/input_tokens`)
 * passes through: only a POST to the collection creates an answer.
 *
 * The key: the whole body — `input` in order with every part, `instructions`, `tools`, `text`
 * (its `format`), `reasoning`, `include`, `previous_response_id` (it names a stored response,
 * which is immutable), `store`, every sampling parameter and any field this code does not
 * know — minus `stream`, `stream_options` (`include_obfuscation` only pads delta events with
 * random characters against length side channels: the answer is the same), `user`,
 * `safety_identifier`, `metadata`, `prompt_cache_key`, `prompt_cache_retention` and
 * `prompt_cache_options` (reasons in `openai.ts`). Plus the organization, project and beta
 * headers.
 *
 * `store` stays IN this key, unlike Chat Completions': it decides whether the answer's `id`
 * exists upstream. A replayed answer carries the recorded `id` (`resp_…`); with `store` in the
 * key, a request that asked `store: true` (the API's default when it is absent) only ever gets
 * the id of a response the upstream stored, so `GET /responses/{id}` and a later
 * `previous_response_id` chain from it work — for as long as the upstream keeps it (OpenAI:
 * 30 days), and not after a `DELETE` of it.
 *
 * Never cached (bypassed): `conversation` (server-side state each call reads and appends to: a
 * hit would skip the append), `background: true` (the answer is fetched later by id), and a
 * `prompt` template without a pinned `version` (it means the template's current version, which
 * can change).
 *
 * The stream grammar (https://platform.openai.com/docs/api-reference/responses-streaming, and
 * how openai-node's `ResponseStream`/`accumulateResponse` read it, src/lib/responses/): typed
 * events with a `sequence_number`, from `response.created` to a terminal event. A stream is an
 * answer when its terminal event is `response.completed` or `response.incomplete` (cut by
 * `max_output_tokens` or a content filter: a deterministic end, as `finish_reason: "length"` is
 * for chat), and no event is `error` or `response.failed`. The plain answer a stream adds up
 * to is the terminal event's `response` object (what `responses.create` without `stream`
 * returns); the stream a plain answer would have been is synthesized item by item: messages
 * (text and refusals), function calls, reasoning (summaries and reasoning text), and any other
 * item as `output_item.added` + `output_item.done` with the whole item.
 */

import { type Json, parseJsonObject, without } from "../json-body.js";
import type { AnswerRecord, ParsedCall, Protocol, Usage } from "../protocol.js";
import { NO_USAGE } from "../protocol.js";
import { isSampled, modelOf, OPENAI_KEY_HEADERS, openaiError, parseObject } from "./openai.js";
import { type TypedEvent, typedEvent, typedEvents, typeOf } from "./typed-events.js";

/** Request fields that never change a Responses answer (see the module header). */
export const RESPONSES_OUT_OF_KEY = [
  "stream",
  "stream_options",
  "user",
  "safety_identifier",
  "metadata",
  "prompt_cache_key",
  "prompt_cache_retention",
  "prompt_cache_options",
] as const;

const TERMINAL = new Set(["response.completed", "response.incomplete"]);
const FAILED = new Set(["error", "response.failed"]);

export const responsesProtocol: Protocol = {
  name: "responses",
  paths: ["/responses"],
  keyHeaders: OPENAI_KEY_HEADERS,
  parse(body: Uint8Array): ParsedCall {
    const json = parseJsonObject(body);
    return {
      keyMaterial: without(json, RESPONSES_OUT_OF_KEY),
      stream: json.stream === true,
      model: modelOf(json),
      sampled: isSampled(json),
      bypass: bypassOf(json),
    };
  },
  isCompleteStream,
  isAnswer: (body) => isResponse(parseObject(body)),
  toJson: (record: AnswerRecord) => JSON.stringify(assembleResponse(record.body as string)),
  toStream: (record: AnswerRecord) => synthesizeResponse(parseObject(record.body as string) ?? {}),
  usage(format, body): Usage {
    const response = format === "sse" ? assembleResponse(body) : parseObject(body);
    return responsesUsage(response?.usage);
  },
  errorBody: openaiError,
};

function bypassOf(json: Json): string | undefined {
  if (json.conversation !== undefined && json.conversation !== null) {
    return "conversation (server-side state that each call reads and changes)";
  }
  if (json.background === true) return "background (the answer is fetched later by id)";
  const prompt = json.prompt as { version?: unknown } | null | undefined;
  if (typeof prompt === "object" && prompt !== null && (prompt.version ?? null) === null) {
    return "a prompt template without a pinned version (its current version can change)";
  }
  return undefined;
}

/** A Response object that is a finished answer: completed or incomplete, without an error. */
function isResponse(json: Json | undefined): boolean {
  if (json === undefined || json.object !== "response" || !Array.isArray(json.output)) {
    return false;
  }
  if (json.error !== undefined && json.error !== null) return false;
  return json.status === undefined || json.status === "completed" || json.status === "incomplete";
}

/**
 * A recorded stream is a whole answer when every payload is a JSON object without an `error`
 * field, no event is an error or a failure, and the last event (a trailing `[DONE]`, which some
 * compatible servers add, aside) is `response.completed` or `response.incomplete` with a
 * finished Response.
 */
function isCompleteStream(text: string): boolean {
  const events = typedEvents(text);
  if (events.at(-1)?.raw.trim() === "[DONE]") events.pop();
  if (events.length === 0) return false;
  for (const event of events) {
    if (event.event !== undefined && FAILED.has(event.event)) return false;
    const data = event.data;
    if (data === undefined) return false;
    if (data.error !== undefined && data.error !== null) return false;
    if (typeof data.type === "string" && FAILED.has(data.type)) return false;
  }
  const last = events.at(-1) as TypedEvent;
  return TERMINAL.has(typeOf(last) ?? "") && isResponse(last.data?.response as Json | undefined);
}

/**
 * The Response a stream adds up to: the terminal event's `response`. A compatible server that
 * leaves its `output` empty gets the items of its `output_item.done` events instead.
 */
export function assembleResponse(text: string): Json {
  let response: Json | undefined;
  const items: unknown[] = [];
  for (const event of typedEvents(text)) {
    const data = event.data;
    if (data === undefined) continue;
    if (typeof data.response === "object" && data.response !== null) {
      response = data.response as Json;
    } else if (data.type === "response.output_item.done" && typeof data.output_index === "number") {
      items[data.output_index] = data.item;
    }
  }
  const answer: Json = { ...(response ?? { object: "response", output: [] }) };
  const output = answer.output;
  if ((!Array.isArray(output) || output.length === 0) && items.length > 0) {
    answer.output = items.filter((item) => item !== undefined);
  }
  return answer;
}

/**
 * The events that would have streamed a Response, numbered from 0: `response.created` and
 * `response.in_progress` (the response with no output yet), each output item's events, then
 * `response.completed` (or `response.incomplete`) with the response as recorded. Read back by
 * openai-node's `accumulateResponse`, they give that response again.
 */
export function synthesizeResponse(response: Json): string[] {
  const events: string[] = [];
  let sequence = 0;
  const emit = (type: string, fields: Json) =>
    events.push(typedEvent({ type, sequence_number: sequence++, ...fields }));
  const pending: Json = {
    ...response,
    status: "in_progress",
    output: [],
    usage: null,
    incomplete_details: null,
  };
  if ("completed_at" in response) pending.completed_at = null;
  emit("response.created", { response: pending });
  emit("response.in_progress", { response: pending });
  const output = Array.isArray(response.output) ? (response.output as Json[]) : [];
  output.forEach((item, index) => {
    itemEvents(item, index, emit);
  });
  emit(response.status === "incomplete" ? "response.incomplete" : "response.completed", {
    response,
  });
  return events;
}

function itemEvents(item: Json, index: number, emit: (type: string, fields: Json) => void): void {
  const at = { item_id: item.id, output_index: index };
  switch (item.type) {
    case "message": {
      const parts = Array.isArray(item.content) ? (item.content as Json[]) : [];
      emit("response.output_item.added", {
        output_index: index,
        item: { ...item, status: "in_progress", content: [] },
      });
      parts.forEach((part, content_index) => {
        const where = { ...at, content_index };
        if (part.type === "output_text") {
          const annotations = Array.isArray(part.annotations) ? (part.annotations as Json[]) : [];
          emit("response.content_part.added", {
            ...where,
            part: { ...part, text: "", annotations: [] },
          });
          const logprobs = Array.isArray(part.logprobs) ? part.logprobs : [];
          if (part.text !== "") {
            emit("response.output_text.delta", { ...where, delta: part.text, logprobs });
          }
          annotations.forEach((annotation, annotation_index) => {
            emit("response.output_text.annotation.added", {
              ...where,
              annotation_index,
              annotation,
            });
          });
          emit("response.output_text.done", { ...where, text: part.text, logprobs });
        } else if (part.type === "refusal") {
          emit("response.content_part.added", { ...where, part: { ...part, refusal: "" } });
          emit("response.refusal.delta", { ...where, delta: part.refusal });
          emit("response.refusal.done", { ...where, refusal: part.refusal });
        } else {
          emit("response.content_part.added", { ...where, part });
        }
        emit("response.content_part.done", { ...where, part });
      });
      break;
    }
    case "function_call":
      emit("response.output_item.added", {
        output_index: index,
        item: { ...item, status: "in_progress", arguments: "" },
      });
      emit("response.function_call_arguments.delta", { ...at, delta: item.arguments ?? "" });
      emit("response.function_call_arguments.done", {
        ...at,
        name: item.name,
        arguments: item.arguments ?? "",
      });
      break;
    case "reasoning": {
      const summary = Array.isArray(item.summary) ? (item.summary as Json[]) : [];
      const content = Array.isArray(item.content) ? (item.content as Json[]) : undefined;
      emit("response.output_item.added", {
        output_index: index,
        item: { ...item, summary: [], ...(content !== undefined && { content: [] }) },
      });
      summary.forEach((part, summary_index) => {
        const where = { ...at, summary_index };
        emit("response.reasoning_summary_part.added", { ...where, part: { ...part, text: "" } });
        emit("response.reasoning_summary_text.delta", { ...where, delta: part.text ?? "" });
        emit("response.reasoning_summary_text.done", { ...where, text: part.text ?? "" });
        emit("response.reasoning_summary_part.done", { ...where, part });
      });
      content?.forEach((part, content_index) => {
        const where = { ...at, content_index };
        emit("response.content_part.added", { ...where, part: { ...part, text: "" } });
        emit("response.reasoning_text.delta", { ...where, delta: part.text ?? "" });
        emit("response.reasoning_text.done", { ...where, text: part.text ?? "" });
        emit("response.content_part.done", { ...where, part });
      });
      break;
    }
    default:
      // Hosted tool calls and anything newer: the whole item, added then done.
      emit("response.output_item.added", { output_index: index, item });
  }
  emit("response.output_item.done", { output_index: index, item });
}

/** Usage as the Responses API reports it (`input_tokens` includes the cached ones). */
export function responsesUsage(usage: unknown): Usage {
  if (typeof usage !== "object" || usage === null) return NO_USAGE;
  const u = usage as {
    input_tokens?: unknown;
    output_tokens?: unknown;
    total_tokens?: unknown;
    input_tokens_details?: { cached_tokens?: unknown } | null;
  };
  const input = count(u.input_tokens);
  const output = count(u.output_tokens);
  return {
    input,
    output,
    cachedInput: count(u.input_tokens_details?.cached_tokens),
    total: count(u.total_tokens) || input + output,
  };
}

function count(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : 0;
}
