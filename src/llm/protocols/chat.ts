/**
 * OpenAI Chat Completions (`POST /chat/completions`), plain and streamed.
 * The key: the whole body (messages in order with every part, tools, `response_format`, every
 * sampling parameter, unknown fields) minus what `openai.ts` lists, plus `include_usage` for
 * streams and the organization, project and beta headers.
 */

import { parseJsonBody } from "../json-body.js";
import type { AnswerRecord, ParsedCall, Protocol, Usage } from "../protocol.js";
import { dataOf } from "../sse.js";
import {
  includeUsage,
  isCompleteOpenAIStream,
  isOpenAIAnswer,
  isSampled,
  keyMaterial,
  modelOf,
  OPENAI_KEY_HEADERS,
  openaiError,
  openaiUsage,
  parseObject,
} from "./openai.js";
import { assembleExact, synthesizeExact } from "./openai-convert.js";

export function completionsProtocol(kind: "chat" | "completion"): Protocol {
  const path = kind === "chat" ? "/chat/completions" : "/completions";
  return {
    name: kind,
    paths: [path],
    keyHeaders: OPENAI_KEY_HEADERS,
    parse(body: Uint8Array): ParsedCall {
      const { json, numbers } = parseJsonBody(body);
      const stream = json.stream === true;
      const material = keyMaterial(json);
      return {
        // Number literals JSON.parse cannot keep apart (1.0 vs 1) are keyed as written, in a
        // Map: JSON never parses into one, so no body can spell this wrapper.
        keyMaterial:
          numbers === undefined
            ? material
            : new Map<string, unknown>([
                ["body", material],
                ["numbers", numbers],
              ]),
        stream,
        model: modelOf(json),
        sampled: isSampled(json),
        // Anything but a plain integer n (a string "2" that a lenient server reads as 2) is
        // treated as asking for several answers: not cached unless that is allowed.
        choices:
          json.n === undefined || json.n === null
            ? 1
            : Number.isInteger(json.n)
              ? (json.n as number)
              : 2,
        details: { includeUsage: stream && includeUsage(json) },
      };
    },
    isCompleteStream: (text) => isCompleteOpenAIStream(text, kind),
    isAnswer: (body) => isOpenAIAnswer(body, kind),
    toJson(record: AnswerRecord) {
      const answer = assembleExact(kind, record.body as string);
      return answer === undefined ? undefined : JSON.stringify(answer);
    },
    toStream(record: AnswerRecord, call: ParsedCall) {
      const answer = parseObject(record.body as string);
      return answer === undefined
        ? undefined
        : synthesizeExact(kind, answer, call.details?.includeUsage === true);
    },
    usage(format, body): Usage {
      if (format === "sse") return openaiUsage(lastUsage(body));
      return openaiUsage(parseObject(body)?.usage);
    },
    errorBody: openaiError,
  };
}

export const chatProtocol: Protocol = completionsProtocol("chat");
export const completionProtocol: Protocol = completionsProtocol("completion");

/** The usage a recorded stream carried (its last chunk with one), without assembling it. */
function lastUsage(text: string): unknown {
  const payloads = dataOf(text);
  for (let i = payloads.length - 1; i >= 0; i--) {
    const chunk = parseObject(payloads[i] as string);
    if (chunk?.usage !== undefined && chunk.usage !== null) return chunk.usage;
  }
  return undefined;
}
