/**
 * Converting OpenAI chat and text completions between their streamed and plain forms, exactly
 * or not at all. A stream is assembled into the plain answer it adds up to, and a plain answer
 * synthesised into the chunks that would have carried it — but only when every field is one
 * these functions know how to carry over (content, refusal, reasoning, tool calls, the legacy
 * `function_call`, annotations, logprobs, usage). Anything else (audio, a field added to the API
 * after this was written, a malformed chunk) makes the conversion refuse (`undefined`): the
 * request is then a miss and asks the upstream for the form it wants, because a converted answer
 * that lost a field would be a wrong answer. Nothing here throws on hostile input.
 */

import { dataOf } from "../sse.js";

type Json = Record<string, unknown>;
type Kind = "chat" | "completion";

const CHUNK_FIELDS = new Set([
  "id",
  "object",
  "created",
  "model",
  "system_fingerprint",
  "service_tier",
  "choices",
  "usage",
  "obfuscation",
]);
const CHAT_CHOICE_FIELDS = new Set(["index", "delta", "logprobs", "finish_reason"]);
const TEXT_CHOICE_FIELDS = new Set(["index", "text", "logprobs", "finish_reason"]);
const DELTA_FIELDS = new Set([
  "role",
  "content",
  "refusal",
  "reasoning_content",
  "reasoning",
  "tool_calls",
  "function_call",
  "annotations",
]);
const MESSAGE_FIELDS = new Set([
  "role",
  "content",
  "refusal",
  "reasoning_content",
  "reasoning",
  "tool_calls",
  "function_call",
  "annotations",
]);
const ANSWER_FIELDS = new Set([
  "id",
  "object",
  "created",
  "model",
  "system_fingerprint",
  "service_tier",
  "choices",
  "usage",
]);

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function onlyKnown(value: Json, known: Set<string>): boolean {
  for (const key of Object.keys(value)) if (!known.has(key)) return false;
  return true;
}

function parse(payload: string): Json | undefined {
  try {
    const value = JSON.parse(payload) as unknown;
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

interface ToolDraft {
  id?: string;
  type?: string;
  name: string;
  arguments: string;
}

interface ChoiceDraft {
  index: number;
  role: string;
  content: string;
  hasContent: boolean;
  refusal: string | undefined;
  reasoning: Map<string, string>;
  tools: ToolDraft[];
  functionCall: { name: string; arguments: string } | undefined;
  annotations: unknown[] | undefined;
  text: string;
  finishReason: unknown;
  logprobs: Json | undefined;
  logprobsSeen: boolean;
}

/**
 * The plain answer a recorded stream adds up to, or `undefined` when it cannot be assembled
 * exactly (or carries no usage: a plain answer always has one).
 */
export function assembleExact(kind: Kind, text: string): Json | undefined {
  const payloads = dataOf(text).filter((payload) => payload.trim() !== "[DONE]");
  const chunks: Json[] = [];
  for (const payload of payloads) {
    const chunk = parse(payload);
    if (chunk === undefined || !onlyKnown(chunk, CHUNK_FIELDS)) return undefined;
    chunks.push(chunk);
  }
  const first = chunks[0];
  if (first === undefined) return undefined;
  const drafts = new Map<number, ChoiceDraft>();
  let usage: unknown;
  let fingerprint: unknown;
  let tier: unknown;
  for (const chunk of chunks) {
    if (chunk.usage !== undefined && chunk.usage !== null) {
      if (!isObject(chunk.usage)) return undefined;
      usage = chunk.usage;
    }
    if (chunk.system_fingerprint !== undefined) fingerprint = chunk.system_fingerprint;
    if (chunk.service_tier !== undefined) tier = chunk.service_tier;
    if (chunk.choices === undefined) continue;
    if (!Array.isArray(chunk.choices)) return undefined;
    for (const raw of chunk.choices as unknown[]) {
      if (!isObject(raw)) return undefined;
      if (!onlyKnown(raw, kind === "chat" ? CHAT_CHOICE_FIELDS : TEXT_CHOICE_FIELDS)) {
        return undefined;
      }
      const index = raw.index ?? 0;
      if (typeof index !== "number" || !Number.isInteger(index) || index < 0) return undefined;
      let draft = drafts.get(index);
      if (draft === undefined) {
        draft = {
          index,
          role: "assistant",
          content: "",
          hasContent: false,
          refusal: undefined,
          reasoning: new Map(),
          tools: [],
          functionCall: undefined,
          annotations: undefined,
          text: "",
          finishReason: null,
          logprobs: undefined,
          logprobsSeen: false,
        };
        drafts.set(index, draft);
      }
      if (raw.finish_reason !== undefined && raw.finish_reason !== null) {
        draft.finishReason = raw.finish_reason;
      }
      if (raw.logprobs !== undefined && raw.logprobs !== null) {
        if (!mergeLogprobs(draft, raw.logprobs)) return undefined;
      } else if (raw.logprobs === null) {
        draft.logprobsSeen = true;
      }
      if (kind === "completion") {
        if (raw.text !== undefined) {
          if (typeof raw.text !== "string") return undefined;
          draft.text += raw.text;
        }
        continue;
      }
      if (raw.delta === undefined) continue;
      if (!isObject(raw.delta) || !onlyKnown(raw.delta, DELTA_FIELDS)) return undefined;
      if (!mergeDelta(draft, raw.delta)) return undefined;
    }
  }
  if (usage === undefined) return undefined;
  const ordered = [...drafts.values()].sort((a, b) => a.index - b.index);
  if (ordered.length === 0) return undefined;
  const answer: Json = {
    id: first.id,
    object: kind === "chat" ? "chat.completion" : "text_completion",
    created: first.created,
    model: first.model,
    choices: ordered.map((draft) => (kind === "chat" ? chatChoice(draft) : textChoice(draft))),
  };
  if (tier !== undefined) answer.service_tier = tier;
  if (fingerprint !== undefined) answer.system_fingerprint = fingerprint;
  answer.usage = usage;
  return answer;
}

function mergeDelta(draft: ChoiceDraft, delta: Json): boolean {
  if (delta.role !== undefined) {
    if (typeof delta.role !== "string") return false;
    draft.role = delta.role;
  }
  if (delta.content !== undefined && delta.content !== null) {
    if (typeof delta.content !== "string") return false;
    draft.content += delta.content;
    draft.hasContent = true;
  }
  if (delta.refusal !== undefined && delta.refusal !== null) {
    if (typeof delta.refusal !== "string") return false;
    draft.refusal = (draft.refusal ?? "") + delta.refusal;
  }
  for (const field of ["reasoning_content", "reasoning"]) {
    const value = delta[field];
    if (value === undefined || value === null) continue;
    if (typeof value !== "string") return false;
    draft.reasoning.set(field, (draft.reasoning.get(field) ?? "") + value);
  }
  if (delta.annotations !== undefined) {
    if (!Array.isArray(delta.annotations)) return false;
    draft.annotations = [...(draft.annotations ?? []), ...delta.annotations];
  }
  if (delta.function_call !== undefined && delta.function_call !== null) {
    const call = delta.function_call;
    if (!isObject(call)) return false;
    draft.functionCall ??= { name: "", arguments: "" };
    if (call.name !== undefined) {
      if (typeof call.name !== "string") return false;
      draft.functionCall.name += call.name;
    }
    if (call.arguments !== undefined) {
      if (typeof call.arguments !== "string") return false;
      draft.functionCall.arguments += call.arguments;
    }
  }
  if (delta.tool_calls !== undefined && delta.tool_calls !== null) {
    if (!Array.isArray(delta.tool_calls)) return false;
    for (const call of delta.tool_calls as unknown[]) {
      if (!isObject(call)) return false;
      const at = call.index ?? 0;
      if (typeof at !== "number" || !Number.isInteger(at) || at < 0 || at > 1024) return false;
      let tool = draft.tools[at];
      if (tool === undefined) {
        tool = { name: "", arguments: "" };
        draft.tools[at] = tool;
      }
      if (call.id !== undefined) {
        if (typeof call.id !== "string") return false;
        tool.id = call.id;
      }
      if (call.type !== undefined) {
        if (typeof call.type !== "string") return false;
        tool.type = call.type;
      }
      const fn = call.function;
      if (fn !== undefined) {
        if (!isObject(fn)) return false;
        if (fn.name !== undefined) {
          if (typeof fn.name !== "string") return false;
          tool.name += fn.name;
        }
        if (fn.arguments !== undefined) {
          if (typeof fn.arguments !== "string") return false;
          tool.arguments += fn.arguments;
        }
      }
    }
  }
  return true;
}

/** Logprobs of a chunk: chat's `{ content, refusal }` arrays, text's parallel arrays, concatenated. */
function mergeLogprobs(draft: ChoiceDraft, logprobs: unknown): boolean {
  if (!isObject(logprobs)) return false;
  draft.logprobsSeen = true;
  const merged: Json = draft.logprobs ?? {};
  for (const [field, value] of Object.entries(logprobs)) {
    if (value === null) {
      if (!(field in merged)) merged[field] = null;
      continue;
    }
    if (!Array.isArray(value)) return false;
    const before = merged[field];
    merged[field] = Array.isArray(before) ? [...before, ...value] : [...value];
  }
  draft.logprobs = merged;
  return true;
}

function chatChoice(draft: ChoiceDraft): Json {
  const message: Json = {
    role: draft.role,
    content:
      draft.hasContent || (draft.tools.length === 0 && draft.functionCall === undefined)
        ? draft.content
        : null,
  };
  if (draft.refusal !== undefined) message.refusal = draft.refusal;
  for (const [field, value] of draft.reasoning) message[field] = value;
  if (draft.annotations !== undefined) message.annotations = draft.annotations;
  if (draft.functionCall !== undefined) message.function_call = draft.functionCall;
  if (draft.tools.length > 0) {
    message.tool_calls = draft.tools.map((tool) => ({
      id: tool.id,
      type: tool.type ?? "function",
      function: { name: tool.name, arguments: tool.arguments },
    }));
  }
  return {
    index: draft.index,
    message,
    logprobs: draft.logprobs ?? null,
    finish_reason: draft.finishReason,
  };
}

function textChoice(draft: ChoiceDraft): Json {
  return {
    index: draft.index,
    text: draft.text,
    logprobs: draft.logprobs ?? null,
    finish_reason: draft.finishReason,
  };
}

/**
 * The chunks (each `data: …`, then `data: [DONE]`) that would have streamed a plain answer, or
 * `undefined` when the answer holds something a stream cannot carry exactly. With
 * `includeUsage`, every chunk carries `"usage": null` and a last chunk with no choices carries
 * the usage, as OpenAI streams do.
 */
export function synthesizeExact(
  kind: Kind,
  answer: Json,
  includeUsage: boolean,
): string[] | undefined {
  if (!onlyKnown(answer, ANSWER_FIELDS) || !Array.isArray(answer.choices)) return undefined;
  if (includeUsage && !isObject(answer.usage)) return undefined;
  const base: Json = {
    id: answer.id,
    object: kind === "chat" ? "chat.completion.chunk" : "text_completion",
    created: answer.created,
    model: answer.model,
  };
  if (answer.service_tier !== undefined) base.service_tier = answer.service_tier;
  if (answer.system_fingerprint !== undefined) base.system_fingerprint = answer.system_fingerprint;
  const events: string[] = [];
  const emit = (choices: unknown[]) =>
    events.push(
      `data: ${JSON.stringify({ ...base, choices, ...(includeUsage && { usage: null }) })}`,
    );
  for (const choice of answer.choices as unknown[]) {
    if (!isObject(choice)) return undefined;
    const index = choice.index ?? 0;
    const logprobs = choice.logprobs ?? null;
    if (kind === "completion") {
      if (!onlyKnown(choice, TEXT_CHOICE_FIELDS) || typeof (choice.text ?? "") !== "string") {
        return undefined;
      }
      emit([{ index, text: choice.text ?? "", logprobs, finish_reason: null }]);
      emit([{ index, text: "", logprobs: null, finish_reason: choice.finish_reason ?? "stop" }]);
      continue;
    }
    if (!onlyKnown(choice, new Set(["index", "message", "logprobs", "finish_reason"]))) {
      return undefined;
    }
    const message = choice.message;
    if (!isObject(message) || !onlyKnown(message, MESSAGE_FIELDS)) return undefined;
    const delta: Json = { role: message.role ?? "assistant" };
    for (const field of ["content", "refusal", "reasoning_content", "reasoning", "annotations"]) {
      if (message[field] !== undefined) delta[field] = message[field];
    }
    if (message.function_call !== undefined && message.function_call !== null) {
      delta.function_call = message.function_call;
    }
    if (Array.isArray(message.tool_calls)) {
      const calls: Json[] = [];
      for (const [at, call] of (message.tool_calls as unknown[]).entries()) {
        if (!isObject(call)) return undefined;
        calls.push({ index: at, ...call });
      }
      delta.tool_calls = calls;
    } else if (message.tool_calls !== undefined && message.tool_calls !== null) {
      return undefined;
    }
    emit([{ index, delta, logprobs, finish_reason: null }]);
    emit([{ index, delta: {}, logprobs: null, finish_reason: choice.finish_reason ?? "stop" }]);
  }
  if (includeUsage) {
    events.push(`data: ${JSON.stringify({ ...base, choices: [], usage: answer.usage })}`);
  }
  events.push("data: [DONE]");
  return events;
}
