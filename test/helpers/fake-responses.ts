/**
 * The OpenAI Responses wire format for the loopback upstream (`fake-upstream.ts`), written from
 * the API reference, independently of the conversions under test:
 * - the Response object (https://platform.openai.com/docs/api-reference/responses/object):
 *   `{ id: "resp_…", object: "response", created_at, status, error, incomplete_details, model,
 *   output: [items], usage: { input_tokens, input_tokens_details: { cached_tokens },
 *   output_tokens, output_tokens_details: { reasoning_tokens }, total_tokens }, … }`, with the
 *   request's settings echoed (`instructions`, `metadata`, `store`, `temperature`, …);
 * - output items: `message` (content `output_text` parts with `annotations` and `logprobs`),
 *   `function_call` (`call_id`, `name`, `arguments` as JSON text), `reasoning` (`summary` of
 *   `summary_text` parts, and `encrypted_content` when `include` asks for
 *   `reasoning.encrypted_content`);
 * - streaming (https://platform.openai.com/docs/api-reference/responses-streaming):
 *   `event: <type>` + `data: {"type": "<type>", "sequence_number": n, …}` from
 *   `response.created` and `response.in_progress` through `response.output_item.added`,
 *   `response.content_part.added`, `response.output_text.delta` (one per word, each with an
 *   `obfuscation` field unless `stream_options.include_obfuscation` is false),
 *   `response.output_text.done`, `response.content_part.done`, `response.output_item.done`
 *   (function calls: `response.function_call_arguments.delta/done`; reasoning:
 *   `response.reasoning_summary_part.added`, `…summary_text.delta/done`, `…summary_part.done`)
 *   to `response.completed`, or `response.incomplete` with
 *   `incomplete_details: { reason: "max_output_tokens" }` when `max_output_tokens` cut it. No
 *   `[DONE]` at the end. Errors mid-stream: an `error` event or `response.failed`.
 */
import type { ServerResponse } from "node:http";
import type { Received } from "./fake-upstream.js";

let counter = 0;

/** The text a Responses answer carries: a function of the last input, so answers differ. */
export function responsesText(request: Received): string {
  const input = request.json?.input;
  if (typeof input === "string") return `echo: ${input}`;
  const last = Array.isArray(input) ? (input.at(-1) as { content?: unknown } | undefined) : {};
  const content = last?.content;
  return `echo: ${typeof content === "string" ? content : JSON.stringify(content ?? "")}`;
}

const words = (text: string) => text.split(" ").map((word, i) => (i === 0 ? word : ` ${word}`));

/** The output items of an answer: a reasoning item when asked, then a message or a tool call. */
function outputOf(request: Received, id: number) {
  const json = request.json ?? {};
  const text = responsesText(request);
  const items: Record<string, unknown>[] = [];
  if (json.reasoning !== undefined) {
    const include = Array.isArray(json.include) ? json.include : [];
    items.push({
      id: `rs_${id}`,
      type: "reasoning",
      summary: [{ type: "summary_text", text: `**Thinking** about ${text}` }],
      ...(include.includes("reasoning.encrypted_content") && {
        encrypted_content: `gAAAAB${Buffer.from(`sealed ${id} ${text}`).toString("base64")}==`,
      }),
    });
  }
  const tools = Array.isArray(json.tools) ? (json.tools as { name?: string }[]) : [];
  if (tools.length > 0) {
    items.push({
      id: `fc_${id}`,
      type: "function_call",
      status: "completed",
      call_id: `call_${id}`,
      name: tools[0]?.name ?? "tool",
      arguments: JSON.stringify({ query: text, unit: "celsius" }),
    });
  } else {
    items.push({
      id: `msg_${id}`,
      type: "message",
      status: "completed",
      role: "assistant",
      content: [{ type: "output_text", text, annotations: [], logprobs: [] }],
    });
  }
  return items;
}

export function responseObject(request: Received): Record<string, unknown> {
  const json = request.json ?? {};
  const id = ++counter;
  const cut = json.max_output_tokens === 1;
  const output = outputOf(request, id);
  if (cut) for (const item of output) if (item.type === "message") item.status = "incomplete";
  return {
    id: `resp_${id}`,
    object: "response",
    created_at: 1_700_000_000,
    status: cut ? "incomplete" : "completed",
    background: false,
    error: null,
    incomplete_details: cut ? { reason: "max_output_tokens" } : null,
    instructions: json.instructions ?? null,
    max_output_tokens: json.max_output_tokens ?? null,
    metadata: json.metadata ?? {},
    model: String(json.model ?? "fake"),
    output,
    parallel_tool_calls: true,
    previous_response_id: json.previous_response_id ?? null,
    reasoning: json.reasoning ?? { effort: null, summary: null },
    store: json.store ?? true,
    temperature: json.temperature ?? 1,
    text: json.text ?? { format: { type: "text" } },
    tool_choice: "auto",
    tools: json.tools ?? [],
    top_p: 1,
    truncation: "disabled",
    usage: {
      input_tokens: 12,
      input_tokens_details: { cached_tokens: 4 },
      output_tokens: 6,
      output_tokens_details: { reasoning_tokens: json.reasoning !== undefined ? 2 : 0 },
      total_tokens: 18,
    },
    user: json.user ?? null,
  };
}

/** The events of a streamed answer, each with its blank line. */
export function responseStreamEvents(request: Received): string[] {
  const final = responseObject(request);
  const obfuscate =
    (request.json?.stream_options as { include_obfuscation?: boolean } | undefined)
      ?.include_obfuscation !== false;
  let sequence = 0;
  const events: string[] = [];
  const emit = (type: string, fields: Record<string, unknown>) =>
    events.push(
      `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: sequence++, ...fields })}\n\n`,
    );
  const created = {
    ...final,
    status: "in_progress",
    output: [],
    usage: null,
    incomplete_details: null,
  };
  emit("response.created", { response: created });
  emit("response.in_progress", { response: created });
  const output = final.output as Record<string, unknown>[];
  output.forEach((item, output_index) => {
    const at = { item_id: item.id, output_index };
    if (item.type === "message") {
      const part = (item.content as { text: string }[])[0] as { text: string };
      emit("response.output_item.added", {
        output_index,
        item: { ...item, status: "in_progress", content: [] },
      });
      emit("response.content_part.added", {
        ...at,
        content_index: 0,
        part: { type: "output_text", annotations: [], logprobs: [], text: "" },
      });
      for (const word of words(part.text)) {
        emit("response.output_text.delta", {
          ...at,
          content_index: 0,
          delta: word,
          logprobs: [],
          ...(obfuscate && { obfuscation: "x".repeat(10 - Math.min(9, word.length)) }),
        });
      }
      emit("response.output_text.done", {
        ...at,
        content_index: 0,
        text: part.text,
        logprobs: [],
      });
      emit("response.content_part.done", { ...at, content_index: 0, part });
    } else if (item.type === "function_call") {
      emit("response.output_item.added", {
        output_index,
        item: { ...item, status: "in_progress", arguments: "" },
      });
      const args = String(item.arguments);
      for (const piece of [args.slice(0, 5), args.slice(5)]) {
        emit("response.function_call_arguments.delta", {
          ...at,
          delta: piece,
          ...(obfuscate && { obfuscation: "yy" }),
        });
      }
      emit("response.function_call_arguments.done", { ...at, name: item.name, arguments: args });
    } else if (item.type === "reasoning") {
      const summary = (item.summary as { text: string }[])[0] as { text: string };
      emit("response.output_item.added", { output_index, item: { ...item, summary: [] } });
      emit("response.reasoning_summary_part.added", {
        ...at,
        summary_index: 0,
        part: { type: "summary_text", text: "" },
      });
      for (const word of words(summary.text)) {
        emit("response.reasoning_summary_text.delta", {
          ...at,
          summary_index: 0,
          delta: word,
          ...(obfuscate && { obfuscation: "zzz" }),
        });
      }
      emit("response.reasoning_summary_text.done", {
        ...at,
        summary_index: 0,
        text: summary.text,
      });
      emit("response.reasoning_summary_part.done", {
        ...at,
        summary_index: 0,
        part: { type: "summary_text", text: summary.text },
      });
    }
    emit("response.output_item.done", { output_index, item });
  });
  emit(final.status === "incomplete" ? "response.incomplete" : "response.completed", {
    response: final,
  });
  return events;
}

/** Answers `POST …/responses` (plain or streamed); `false` for other requests. */
export function answerResponses(request: Received, response: ServerResponse): boolean {
  if (request.method !== "POST" || !request.path.endsWith("/responses")) return false;
  if (request.json?.stream === true) {
    response.writeHead(200, { "content-type": "text/event-stream; charset=utf-8" });
    for (const event of responseStreamEvents(request)) response.write(event);
    response.end();
  } else {
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify(responseObject(request)));
  }
  return true;
}
