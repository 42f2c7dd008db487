/**
 * OpenAI Chat Completions (`POST /chat/completions`), plain and streamed.
 * The key: the whole body (messages in order with every part, tools, `response_format`, every
 * sampling parameter, unknown fields) minus what `openai.ts` lists, plus `include_usage` for
 * streams and the organization, project and beta headers.
 */

import { type Json, parseJsonObject } from "../json-body.js";
import type { AnswerRecord, ParsedCall, Protocol, Usage } from "../protocol.js";
import { assemble, synthesize } from "../sse.js";
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

export function completionsProtocol(kind: "chat" | "completion"): Protocol {
  const path = kind === "chat" ? "/chat/completions" : "/completions";
  return {
    name: kind,
    paths: [path],
    keyHeaders: OPENAI_KEY_HEADERS,
    parse(body: Uint8Array): ParsedCall {
      const json = parseJsonObject(body);
      const stream = json.stream === true;
      return {
        keyMaterial: keyMaterial(json),
        stream,
        model: modelOf(json),
        sampled: isSampled(json),
        choices: typeof json.n === "number" ? json.n : 1,
        details: { includeUsage: stream && includeUsage(json) },
      };
    },
    isCompleteStream: isCompleteOpenAIStream,
    isAnswer: (body) => isOpenAIAnswer(body, "choices"),
    toJson: (record: AnswerRecord) => JSON.stringify(assemble(kind, record.body as string)),
    toStream: (record: AnswerRecord, call: ParsedCall) =>
      synthesize(
        kind,
        parseObject(record.body as string) as Json,
        call.details?.includeUsage === true,
      ),
    usage(format, body): Usage {
      if (format === "sse") return openaiUsage(assemble(kind, body).usage);
      return openaiUsage(parseObject(body)?.usage);
    },
    errorBody: openaiError,
  };
}

export const chatProtocol: Protocol = completionsProtocol("chat");
export const completionProtocol: Protocol = completionsProtocol("completion");
