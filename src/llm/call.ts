/**
 * One parsed request, as every step of the pipeline shares it: parsed once, keyed once. A
 * `Call` is what a lookup hands to `complete()` on a miss, so nothing is parsed, hashed or read
 * twice.
 */

import type { CacheMode } from "../base/mode.js";
import type { Entry, Scope } from "../store/store.js";
import type { CacheControl } from "./cache-control.js";
import type { SamplingPolicy } from "./controls.js";
import type { AnswerRecord, LlmRequest, ParsedCall, Protocol } from "./protocol.js";
import type { ItemizedCall, ItemizedProtocol } from "./protocols/embeddings.js";

/** How a call is cached: normally, bypassing the cache, or into a bucket of sampled answers. */
export type CallMode =
  | { kind: "cache" }
  | { kind: "refresh" }
  | { kind: "bypass"; reason: string }
  | { kind: "bucket"; size: number; key?: string };

interface CallBase {
  request: LlmRequest;
  control: CacheControl;
  scope: Scope;
  /** The tenant (a keyed hash of the request's credentials), or `undefined` without any. */
  tenant: string | undefined;
  /** The tags the request asked for (`x-infercache-tags`), checked. */
  tags: readonly string[] | undefined;
  /** `performance.now()` when the request arrived. */
  started: number;
  /** `clock.now()` when the request arrived (compute times). */
  startedAt: number;
  /** A background refresh (stale-while-revalidate): not a client's request, not in the metrics. */
  background?: boolean | undefined;
  /** The cache mode: the request's `x-infercache-mode`, else `withCacheMode`'s, else the pipeline's. */
  cacheMode: CacheMode;
}

/** A call of a protocol whose answer is cached whole (chat, completions, …). */
export interface WholeCall extends CallBase {
  itemized: false;
  protocol: Protocol;
  parsed: ParsedCall;
  /** The store key of the answer (a bucket's key for sampled calls in a bucket). */
  key: string;
  mode: CallMode;
  /** A stale answer within the request's `stale-if-error` window: served if the upstream fails. */
  stale?: { entry: Entry; record: AnswerRecord } | undefined;
}

/** A call of a protocol whose items are cached one by one (embeddings). */
export interface ItemCall extends CallBase {
  itemized: true;
  protocol: ItemizedProtocol;
  parsed: ItemizedCall;
  /** The store key of each item, in request order. */
  keys: string[];
}

export type Call = WholeCall | ItemCall;

/** What one request did, for metrics and dashboards. */
export interface LlmResult {
  /** The protocol's name (`chat`, `completion`, `embeddings`, …). */
  route: string;
  outcome: Outcome;
  status: number;
  stream: boolean;
  /** Time to answer (for streams: to the first byte), ms. */
  durationMs: number;
  /** Recorded upstream time of what was served from cache, ms. */
  savedMs: number;
  /** Tokens of what was served from cache (from the recorded usage). */
  savedTokens: number;
  model: string | undefined;
  /** The store key of a whole answer (the `x-infercache-key` response header). */
  key: string | undefined;
  /** The tenant's id (a keyed hash), so views can show a tenant only its own requests. */
  tenant: string | undefined;
}

/** `stale`: a stored answer past its lifetime (stale-while-revalidate, stale-if-error). */
export type Outcome = "hit" | "miss" | "coalesced" | "bypass" | "partial" | "stale";

export type { SamplingPolicy };
