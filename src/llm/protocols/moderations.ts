/**
 * OpenAI moderations (`POST /moderations`): `{ input, model }` (text, a list of texts, or
 * text and image parts) answered with `{ id, model, results: [{ flagged, categories,
 * category_scores, … }] }`.
 *
 * The key: the whole body (`input` and `model`; unknown fields too). A classifier: never
 * sampled. Never streamed. The `id` of the first answer is replayed with it.
 */

import { parseJsonObject } from "../json-body.js";
import { NO_USAGE, type ParsedCall, type Protocol } from "../protocol.js";
import { isAnswerWith, modelOf, OPENAI_KEY_HEADERS, openaiError } from "./openai.js";

export const moderationsProtocol: Protocol = {
  name: "moderations",
  paths: ["/moderations"],
  keyHeaders: OPENAI_KEY_HEADERS,
  parse(body): ParsedCall {
    const json = parseJsonObject(body);
    return { keyMaterial: json, stream: false, model: modelOf(json), sampled: false };
  },
  // Never streamed: an event stream is not an answer.
  isCompleteStream: () => false,
  isAnswer: (body) => isAnswerWith(body, "results"),
  toJson: (record) => String(record.body),
  toStream: () => [],
  usage: () => NO_USAGE,
  errorBody: openaiError,
};
