/**
 * Google's Gemini API (`POST …/models/{model}:generateContent` and
 * `:streamGenerateContent?alt=sse`; the same under `tunedModels/` and Vertex AI's
 * `…/publishers/google/models/`). The model is in the path, so the path is keyed (the pipeline
 * keys the upstream's whole path); the tenant comes from `x-goog-api-key` or `?key=`, which
 * stays out of the key (a credential).
 *
 * A stream and a plain answer are the same answer: the key is the plain method's URL
 * (`keyUrl`), and each `data:` of a stream is a `GenerateContentResponse`, so the pipeline
 * serves either from either. `streamGenerateContent` without `alt=sse` answers a JSON array,
 * which is not recorded: such requests pass through uncached.
 *
 * The key: the whole body (`contents`, `systemInstruction`, `tools`, `toolConfig`,
 * `safetySettings`, `generationConfig`, `cachedContent` — a cached content's name names
 * immutable contents — and unknown fields) minus `labels` (Vertex AI's billing labels).
 *
 * A stream is whole when no payload is an error and every candidate it carried has a
 * `finishReason`, or when the prompt was blocked (`promptFeedback.blockReason`, then no
 * candidates): Gemini sends no terminator. Blocked prompts and `SAFETY` / `RECITATION`
 * finishes are answers (the same request under the same `safetySettings` is blocked again), as
 * chat's `content_filter` is.
 *
 * Sampled: `generationConfig.temperature` above 0, or absent (the default is 1), without
 * `generationConfig.seed`. `candidateCount` is the `n` of the pipeline's multiple-choices rule.
 */

import { type Json, parseJsonObject, without } from "../json-body.js";
import {
  type AnswerRecord,
  NO_USAGE,
  type ParsedCall,
  type Protocol,
  type Usage,
} from "../protocol.js";
import { dataOf, eventTypes } from "../sse.js";
import { parseObject } from "./openai.js";

const STREAM = ":streamGenerateContent";
const PLAIN = ":generateContent";

/** Request fields that never change an answer (see the module header). */
const OUT_OF_KEY = ["labels"] as const;

export const geminiProtocol: Protocol = {
  name: "gemini",
  paths: [PLAIN, STREAM],
  keyHeaders: [],
  parse(body: Uint8Array, _contentType: string | undefined, url: URL): ParsedCall {
    const json = parseJsonObject(body);
    const streamed = url.pathname.endsWith(STREAM);
    const config = isObject(json.generationConfig) ? json.generationConfig : {};
    const temperature = config.temperature;
    return {
      keyMaterial: without(json, OUT_OF_KEY),
      stream: streamed,
      model: modelOfPath(url.pathname),
      sampled: (typeof temperature !== "number" || temperature > 0) && config.seed === undefined,
      choices: typeof config.candidateCount === "number" ? config.candidateCount : 1,
      ...(streamed &&
        url.searchParams.get("alt") !== "sse" && {
          bypass:
            "streamGenerateContent without alt=sse answers a JSON array, which is not recorded",
        }),
    };
  },
  keyUrl(url: URL): URL {
    if (!url.pathname.endsWith(STREAM)) return url;
    const plain = new URL(url);
    plain.pathname = `${url.pathname.slice(0, -STREAM.length)}${PLAIN}`;
    plain.searchParams.delete("alt");
    return plain;
  },
  isCompleteStream(text: string): boolean {
    if (eventTypes(text).includes("error")) return false;
    const chunks = chunksOf(text);
    if (chunks === undefined || chunks.length === 0) return false;
    const finished = new Map<number, boolean>();
    for (const chunk of chunks) {
      if (isObject(chunk.promptFeedback) && typeof chunk.promptFeedback.blockReason === "string") {
        return true;
      }
      for (const candidate of candidatesOf(chunk)) {
        const index = typeof candidate.index === "number" ? candidate.index : 0;
        const reason = candidate.finishReason;
        const done = typeof reason === "string" && reason !== "FINISH_REASON_UNSPECIFIED";
        finished.set(index, (finished.get(index) ?? false) || done);
      }
    }
    return finished.size > 0 && [...finished.values()].every(Boolean);
  },
  isAnswer(body: string): boolean {
    const json = parseObject(body);
    return (
      json !== undefined &&
      json.error === undefined &&
      (Array.isArray(json.candidates) || isObject(json.promptFeedback))
    );
  },
  toJson: (record: AnswerRecord) => JSON.stringify(merge(chunksOf(record.body as string) ?? [])),
  toStream(record: AnswerRecord): string[] {
    // One chunk is a whole GenerateContentResponse: the plain answer is its own stream.
    return [`data: ${JSON.stringify(parseObject(record.body as string) ?? {})}`];
  },
  usage(format, body): Usage {
    if (format === "json") return geminiUsage(parseObject(body)?.usageMetadata);
    if (format === "sse") {
      const last = (chunksOf(body) ?? []).findLast((chunk) => chunk.usageMetadata !== undefined);
      return geminiUsage(last?.usageMetadata);
    }
    return NO_USAGE;
  },
  errorBody(status: number, message: string): string {
    return JSON.stringify({ error: { code: status, message, status: statusName(status) } });
  },
};

/** `gemini-2.5-flash` from `/v1beta/models/gemini-2.5-flash:generateContent`. */
function modelOfPath(path: string): string | undefined {
  const colon = path.lastIndexOf(":");
  const segment = path.slice(path.lastIndexOf("/", colon) + 1, colon);
  if (segment === "") return undefined;
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** The chunks of a recorded stream, or `undefined` when one is not an object or is an error. */
function chunksOf(text: string): Json[] | undefined {
  const chunks: Json[] = [];
  for (const payload of dataOf(text)) {
    const chunk = parseObject(payload);
    if (chunk === undefined || chunk.error !== undefined) return undefined;
    chunks.push(chunk);
  }
  return chunks;
}

function candidatesOf(chunk: Json): Json[] {
  return Array.isArray(chunk.candidates) ? (chunk.candidates as unknown[]).filter(isObject) : [];
}

/**
 * The plain answer a stream adds up to: per candidate, its parts in order (adjacent text parts
 * of the same kind joined, as the stream split them), and the other fields from the last chunk
 * that carried them (`finishReason`, `safetyRatings`, `citationMetadata`, …); the response's
 * `usageMetadata` from the last chunk that has one (it holds the totals), `promptFeedback`,
 * `modelVersion` and `responseId` from the first.
 */
function merge(chunks: Json[]): Json {
  const answer: Json = {};
  const candidates = new Map<number, { fields: Json; parts: Json[]; role: unknown }>();
  for (const chunk of chunks) {
    for (const field of ["promptFeedback", "modelVersion", "responseId", "createTime"]) {
      if (chunk[field] !== undefined && answer[field] === undefined) answer[field] = chunk[field];
    }
    if (chunk.usageMetadata !== undefined) answer.usageMetadata = chunk.usageMetadata;
    for (const candidate of candidatesOf(chunk)) {
      const index = typeof candidate.index === "number" ? candidate.index : 0;
      let draft = candidates.get(index);
      if (draft === undefined) {
        draft = { fields: {}, parts: [], role: undefined };
        candidates.set(index, draft);
      }
      for (const [field, value] of Object.entries(candidate)) {
        if (field !== "content" && value !== undefined) draft.fields[field] = value;
      }
      const content = isObject(candidate.content) ? candidate.content : undefined;
      if (content?.role !== undefined) draft.role = content.role;
      for (const part of Array.isArray(content?.parts) ? (content.parts as unknown[]) : []) {
        if (!isObject(part)) continue;
        const last = draft.parts.at(-1);
        if (last !== undefined && joinable(last, part)) {
          draft.parts[draft.parts.length - 1] = {
            ...last,
            text: `${last.text as string}${part.text as string}`,
            ...(part.thoughtSignature !== undefined && { thoughtSignature: part.thoughtSignature }),
          };
        } else {
          draft.parts.push({ ...part });
        }
      }
    }
  }
  if (candidates.size > 0) {
    answer.candidates = [...candidates.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, draft]) => ({
        content: { parts: draft.parts, ...(draft.role !== undefined && { role: draft.role }) },
        ...draft.fields,
      }));
  }
  return answer;
}

/** Two text parts the stream split: only text (and the thought flag), the first unsigned. */
function joinable(a: Json, b: Json): boolean {
  const textOnly = (part: Json, signed: boolean) =>
    typeof part.text === "string" &&
    Object.keys(part).every(
      (key) => key === "text" || key === "thought" || (signed && key === "thoughtSignature"),
    );
  return textOnly(a, false) && textOnly(b, true) && (a.thought === true) === (b.thought === true);
}

function geminiUsage(usage: unknown): Usage {
  if (!isObject(usage)) return NO_USAGE;
  const input = count(usage.promptTokenCount) + count(usage.toolUsePromptTokenCount);
  const output = count(usage.candidatesTokenCount) + count(usage.thoughtsTokenCount);
  return {
    input,
    output,
    cachedInput: count(usage.cachedContentTokenCount),
    total: count(usage.totalTokenCount) || input + output,
  };
}

/** Google's canonical error codes for HTTP statuses (google.rpc.Code). */
function statusName(status: number): string {
  switch (status) {
    case 400:
      return "INVALID_ARGUMENT";
    case 401:
      return "UNAUTHENTICATED";
    case 403:
      return "PERMISSION_DENIED";
    case 404:
      return "NOT_FOUND";
    case 409:
      return "ABORTED";
    case 429:
      return "RESOURCE_EXHAUSTED";
    case 499:
      return "CANCELLED";
    case 501:
      return "UNIMPLEMENTED";
    case 503:
      return "UNAVAILABLE";
    case 504:
      return "DEADLINE_EXCEEDED";
    default:
      return status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION";
  }
}

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function count(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : 0;
}
