/**
 * The OpenAI Responses format (`POST /v1/responses`) over the local engine, plain and streamed
 * (https://platform.openai.com/docs/api-reference/responses): `instructions` and `input` (a
 * string, or message / function-call / function-call-output items) are rendered as
 * "role: text" lines ending with "assistant:", like chat; the answer is one `message` item with
 * one `output_text` part. An answer cut at `max_output_tokens` is `status: "incomplete"` with
 * `incomplete_details.reason: "max_output_tokens"`, and its stream ends with
 * `response.incomplete` instead of `response.completed`.
 *
 * The engine keeps no responses: it answers `store: false`, refuses `previous_response_id`,
 * `conversation` and `background` (each needs stored state), and `GET /responses/{id}` is 404.
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

export function responsesError(status: number, message: string, param: string | null = null) {
  return jsonResponse(
    { error: { message, type: "invalid_request_error", param, code: null } },
    status,
  );
}

export async function createResponse(
  engine: Generator,
  body: Json,
  signal: AbortSignal,
): Promise<Response> {
  for (const field of ["previous_response_id", "conversation"] as const) {
    if (body[field] !== undefined && body[field] !== null) {
      return responsesError(
        400,
        `the local engine keeps no responses or conversations; \`${field}\` is not supported`,
        field,
      );
    }
  }
  if (body.background === true) {
    return responsesError(400, "the local engine does not run responses in the background");
  }
  const prompt = promptOf(body);
  if (prompt === undefined) {
    return responsesError(400, "`input` must be a string or a non-empty array of items", "input");
  }
  const number = engine.nextId();
  const ids = { response: `resp_${number}`, message: `msg_${number}` };
  const options: SamplingOptions = {
    maxTokens: positiveInteger(body.max_output_tokens, 16),
    temperature: typeof body.temperature === "number" ? body.temperature : 1,
  };
  if (typeof body.top_p === "number") options.topP = body.top_p;
  const created = Math.floor(Date.now() / 1000);
  const promptTokens = engine.countTokens(prompt);
  const base = responseBase(engine, body, ids.response, created);
  if (body.stream !== true) {
    const generated = await engine.generate(prompt, options, signal, () => {});
    return jsonResponse(finished(base, ids.message, generated, promptTokens));
  }
  return eventStreamResponse(async (send) => {
    let sequence = 0;
    const emit = (type: string, fields: Json) =>
      send(
        `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: sequence++, ...fields })}`,
      );
    const pending = { ...base, status: "in_progress", output: [], usage: null };
    emit("response.created", { response: pending });
    emit("response.in_progress", { response: pending });
    const at = { item_id: ids.message, output_index: 0 };
    emit("response.output_item.added", {
      output_index: 0,
      item: {
        id: ids.message,
        type: "message",
        status: "in_progress",
        role: "assistant",
        content: [],
      },
    });
    emit("response.content_part.added", {
      ...at,
      content_index: 0,
      part: { type: "output_text", annotations: [], logprobs: [], text: "" },
    });
    const generated = await engine.generate(prompt, options, signal, (chunk) => {
      emit("response.output_text.delta", { ...at, content_index: 0, delta: chunk, logprobs: [] });
    });
    const response = finished(base, ids.message, generated, promptTokens);
    const item = (response.output as Json[])[0] as Json;
    const part = (item.content as Json[])[0] as Json;
    emit("response.output_text.done", {
      ...at,
      content_index: 0,
      text: generated.text,
      logprobs: [],
    });
    emit("response.content_part.done", { ...at, content_index: 0, part });
    emit("response.output_item.done", { output_index: 0, item });
    emit(response.status === "incomplete" ? "response.incomplete" : "response.completed", {
      response,
    });
  });
}

function responseBase(engine: Generator, body: Json, id: string, created: number): Json {
  return {
    id,
    object: "response",
    created_at: created,
    status: "in_progress",
    background: false,
    error: null,
    incomplete_details: null,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    metadata: body.metadata ?? {},
    model: typeof body.model === "string" ? body.model : engine.modelName,
    output: [],
    parallel_tool_calls: true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: false,
    temperature: typeof body.temperature === "number" ? body.temperature : 1,
    text: body.text ?? { format: { type: "text" } },
    tool_choice: "auto",
    tools: [],
    top_p: typeof body.top_p === "number" ? body.top_p : 1,
    truncation: "disabled",
    usage: null,
    user: body.user ?? null,
  };
}

function finished(base: Json, messageId: string, generated: Generated, promptTokens: number): Json {
  const cut = generated.finish === "length";
  return {
    ...base,
    status: cut ? "incomplete" : "completed",
    incomplete_details: cut ? { reason: "max_output_tokens" } : null,
    output: [
      {
        id: messageId,
        type: "message",
        status: cut ? "incomplete" : "completed",
        role: "assistant",
        content: [{ type: "output_text", annotations: [], logprobs: [], text: generated.text }],
      },
    ],
    usage: {
      input_tokens: promptTokens,
      input_tokens_details: { cached_tokens: generated.reused },
      output_tokens: generated.completionTokens,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: promptTokens + generated.completionTokens,
    },
  };
}

/** "role: text" lines of the instructions and input items, ending with "assistant:". */
function promptOf(body: Json): string | undefined {
  const lines: string[] = [];
  if (typeof body.instructions === "string") lines.push(`system: ${body.instructions}`);
  const input = body.input;
  if (typeof input === "string") lines.push(`user: ${input}`);
  else if (Array.isArray(input) && input.length > 0) {
    for (const item of input as Json[]) {
      if (typeof item !== "object" || item === null) return undefined;
      if (item.type === "function_call") {
        lines.push(`assistant: ${String(item.name)}(${String(item.arguments ?? "")})`);
      } else if (item.type === "function_call_output") {
        lines.push(`tool: ${typeof item.output === "string" ? item.output : textOf(item.output)}`);
      } else if (typeof item.role === "string") {
        lines.push(`${item.role}: ${textOf(item.content)}`);
      }
    }
  } else return undefined;
  return `${lines.join("\n")}\nassistant:`;
}
