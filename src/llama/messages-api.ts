/**
 * The Anthropic Messages format (`POST /v1/messages`, `POST /v1/messages/count_tokens`) over
 * the local engine, plain and streamed (https://docs.anthropic.com/en/api/messages,
 * https://docs.anthropic.com/en/api/messages-streaming): `system` and `messages` (string or
 * block content; tool uses and results as text) are rendered as "role: text" lines ending with
 * "assistant:", like chat; the answer is one `text` block. `stop_reason` is `max_tokens`,
 * `stop_sequence` (with the sequence) or `end_turn`. Usage splits the prompt the way Anthropic
 * does: `input_tokens` evaluated, `cache_read_input_tokens` restored from KV state.
 *
 * A stream sends `message_start` before the prompt is evaluated, so its usage there counts
 * every prompt token as input; `message_delta` carries the final, split counters (the SDK
 * copies them over, as it does Anthropic's).
 */

import {
  eventStreamResponse,
  type Generated,
  type Generator,
  jsonResponse,
  positiveInteger,
  type SamplingOptions,
  textOf,
} from "./generator.js";

type Json = Record<string, unknown>;

export function messagesError(status: number, message: string): Response {
  const type =
    status === 404 ? "not_found_error" : status >= 500 ? "api_error" : "invalid_request_error";
  return jsonResponse({ type: "error", error: { type, message } }, status);
}

export async function createMessage(
  engine: Generator,
  body: Json,
  signal: AbortSignal,
): Promise<Response> {
  const prompt = promptOf(body);
  if (prompt === undefined) return messagesError(400, "messages: must be a non-empty array");
  if (typeof body.max_tokens !== "number") return messagesError(400, "max_tokens: Field required");
  const options: SamplingOptions = {
    maxTokens: positiveInteger(body.max_tokens, 16),
    temperature: typeof body.temperature === "number" ? body.temperature : 1,
  };
  if (typeof body.top_p === "number") options.topP = body.top_p;
  if (typeof body.top_k === "number") options.topK = body.top_k;
  if (Array.isArray(body.stop_sequences) && body.stop_sequences.length > 0) {
    options.customStopTriggers = (body.stop_sequences as unknown[]).map(String);
  }
  const id = `msg_${engine.nextId()}`;
  const model = typeof body.model === "string" ? body.model : engine.modelName;
  const promptTokens = engine.countTokens(prompt);
  if (body.stream !== true) {
    const generated = await engine.generate(prompt, options, signal, () => {});
    return jsonResponse({
      id,
      type: "message",
      role: "assistant",
      model,
      content: [{ type: "text", text: generated.text }],
      ...stopOf(generated),
      usage: usage(promptTokens, generated),
    });
  }
  return eventStreamResponse(async (send) => {
    const emit = (type: string, fields: Json = {}) =>
      send(`event: ${type}\ndata: ${JSON.stringify({ type, ...fields })}`);
    emit("message_start", {
      message: {
        id,
        type: "message",
        role: "assistant",
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: {
          input_tokens: promptTokens,
          cache_creation_input_tokens: 0,
          cache_read_input_tokens: 0,
          output_tokens: 0,
        },
      },
    });
    emit("ping");
    emit("content_block_start", { index: 0, content_block: { type: "text", text: "" } });
    const generated = await engine.generate(prompt, options, signal, (chunk) => {
      emit("content_block_delta", { index: 0, delta: { type: "text_delta", text: chunk } });
    });
    emit("content_block_stop", { index: 0 });
    emit("message_delta", { delta: stopOf(generated), usage: usage(promptTokens, generated) });
    emit("message_stop");
  });
}

/** `POST /v1/messages/count_tokens`: the tokens of the prompt the engine would evaluate. */
export function countMessageTokens(engine: Generator, body: Json): Response {
  const prompt = promptOf(body);
  if (prompt === undefined) return messagesError(400, "messages: must be a non-empty array");
  return jsonResponse({ input_tokens: engine.countTokens(prompt) });
}

function stopOf(generated: Generated): { stop_reason: string; stop_sequence: string | null } {
  if (generated.finish === "length") return { stop_reason: "max_tokens", stop_sequence: null };
  if (generated.stopSequence !== undefined) {
    return { stop_reason: "stop_sequence", stop_sequence: generated.stopSequence };
  }
  return { stop_reason: "end_turn", stop_sequence: null };
}

function usage(promptTokens: number, generated: Generated): Json {
  const read = Math.min(generated.reused, promptTokens);
  return {
    input_tokens: promptTokens - read,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: read,
    output_tokens: generated.completionTokens,
  };
}

/** "role: text" lines of the system prompt and the messages, ending with "assistant:". */
function promptOf(body: Json): string | undefined {
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) return undefined;
  const lines: string[] = [];
  const system = body.system;
  if (typeof system === "string" && system !== "") lines.push(`system: ${system}`);
  else if (Array.isArray(system) && system.length > 0) lines.push(`system: ${textOf(system)}`);
  for (const message of messages as Json[]) {
    if (typeof message !== "object" || message === null) return undefined;
    lines.push(`${String(message.role)}: ${contentText(message.content)}`);
  }
  return `${lines.join("\n")}\nassistant:`;
}

/** Text of a message's content: text blocks, tool uses as calls, tool results as their text. */
function contentText(content: unknown): string {
  if (!Array.isArray(content)) return textOf(content);
  return (content as Json[])
    .map((block) => {
      if (block?.type === "tool_use")
        return `${String(block.name)}(${JSON.stringify(block.input)})`;
      if (block?.type === "tool_result") return textOf(block.content);
      return typeof block?.text === "string" ? block.text : "";
    })
    .join("");
}
