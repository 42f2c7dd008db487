/**
 * OpenAI image generations (`POST /images/generations`, JSON) and edits (`POST /images/edits`,
 * a multipart form with `image` / `image[]` files and an optional `mask`), plain or streamed
 * (`stream: true`: `image_generation.partial_image` / `image_edit.partial_image` events, then
 * one `….completed` event per image).
 *
 * The key: every field but `user` (an end-user id for abuse monitoring) — the prompt, model,
 * size, quality, `n`, formats, `partial_images`, unknown fields; for edits every image and the
 * mask by the SHA-256 of their bytes (in the order sent) and their file names' extensions.
 * `stream` stays out when a streamed and a plain answer are the same answer: one image
 * (`n` absent or 1) and no partial images; then the pipeline converts between them. Otherwise
 * it stays in.
 *
 * What is stored: answers whose images are bytes (`b64_json`). An answer with image URLs is
 * passed on and not stored: OpenAI's image URLs expire after an hour, and a cached dead link is
 * a wrong answer. Ask for `response_format: "b64_json"` to cache DALL·E answers (GPT image
 * models always answer with bytes).
 *
 * Sampled, always: the same prompt draws another image each time. The sampling policy decides
 * (`cache`, the default, keeps the first; `bucket=N` keeps N; `bypass` none); `n > 1` follows
 * the pipeline's `cacheMultipleChoices` rule, as chat's `n` does.
 */

import { type Json, parseJsonObject, without } from "../json-body.js";
import type { AnswerRecord, ParsedCall, Protocol, Usage } from "../protocol.js";
import { dataEvent, isCompleteTypedStream, typedEvents } from "./json-events.js";
import { boundaryOf, fieldValues, formKeyMaterial, notAForm, parseMultipart } from "./multipart.js";
import { modelOf, OPENAI_KEY_HEADERS, openaiError, parseObject } from "./openai.js";
import { tokenUsage } from "./token-usage.js";

/** Fields that never change the image (see the module header). */
const OUT_OF_KEY = ["user"] as const;

function imagesProtocol(kind: "generations" | "edits"): Protocol {
  const event = kind === "generations" ? "image_generation" : "image_edit";
  const completed = `${event}.completed`;
  return {
    name: kind === "generations" ? "images" : "image-edits",
    paths: [`/images/${kind}`],
    keyHeaders: OPENAI_KEY_HEADERS,
    parse: (body, contentType) =>
      kind === "generations" ? parseGeneration(body) : parseEdit(body, contentType),
    isCompleteStream: (text) => isCompleteTypedStream(text, [completed]),
    isAnswer: isImagesAnswer,
    toJson(record: AnswerRecord): string {
      const done = (typedEvents(record.body as string) ?? []).filter((e) => e.type === completed);
      const first = done[0] ?? {};
      const answer: Json = {
        created: first.created_at,
        data: done.map((e) => ({ b64_json: e.b64_json })),
      };
      for (const field of ["background", "output_format", "quality", "size"]) {
        if (first[field] !== undefined) answer[field] = first[field];
      }
      const usage = done.at(-1)?.usage;
      if (usage !== undefined) answer.usage = usage;
      return JSON.stringify(answer);
    },
    toStream(record: AnswerRecord): string[] {
      const answer = parseObject(record.body as string) ?? {};
      const data = Array.isArray(answer.data) ? (answer.data as Json[]) : [];
      const shared: Json = { created_at: answer.created };
      for (const field of ["background", "output_format", "quality", "size"]) {
        if (answer[field] !== undefined) shared[field] = answer[field];
      }
      return data.map((image, i) =>
        dataEvent({
          type: completed,
          b64_json: image.b64_json,
          ...shared,
          ...(i === data.length - 1 && answer.usage !== undefined && { usage: answer.usage }),
        }),
      );
    },
    usage(format, body): Usage {
      if (format === "json") return tokenUsage(parseObject(body)?.usage);
      if (format === "sse") {
        return tokenUsage(typedEvents(body)?.findLast((e) => e.type === completed)?.usage);
      }
      return tokenUsage(undefined);
    },
    errorBody: openaiError,
  };
}

export const imageGenerationsProtocol: Protocol = imagesProtocol("generations");
export const imageEditsProtocol: Protocol = imagesProtocol("edits");

function parseGeneration(body: Uint8Array): ParsedCall {
  const json = parseJsonObject(body);
  const convertible =
    (json.n === undefined || json.n === 1) &&
    (json.partial_images === undefined || json.partial_images === 0) &&
    (json.stream === undefined || typeof json.stream === "boolean");
  return {
    keyMaterial: without(json, convertible ? [...OUT_OF_KEY, "stream"] : OUT_OF_KEY),
    stream: json.stream === true,
    model: modelOf(json),
    sampled: true,
    choices: typeof json.n === "number" ? json.n : 1,
  };
}

function parseEdit(body: Uint8Array, contentType: string | undefined): ParsedCall {
  const boundary = boundaryOf(contentType);
  if (boundary === undefined) return notAForm();
  const parts = parseMultipart(body, boundary);
  const single = (name: string, ...allowed: (string | undefined)[]) => {
    const values = fieldValues(parts, name);
    return values.length <= 1 && allowed.includes(values[0]);
  };
  const convertible =
    single("n", undefined, "1") &&
    single("partial_images", undefined, "0") &&
    single("stream", undefined, "true", "false");
  const streams = fieldValues(parts, "stream");
  const n = Number(fieldValues(parts, "n").at(-1) ?? "1");
  return {
    keyMaterial: formKeyMaterial(parts, convertible ? [...OUT_OF_KEY, "stream"] : OUT_OF_KEY),
    stream: streams.length === 1 && streams[0] === "true",
    model: fieldValues(parts, "model").at(-1),
    sampled: true,
    choices: Number.isFinite(n) ? n : 1,
  };
}

/** An answer whose images are all bytes (see the module header on URLs). */
function isImagesAnswer(body: string): boolean {
  const json = parseObject(body);
  if (json === undefined || json.error !== undefined || !Array.isArray(json.data)) return false;
  return (json.data as unknown[]).every(
    (image) =>
      typeof image === "object" &&
      image !== null &&
      typeof (image as Json).b64_json === "string" &&
      (image as Json).url === undefined,
  );
}
