/**
 * OpenAI text to speech (`POST /audio/speech`): a JSON request, answered with audio bytes
 * (`mp3`, `opus`, `aac`, `flac`, `wav`, `pcm`) kept as a binary record and replayed byte for
 * byte, or with `stream_format: "sse"` an event stream (`speech.audio.delta` events carrying
 * base64 audio, then `speech.audio.done` with the usage).
 *
 * The key: the whole body (`model`, `input`, `voice`, `instructions`, `response_format`,
 * `speed`, `stream_format`, unknown fields). `stream_format` stays in: the pipeline converts
 * only text answers, so bytes are never served as events or the reverse.
 *
 * Sampled, always: a voice reads the same text differently each time. The sampling policy
 * decides (`cache`, the default, keeps the first reading; `bucket=N` keeps N; `bypass` none).
 */

import { parseJsonObject } from "../json-body.js";
import {
  type AnswerRecord,
  NO_USAGE,
  type ParsedCall,
  type Protocol,
  type Usage,
} from "../protocol.js";
import { isCompleteTypedStream, typedEvents } from "./json-events.js";
import { modelOf, OPENAI_KEY_HEADERS, openaiError } from "./openai.js";
import { tokenUsage } from "./token-usage.js";

const DONE = "speech.audio.done";

export const speechProtocol: Protocol = {
  name: "speech",
  paths: ["/audio/speech"],
  keyHeaders: OPENAI_KEY_HEADERS,
  parse(body): ParsedCall {
    const json = parseJsonObject(body);
    return {
      keyMaterial: json,
      stream: json.stream_format === "sse",
      model: modelOf(json),
      sampled: true,
    };
  },
  isCompleteStream: (text) => isCompleteTypedStream(text, [DONE]),
  // Plain answers are bytes: `record` decides; a JSON body is an error, never an answer.
  isAnswer: () => false,
  record(status, contentType, bytes): AnswerRecord | undefined {
    const type = contentType.toLowerCase();
    if (bytes.byteLength === 0 || type.includes("json") || type.startsWith("text/"))
      return undefined;
    return {
      protocol: "speech",
      format: "binary",
      status,
      contentType,
      // A copy of exactly its bytes (a small body may sit in a shared pool buffer).
      body: new Uint8Array(bytes),
      usage: NO_USAGE,
    };
  },
  // Only event streams are converted, and `stream_format` is in the key: a record of the
  // other kind is never asked for. These keep the interface whole.
  toJson: (record) => String(record.body),
  toStream: () => [],
  usage(format, body): Usage {
    if (format !== "sse") return NO_USAGE;
    return tokenUsage(typedEvents(body)?.findLast((event) => event.type === DONE)?.usage);
  },
  errorBody: openaiError,
};
