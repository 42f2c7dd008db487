/**
 * Server-sent events of OpenAI-compatible streams: split a recorded stream into events, turn a
 * stream into the JSON answer it adds up to, and a JSON answer into the stream that would have
 * carried it. These let a streamed request be served from a plain record and a plain request from
 * a streamed one. A recorded stream is replayed byte for byte; only conversions build new bytes.
 */

type Json = Record<string, unknown>;

/**
 * One server-sent event: an optional `event:` line and the data split into `data:` lines, with
 * the blank line that ends it. The one framing every event stream of the project writes (the
 * gateway's feeds, `serve()`, the local engine).
 */
export function sseFrame(data: string, event?: string): string {
  const lines = data.split("\n").map((line) => `data: ${line}`);
  return `${event === undefined ? "" : `event: ${event}\n`}${lines.join("\n")}\n\n`;
}

/** The events of an SSE body (each without its blank-line terminator). */
export function splitEvents(text: string): string[] {
  return text
    .replace(/\r\n/g, "\n")
    .split("\n\n")
    .filter((event) => event.trim() !== "");
}

/** The `data:` payloads of an SSE body, in order (multi-line data joined with newlines). */
export function dataOf(text: string): string[] {
  const payloads: string[] = [];
  for (const event of splitEvents(text)) {
    const lines = event.split("\n").filter((line) => line.startsWith("data:"));
    if (lines.length > 0)
      payloads.push(lines.map((line) => line.slice(line.startsWith("data: ") ? 6 : 5)).join("\n"));
  }
  return payloads;
}

/** The `event:` types of an SSE body, in order (events without one are not listed). */
export function eventTypes(text: string): string[] {
  const types: string[] = [];
  for (const event of splitEvents(text)) {
    for (const line of event.split("\n")) {
      if (line.startsWith("event:")) types.push(line.slice(6).trim());
    }
  }
  return types;
}

/** Whether a recorded stream ended properly (`data: [DONE]`) and carried no error event. */
export function isComplete(text: string): boolean {
  const payloads = dataOf(text);
  if (payloads.at(-1)?.trim() !== "[DONE]") return false;
  return !payloads.some(
    (payload) => payload.trimStart().startsWith('{"error"') || payload.includes('"object":"error"'),
  );
}

interface ToolCallDraft {
  id?: string;
  type?: string;
  function: { name: string; arguments: string };
}

interface ChoiceDraft {
  index: number;
  content: string;
  hasContent: boolean;
  reasoning: string;
  reasoningField: string | undefined;
  role: string;
  toolCalls: ToolCallDraft[];
  refusal: string | undefined;
  text: string;
  finishReason: unknown;
  logprobs: unknown;
}

/** The JSON answer a recorded stream adds up to (chat or text completion). */
export function assemble(kind: "chat" | "completion", text: string): Json {
  const chunks = dataOf(text)
    .filter((payload) => payload.trim() !== "[DONE]")
    .map((payload) => JSON.parse(payload) as Json);
  const first = chunks[0] ?? {};
  const choices = new Map<number, ChoiceDraft>();
  let usage: unknown;
  let fingerprint: unknown;
  for (const chunk of chunks) {
    if (chunk.usage !== undefined && chunk.usage !== null) usage = chunk.usage;
    if (chunk.system_fingerprint !== undefined) fingerprint = chunk.system_fingerprint;
    for (const raw of (chunk.choices as Json[] | undefined) ?? []) {
      const index = Number(raw.index ?? 0);
      let draft = choices.get(index);
      if (draft === undefined) {
        draft = {
          index,
          content: "",
          hasContent: false,
          reasoning: "",
          reasoningField: undefined,
          role: "assistant",
          toolCalls: [],
          refusal: undefined,
          text: "",
          finishReason: null,
          logprobs: null,
        };
        choices.set(index, draft);
      }
      if (raw.finish_reason !== undefined && raw.finish_reason !== null)
        draft.finishReason = raw.finish_reason;
      if (raw.logprobs !== undefined && raw.logprobs !== null) draft.logprobs = raw.logprobs;
      if (typeof raw.text === "string") draft.text += raw.text;
      const delta = raw.delta as Json | undefined;
      if (delta === undefined) continue;
      if (typeof delta.role === "string") draft.role = delta.role;
      if (typeof delta.content === "string") {
        draft.content += delta.content;
        draft.hasContent = true;
      }
      if (typeof delta.refusal === "string") draft.refusal = (draft.refusal ?? "") + delta.refusal;
      for (const field of ["reasoning_content", "reasoning"]) {
        if (typeof delta[field] === "string") {
          draft.reasoning += delta[field] as string;
          draft.reasoningField = field;
        }
      }
      for (const call of (delta.tool_calls as Json[] | undefined) ?? []) {
        const at = Number(call.index ?? 0);
        let tool = draft.toolCalls[at];
        if (tool === undefined) {
          tool = { function: { name: "", arguments: "" } };
          draft.toolCalls[at] = tool;
        }
        if (typeof call.id === "string") tool.id = call.id;
        if (typeof call.type === "string") tool.type = call.type;
        const fn = call.function as Json | undefined;
        if (typeof fn?.name === "string") tool.function.name += fn.name;
        if (typeof fn?.arguments === "string") tool.function.arguments += fn.arguments;
      }
    }
  }
  const ordered = [...choices.values()].sort((a, b) => a.index - b.index);
  const answer: Json = {
    id: first.id,
    object: kind === "chat" ? "chat.completion" : "text_completion",
    created: first.created,
    model: first.model,
    choices: ordered.map((draft) => {
      if (kind === "completion")
        return {
          index: draft.index,
          text: draft.text,
          logprobs: draft.logprobs,
          finish_reason: draft.finishReason,
        };
      const message: Json = {
        role: draft.role,
        content: draft.hasContent || draft.toolCalls.length === 0 ? draft.content : null,
      };
      if (draft.refusal !== undefined) message.refusal = draft.refusal;
      if (draft.reasoningField !== undefined) message[draft.reasoningField] = draft.reasoning;
      if (draft.toolCalls.length > 0) {
        message.tool_calls = draft.toolCalls.map((tool) => ({
          id: tool.id,
          type: tool.type ?? "function",
          function: tool.function,
        }));
      }
      return {
        index: draft.index,
        message,
        logprobs: draft.logprobs,
        finish_reason: draft.finishReason,
      };
    }),
  };
  if (fingerprint !== undefined) answer.system_fingerprint = fingerprint;
  if (usage !== undefined) answer.usage = usage;
  return answer;
}

/** The SSE events that would have carried a JSON answer (each `data: …`, then `[DONE]`). */
export function synthesize(
  kind: "chat" | "completion",
  answer: Json,
  includeUsage: boolean,
): string[] {
  const base: Json = {
    id: answer.id,
    object: kind === "chat" ? "chat.completion.chunk" : "text_completion",
    created: answer.created,
    model: answer.model,
  };
  if (answer.system_fingerprint !== undefined) base.system_fingerprint = answer.system_fingerprint;
  const events: string[] = [];
  const emit = (chunk: Json) => events.push(`data: ${JSON.stringify(chunk)}`);
  for (const choice of (answer.choices as Json[] | undefined) ?? []) {
    const index = choice.index ?? 0;
    if (kind === "completion") {
      emit({
        ...base,
        choices: [
          {
            index,
            text: choice.text ?? "",
            logprobs: choice.logprobs ?? null,
            finish_reason: null,
          },
        ],
      });
      emit({
        ...base,
        choices: [
          { index, text: "", logprobs: null, finish_reason: choice.finish_reason ?? "stop" },
        ],
      });
      continue;
    }
    const message = (choice.message as Json | undefined) ?? {};
    const delta: Json = { role: message.role ?? "assistant" };
    for (const field of ["content", "refusal", "reasoning_content", "reasoning"]) {
      if (message[field] !== undefined) delta[field] = message[field];
    }
    if (Array.isArray(message.tool_calls)) {
      delta.tool_calls = (message.tool_calls as Json[]).map((call, at) => ({ index: at, ...call }));
    }
    emit({
      ...base,
      choices: [{ index, delta, logprobs: choice.logprobs ?? null, finish_reason: null }],
    });
    emit({
      ...base,
      choices: [
        { index, delta: {}, logprobs: null, finish_reason: choice.finish_reason ?? "stop" },
      ],
    });
  }
  if (includeUsage && answer.usage !== undefined)
    emit({ ...base, choices: [], usage: answer.usage });
  events.push("data: [DONE]");
  return events;
}
