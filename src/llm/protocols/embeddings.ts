/**
 * OpenAI Embeddings (`POST /embeddings`), cached per input: each input of a request has its own
 * key (the model, the input, and every other field that changes the vector or its encoding,
 * such as `dimensions` and `encoding_format`), so a request whose inputs are partly cached sends
 * only the missing ones upstream and answers with one merged response in the original order.
 *
 * The model is keyed as given, whatever its type: a request with `"model": 1` never shares a key
 * with one that has no model (both used to key as `""`).
 */

import { type Json, parseJsonBody, without } from "../json-body.js";
import type { Protocol, Usage } from "../protocol.js";
import { OPENAI_KEY_HEADERS, OUT_OF_KEY, openaiError, openaiUsage, parseObject } from "./openai.js";

/** A request of an itemized protocol: its inputs, each keyed and fetched on its own. */
export interface ItemizedCall {
  items: unknown[];
  /** The model, for metrics (the key uses the body's `model` as given). */
  model: string | undefined;
  /** What forms the key of one item (beyond route, key headers and query). */
  keyMaterialOf(item: unknown): unknown;
  /** The body to send upstream for some of the items, in this order. */
  requestFor(items: unknown[]): string;
  /** A reason to send the request upstream as it is, uncached. */
  bypass?: string | undefined;
}

export interface ItemizedProtocol
  extends Pick<Protocol, "name" | "paths" | "keyHeaders" | "errorBody"> {
  readonly itemized: true;
  parse(body: Uint8Array, contentType: string | undefined): ItemizedCall;
  /**
   * Each item's result from an upstream answer for `count` items, in request order, or
   * `undefined` when the answer is not a complete, well-formed one (then nothing is stored).
   */
  split(body: string, count: number): unknown[] | undefined;
  /** The merged answer for the whole request. */
  merge(results: unknown[], call: ItemizedCall, usage: unknown): string;
  usage(body: string): Usage;
  /** The upstream's usage object of an answer (passed on in the merged answer). */
  rawUsage(body: string): unknown;
}

/** Inputs one request may have to be cached per input (OpenAI's own limit). */
export const MAX_INPUTS = 2048;

export const embeddingsProtocol: ItemizedProtocol = {
  name: "embeddings",
  itemized: true,
  paths: ["/embeddings"],
  keyHeaders: OPENAI_KEY_HEADERS,
  errorBody: openaiError,
  parse(body: Uint8Array): ItemizedCall {
    const { json, numbers } = parseJsonBody(body);
    const input = json.input;
    const single =
      typeof input === "string" ||
      (Array.isArray(input) && input.length > 0 && input.every((item) => typeof item === "number"));
    const options = without(json, ["input", ...OUT_OF_KEY]);
    // What the cache cannot split goes upstream as it is: the upstream's error says it best.
    // So does a request with more inputs than the API takes (OpenAI's limit is 2,048): keying,
    // reading and joining each of a million inputs would hold the event loop for seconds.
    const splittable =
      single || (Array.isArray(input) && input.length > 0 && input.length <= MAX_INPUTS);
    const items = single ? [input] : splittable ? (input as unknown[]) : [];
    return {
      items,
      bypass: splittable ? undefined : "an input the cache cannot split",
      model: typeof json.model === "string" ? json.model : undefined,
      // Number literals JSON.parse cannot keep apart (1.0 vs 1) are keyed as written, in a
      // Map: JSON never parses into one, so no body can spell this wrapper.
      keyMaterialOf: (item) =>
        numbers === undefined
          ? { ...options, input: item }
          : new Map<string, unknown>([
              ["body", { ...options, input: item }],
              ["numbers", numbers],
            ]),
      requestFor: (subset) =>
        JSON.stringify({ ...json, input: single && subset.length === 1 ? subset[0] : subset }),
    };
  },
  split(body: string, count: number): unknown[] | undefined {
    const json = parseObject(body);
    if (json === undefined || json.error !== undefined || !Array.isArray(json.data))
      return undefined;
    const results: unknown[] = new Array(count);
    let found = 0;
    for (const item of json.data as Json[]) {
      const index = item?.index;
      if (typeof index !== "number" || !Number.isInteger(index) || index < 0 || index >= count)
        return undefined;
      if (results[index] !== undefined || item.embedding === undefined) return undefined;
      results[index] = item.embedding;
      found++;
    }
    return found === count ? results : undefined;
  },
  merge(results: unknown[], call: ItemizedCall, usage: unknown): string {
    return JSON.stringify({
      object: "list",
      data: results.map((embedding, index) => ({ object: "embedding", index, embedding })),
      model: call.model ?? "",
      usage: usage ?? { prompt_tokens: 0, total_tokens: 0 },
    });
  },
  usage: (body) => openaiUsage(parseObject(body)?.usage),
  rawUsage: (body) => parseObject(body)?.usage,
};
