/**
 * Rerank (`POST /rerank`, so `/v1/rerank` and `/v2/rerank`): the shape Cohere defined and Jina,
 * Voyage, vLLM, TEI and LiteLLM follow — `{ model, query, documents, top_n, return_documents,
 * … }` answered with `{ results: [{ index, relevance_score, document? }], … }`.
 *
 * The key: the whole body. Nothing in it is transport or billing, and every field changes the
 * answer (`top_n` how many results, `return_documents` their shape, `max_tokens_per_doc` the
 * scores). A reranker is a classifier, not a sampler: never sampled. Never streamed.
 */

import { parseJsonObject } from "../json-body.js";
import { NO_USAGE, type ParsedCall, type Protocol, type Usage } from "../protocol.js";
import { isAnswerWith, modelOf, OPENAI_KEY_HEADERS, openaiError, parseObject } from "./openai.js";

export const rerankProtocol: Protocol = {
  name: "rerank",
  paths: ["/rerank"],
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
  usage(_format, body): Usage {
    const json = parseObject(body);
    if (json === undefined) return NO_USAGE;
    // Jina, vLLM and TEI: `usage.total_tokens`; Cohere: `meta.billed_units.input_tokens`.
    const usage = json.usage as { total_tokens?: unknown; prompt_tokens?: unknown } | undefined;
    const billed = (json.meta as { billed_units?: { input_tokens?: unknown } } | undefined)
      ?.billed_units;
    const input =
      count(usage?.total_tokens) || count(usage?.prompt_tokens) || count(billed?.input_tokens);
    return { input, output: 0, cachedInput: 0, total: input };
  },
  errorBody: openaiError,
};

function count(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : 0;
}
