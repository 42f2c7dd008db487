/**
 * OpenAI audio transcriptions and translations (`POST /audio/transcriptions`,
 * `/audio/translations`): multipart forms whose answer is JSON (`json`, `verbose_json`,
 * `diarized_json`) or text (`text`, `srt`, `vtt`), and for transcriptions an event stream
 * (`stream=true`: `transcript.text.delta` events, then `transcript.text.done`).
 *
 * The key: the audio by the SHA-256 of its bytes (hashed where they lie in the request buffer),
 * its file name's extension only (OpenAI tells the format by it; the rest of the name cannot
 * change the text), its part headers, and every other field as sent — `model`, `language`,
 * `prompt`, `response_format`, `temperature`, `timestamp_granularities[]`, `include[]`,
 * `chunking_strategy`, unknown ones. `stream` stays out only where a streamed and a plain answer
 * are the same answer (a transcription in `json`, the default): the pipeline converts between
 * them. With any other format `stream` stays in (no conversion exists for subtitles).
 *
 * Sampling: the temperature defaults to 0 for these models, so a request without one, or with
 * 0, is not sampled; a temperature above 0 is, and the sampling policy applies.
 */

import { isUtf8 } from "node:buffer";
import type { Json } from "../json-body.js";
import {
  type AnswerRecord,
  NO_USAGE,
  type ParsedCall,
  type Protocol,
  type Usage,
} from "../protocol.js";
import { dataEvent, isCompleteTypedStream, typedEvents } from "./json-events.js";
import { boundaryOf, fieldValues, formKeyMaterial, notAForm, parseMultipart } from "./multipart.js";
import { OPENAI_KEY_HEADERS, openaiError, parseObject } from "./openai.js";
import { tokenUsage } from "./token-usage.js";

const DONE = "transcript.text.done";

export function audioProtocol(kind: "transcriptions" | "translations"): Protocol {
  return {
    name: kind,
    paths: [`/audio/${kind}`],
    keyHeaders: OPENAI_KEY_HEADERS,
    parse: (body, contentType) => parseAudioForm(kind, body, contentType),
    isCompleteStream: (text) => isCompleteTypedStream(text, [DONE]),
    isAnswer: isTranscript,
    record: textOrJsonRecord(kind, isTranscript),
    toJson(record: AnswerRecord): string {
      const events = typedEvents(record.body as string) ?? [];
      const done = events.findLast((event) => event.type === DONE);
      const answer: Json = {
        text:
          typeof done?.text === "string"
            ? done.text
            : events.map((event) => (typeof event.delta === "string" ? event.delta : "")).join(""),
      };
      if (done?.logprobs !== undefined) answer.logprobs = done.logprobs;
      if (done?.usage !== undefined) answer.usage = done.usage;
      return JSON.stringify(answer);
    },
    toStream(record: AnswerRecord): string[] {
      const answer = parseObject(record.body as string) ?? {};
      const text = typeof answer.text === "string" ? answer.text : "";
      const logprobs = answer.logprobs === undefined ? {} : { logprobs: answer.logprobs };
      const usage = answer.usage === undefined ? {} : { usage: answer.usage };
      return [
        dataEvent({ type: "transcript.text.delta", delta: text, ...logprobs }),
        dataEvent({ type: DONE, text, ...logprobs, ...usage }),
      ];
    },
    usage(format, body): Usage {
      if (format === "json") return tokenUsage(parseObject(body)?.usage);
      if (format === "sse") {
        const done = typedEvents(body)?.findLast((event) => event.type === DONE);
        return tokenUsage(done?.usage);
      }
      return NO_USAGE;
    },
    errorBody: openaiError,
  };
}

export const transcriptionsProtocol: Protocol = audioProtocol("transcriptions");
export const translationsProtocol: Protocol = audioProtocol("translations");

function parseAudioForm(
  kind: "transcriptions" | "translations",
  body: Uint8Array,
  contentType: string | undefined,
): ParsedCall {
  const boundary = boundaryOf(contentType);
  if (boundary === undefined) return notAForm();
  const parts = parseMultipart(body, boundary);
  const formats = fieldValues(parts, "response_format");
  const streams = fieldValues(parts, "stream");
  // A field given twice is read by the upstream one way or another: keep everything in the key.
  const convertible =
    kind === "transcriptions" &&
    formats.length <= 1 &&
    (formats[0] ?? "json") === "json" &&
    streams.length <= 1 &&
    (streams[0] === undefined || streams[0] === "true" || streams[0] === "false");
  return {
    keyMaterial: formKeyMaterial(parts, convertible ? ["stream"] : []),
    stream: streams.length === 1 && streams[0] === "true",
    model: fieldValues(parts, "model").at(-1),
    // Absent, the temperature is 0; a value that is not a number above 0 is left to the upstream.
    sampled: fieldValues(parts, "temperature").some((value) => !(Number(value) <= 0)),
  };
}

function isTranscript(body: string): boolean {
  const json = parseObject(body);
  return json !== undefined && json.error === undefined && typeof json.text === "string";
}

/** The media types of text answers (an HTML page, say, is a proxy's error, not a transcript). */
const TEXT_TYPES = ["text/plain", "text/vtt", "text/srt", "application/x-subrip"] as const;

/**
 * Records of answers that are JSON (kept when `isAnswer` says so) or text (`text`, `srt`, `vtt`:
 * `TEXT_TYPES`, kept as sent). Anything else — an event stream to a plain
 * request, bytes of an unknown type, text that is not UTF-8 — is not stored.
 */
function textOrJsonRecord(
  name: string,
  isAnswer: (body: string) => boolean,
): NonNullable<Protocol["record"]> {
  return (status, contentType, bytes) => {
    const type = contentType.toLowerCase();
    if (type.includes("text/event-stream") || !isUtf8(bytes)) return undefined;
    const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8");
    if (type.includes("json")) {
      if (!isAnswer(text)) return undefined;
      return {
        protocol: name,
        format: "json",
        status,
        contentType,
        body: text,
        usage: tokenUsage(parseObject(text)?.usage),
      };
    }
    if (TEXT_TYPES.some((prefix) => type.startsWith(prefix))) {
      return { protocol: name, format: "text", status, contentType, body: text, usage: NO_USAGE };
    }
    return undefined;
  };
}
