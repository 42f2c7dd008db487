/**
 * The Anthropic Messages wire format for the loopback upstream (`fake-upstream.ts`), written
 * from the API reference, independently of the conversions under test:
 * - the Message object (https://docs.anthropic.com/en/api/messages): `{ id: "msg_…", type:
 *   "message", role: "assistant", model, content: [blocks], stop_reason, stop_sequence, usage: {
 *   input_tokens, cache_creation_input_tokens, cache_read_input_tokens, cache_creation: {
 *   ephemeral_5m_input_tokens, ephemeral_1h_input_tokens }, output_tokens, service_tier } }`;
 * - content blocks: `text`, `thinking` with its `signature` and `redacted_thinking` with its
 *   `data` (https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking), `tool_use`
 *   (`id`, `name`, `input`);
 * - streaming (https://docs.anthropic.com/en/api/messages-streaming): `event: <type>` +
 *   `data: {"type": "<type>", …}`: `message_start` (the message with empty content and
 *   `output_tokens: 1`), `ping`, per block `content_block_start`, `content_block_delta`s
 *   (`text_delta`; `thinking_delta` then one `signature_delta`; `input_json_delta` with partial
 *   JSON), `content_block_stop`, then `message_delta` (`stop_reason`, cumulative `usage`) and
 *   `message_stop`. Errors mid-stream: `event: error` + `{"type": "error", "error": {"type":
 *   "overloaded_error", "message": "Overloaded"}}`.
 * - count_tokens (https://docs.anthropic.com/en/api/messages-count-tokens): `{ input_tokens }`.
 * - errors: `{ "type": "error", "error": { "type", "message" } }`.
 */
import type { ServerResponse } from "node:http";
import type { Received } from "./fake-upstream.js";

let counter = 0;

export function messagesText(request: Received): string {
  const messages = (request.json?.messages as { content?: unknown }[] | undefined) ?? [];
  const last = messages.at(-1)?.content;
  if (typeof last === "string") return `echo: ${last}`;
  const text = Array.isArray(last)
    ? (last as { text?: unknown }[])
        .map((block) => (typeof block.text === "string" ? block.text : ""))
        .join("")
    : "";
  return `echo: ${text}`;
}

/** The content of an answer: thinking when asked, then a tool use (with tools) or text. */
function contentOf(request: Received, id: number): Record<string, unknown>[] {
  const json = request.json ?? {};
  const text = messagesText(request);
  const blocks: Record<string, unknown>[] = [];
  if ((json.thinking as { type?: string } | undefined)?.type === "enabled") {
    blocks.push({
      type: "thinking",
      thinking: `Let me think about ${text}.`,
      signature: `EqQBCgIYAhIM${Buffer.from(`signed ${id} ${text}`).toString("base64")}`,
    });
    blocks.push({ type: "redacted_thinking", data: `EmwKAhgBEgy${id}redacted+/=` });
  }
  const tools = Array.isArray(json.tools) ? (json.tools as { name?: string }[]) : [];
  if (tools.length > 0) {
    blocks.push({ type: "text", text: "Let me look that up." });
    blocks.push({
      type: "tool_use",
      id: `toolu_${id}`,
      name: tools[0]?.name ?? "tool",
      input: { location: text, unit: "celsius", nested: { cache_control: "data, not a hint" } },
    });
  } else {
    blocks.push({ type: "text", text });
  }
  return blocks;
}

export function messageObject(request: Received): Record<string, unknown> {
  const json = request.json ?? {};
  const id = ++counter;
  const cut = json.max_tokens === 1;
  const tools = Array.isArray(json.tools) && json.tools.length > 0;
  return {
    id: `msg_${id}`,
    type: "message",
    role: "assistant",
    model: String(json.model ?? "fake"),
    content: contentOf(request, id),
    stop_reason: cut ? "max_tokens" : tools ? "tool_use" : "end_turn",
    stop_sequence: null,
    usage: {
      input_tokens: 20,
      cache_creation_input_tokens: 1000,
      cache_read_input_tokens: 3000,
      cache_creation: { ephemeral_5m_input_tokens: 1000, ephemeral_1h_input_tokens: 0 },
      output_tokens: 7,
      service_tier: "standard",
    },
  };
}

/** The events of a streamed answer, each with its blank line. */
export function messageStreamEvents(request: Received): string[] {
  const final = messageObject(request);
  const usage = final.usage as Record<string, unknown>;
  const events: string[] = [];
  const emit = (type: string, fields: Record<string, unknown> = {}) =>
    events.push(`event: ${type}\ndata: ${JSON.stringify({ type, ...fields })}\n\n`);
  emit("message_start", {
    message: {
      ...final,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { ...usage, output_tokens: 1 },
    },
  });
  emit("ping");
  (final.content as Record<string, unknown>[]).forEach((block, index) => {
    const delta = (value: Record<string, unknown>) =>
      emit("content_block_delta", { index, delta: value });
    if (block.type === "text") {
      emit("content_block_start", { index, content_block: { type: "text", text: "" } });
      const words = String(block.text).split(" ");
      words.forEach((word, i) => {
        delta({ type: "text_delta", text: i === 0 ? word : ` ${word}` });
      });
    } else if (block.type === "thinking") {
      emit("content_block_start", {
        index,
        content_block: { type: "thinking", thinking: "", signature: "" },
      });
      const thinking = String(block.thinking);
      delta({ type: "thinking_delta", thinking: thinking.slice(0, 8) });
      delta({ type: "thinking_delta", thinking: thinking.slice(8) });
      delta({ type: "signature_delta", signature: block.signature });
    } else if (block.type === "tool_use") {
      emit("content_block_start", {
        index,
        content_block: { type: "tool_use", id: block.id, name: block.name, input: {} },
      });
      const args = JSON.stringify(block.input);
      delta({ type: "input_json_delta", partial_json: "" });
      delta({ type: "input_json_delta", partial_json: args.slice(0, 7) });
      delta({ type: "input_json_delta", partial_json: args.slice(7) });
    } else {
      emit("content_block_start", { index, content_block: block });
    }
    emit("content_block_stop", { index });
  });
  emit("message_delta", {
    delta: { stop_reason: final.stop_reason, stop_sequence: null },
    usage: {
      input_tokens: usage.input_tokens,
      cache_creation_input_tokens: usage.cache_creation_input_tokens,
      cache_read_input_tokens: usage.cache_read_input_tokens,
      output_tokens: usage.output_tokens,
    },
  });
  emit("message_stop");
  return events;
}

export function countTokens(request: Received): Record<string, unknown> {
  return { input_tokens: JSON.stringify(request.json?.messages ?? []).length };
}

/** Answers `POST …/messages` and `…/messages/count_tokens`; `false` for other requests. */
export function answerMessages(request: Received, response: ServerResponse): boolean {
  if (request.method !== "POST") return false;
  if (request.path.endsWith("/messages/count_tokens")) {
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify(countTokens(request)));
    return true;
  }
  if (!request.path.endsWith("/messages")) return false;
  if (request.json?.stream === true) {
    response.writeHead(200, { "content-type": "text/event-stream; charset=utf-8" });
    for (const event of messageStreamEvents(request)) response.write(event);
    response.end();
  } else {
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify(messageObject(request)));
  }
  return true;
}
