/**
 * Completing a call of an itemized protocol (embeddings): every item has its own key. Cached
 * items are read, items another request is already fetching are awaited, and the rest go
 * upstream in one request; the answer merges them in the original order.
 *
 * Every wait is bounded and every flight settles on every path: an upstream error, a cut or
 * malformed answer, or one that lacks an item settles the flights of all the items it was asked
 * for (with nothing), so no later request waits on them; such answers are passed on as they
 * are and nothing of them is stored.
 */

import { FlightTable } from "../cache/flight-table.js";
import type { Entry } from "../store/store.js";
import type { Answer } from "./answer.js";
import { cacheStatus, withUpstreamStatus } from "./cache-status.js";
import type { ItemCall, Outcome } from "./call.js";
import { cacheMissAnswer, type LlmPipeline, responseHeaders } from "./pipeline.js";

/** What is stored per item: its result as the upstream encoded it, and its share of tokens. */
interface ItemRecord {
  protocol: string;
  result: unknown;
  tokens: number;
}

type ItemFlight = Promise<ItemRecord | undefined>;

export async function completeItems(pipeline: LlmPipeline, call: ItemCall): Promise<Answer> {
  const { parsed, protocol, keys } = call;
  const request = call.request;
  const replay = call.cacheMode === "replay";
  if (parsed.bypass !== undefined || parsed.items.length === 0) {
    if (replay) {
      const answer = cacheMissAnswer(protocol, undefined, "this request is never cached");
      pipeline.report(call, "miss", answer.status, 0, 0);
      return answer;
    }
    const answer = await pipeline.forward(request);
    pipeline.report(call, "bypass", answer.status, 0, 0);
    answer.headers["x-infercache"] = "bypass";
    answer.headers["cache-status"] = withUpstreamStatus(
      answer.headers["cache-status"],
      cacheStatus({
        kind: "forward",
        fwd: "bypass",
        status: answer.status,
        detail: parsed.bypass ?? "no inputs",
      }),
    );
    return answer;
  }
  const telemetry = pipeline.core.telemetry;
  const table = pipeline.itemFlights as FlightTable<ItemFlight>;
  const noCache =
    call.control.noCache || call.control.acceptAgeMs === 0 || call.cacheMode === "refresh";
  const entries: (Entry | undefined)[] = noCache
    ? keys.map(() => undefined)
    : await Promise.all(keys.map((key) => pipeline.read(key, call)));
  const results: (ItemRecord | undefined)[] = entries.map((entry) =>
    recordOf(entry, protocol.name),
  );
  const joined: Promise<void>[] = [];
  const joinedAt: number[] = [];
  const missing: number[] = [];
  for (const [i, key] of keys.entries()) {
    if (results[i] !== undefined) continue;
    // Replay answers from stored items only, never from another request's upstream call.
    const inFlight = noCache || replay ? undefined : table.get(FlightTable.id(call.scope, key));
    if (inFlight === undefined) {
      missing.push(i);
      continue;
    }
    joinedAt.push(i);
    joined.push(
      inFlight.then((record) => {
        results[i] = record;
      }),
    );
  }
  if (missing.length > 0 && replay) {
    for (const i of missing)
      telemetry.report("miss", keys[i] as string, call.scope, undefined, undefined);
    const first = keys[missing[0] as number] as string;
    const answer = cacheMissAnswer(
      protocol,
      first,
      missing.length === 1
        ? undefined
        : `${missing.length} of ${keys.length} inputs were never recorded, the first`,
    );
    pipeline.report(call, "miss", answer.status, 0, 0);
    return answer;
  }
  if (missing.length > 0 && call.control.onlyIfCached) {
    return {
      status: 504,
      headers: {
        "content-type": "application/json",
        "x-infercache": "miss",
        "cache-status": cacheStatus({ kind: "not-forwarded", detail: "only-if-cached" }),
      },
      body: protocol.errorBody(504, "not in the cache, and the request says only-if-cached"),
    };
  }
  let usage: unknown;
  let upstreamStatus: { status: number; cacheStatus: string | string[] | undefined } | undefined;
  if (missing.length > 0) {
    for (const i of missing)
      telemetry.report("miss", keys[i] as string, call.scope, undefined, undefined);
    let settle!: (records: (ItemRecord | undefined)[]) => void;
    const fetched = new Promise<(ItemRecord | undefined)[]>((resolve) => {
      settle = resolve;
    });
    for (const [j, i] of missing.entries()) {
      const id = FlightTable.id(call.scope, keys[i] as string);
      const one: ItemFlight = fetched.then((records) => records[j]);
      table.start(id, one);
      table.releaseAfter(id, one, one);
    }
    // Whatever happens below, the flights settle: with the records, or with nothing.
    let records: (ItemRecord | undefined)[] = [];
    try {
      const wanted = missing.map((i) => parsed.items[i]);
      const response = await pipeline.upstream(
        pipeline.upstreamRequest(request, parsed.requestFor(wanted), request.signal),
      );
      if (response.status < 200 || response.status >= 300) {
        pipeline.report(call, "miss", response.status, 0, 0);
        return {
          status: response.status,
          headers: forwarded(responseHeaders(response.headers), response, "miss", call),
          body: response.body,
        };
      }
      const chunks: Uint8Array[] = [];
      for await (const chunk of response.body) chunks.push(chunk);
      const bytes = Buffer.concat(chunks);
      const text = bytes.toString("utf8");
      const split = protocol.split(text, wanted.length);
      if (split === undefined) {
        // Not an answer we can take apart (cut, malformed, an error in a 200): pass it on.
        pipeline.report(call, "miss", response.status, 0, 0);
        return {
          status: response.status,
          headers: forwarded(responseHeaders(response.headers), response, "miss", call),
          body: bytes,
        };
      }
      upstreamStatus = { status: response.status, cacheStatus: response.headers["cache-status"] };
      usage = protocol.rawUsage(text);
      const perItem = Math.round(protocol.usage(text).total / missing.length);
      records = split.map((result) => ({ protocol: protocol.name, result, tokens: perItem }));
      for (const [j, i] of missing.entries()) {
        const record = records[j] as ItemRecord;
        results[i] = record;
        void pipeline.write(call, keys[i] as string, record);
      }
    } finally {
      settle(records);
    }
  }
  await Promise.all(joined);
  if (results.some((record) => record === undefined)) {
    // An item the shared upstream call did not bring back: send the request as it is.
    const answer = await pipeline.forward(request);
    pipeline.report(call, "miss", answer.status, 0, 0);
    answer.headers["x-infercache"] = "miss";
    answer.headers["cache-status"] = withUpstreamStatus(
      answer.headers["cache-status"],
      cacheStatus({ kind: "forward", fwd: "uri-miss", status: answer.status }),
    );
    return answer;
  }
  let savedMs = 0;
  let savedTokens = 0;
  let hits = 0;
  for (const [i, entry] of entries.entries()) {
    if (entry === undefined || results[i] === undefined) continue;
    hits++;
    telemetry.report("hit", keys[i] as string, call.scope, entry, undefined);
    savedMs += entry.computeMs ?? 0;
    savedTokens += (results[i] as ItemRecord).tokens;
  }
  for (const i of joinedAt)
    telemetry.report("coalesced", keys[i] as string, call.scope, undefined, undefined);
  const served = hits + joinedAt.length;
  const outcome: Outcome =
    missing.length > 0 ? (served > 0 ? "partial" : "miss") : hits > 0 ? "hit" : "coalesced";
  const body = protocol.merge(
    results.map((record) => (record as ItemRecord).result),
    parsed,
    usage,
  );
  pipeline.report(call, outcome, 200, savedMs, savedTokens);
  const status =
    upstreamStatus === undefined
      ? outcome === "hit"
        ? cacheStatus({ kind: "hit" })
        : cacheStatus({ kind: "forward", fwd: "uri-miss", collapsed: true })
      : withUpstreamStatus(
          upstreamStatus.cacheStatus,
          cacheStatus({
            kind: "forward",
            fwd: outcome === "partial" ? "partial" : noCache ? "request" : "uri-miss",
            status: upstreamStatus.status,
            stored: pipeline.stores(call),
            collapsed: joinedAt.length > 0,
          }),
        );
  return {
    status: 200,
    headers: {
      "content-type": "application/json",
      "x-infercache": outcome,
      "x-infercache-hits": `${served}/${keys.length}`,
      "server-timing": `cache;desc="${outcome}";dur=${(performance.now() - call.started).toFixed(3)}`,
      "cache-status": status,
    },
    body,
  };
}

/** Headers of an answer passed on from the upstream as it came, with what the cache did. */
function forwarded(
  headers: Record<string, string>,
  response: { status: number; headers: Record<string, string | string[] | undefined> },
  outcome: Outcome,
  call: ItemCall,
): Record<string, string> {
  const noCache =
    call.control.noCache || call.control.acceptAgeMs === 0 || call.cacheMode === "refresh";
  headers["x-infercache"] = outcome;
  headers["cache-status"] = withUpstreamStatus(
    response.headers["cache-status"],
    cacheStatus({
      kind: "forward",
      fwd: noCache ? "request" : "uri-miss",
      status: response.status,
    }),
  );
  return headers;
}

function recordOf(entry: Entry | undefined, protocol: string): ItemRecord | undefined {
  const value = entry?.value as Partial<ItemRecord> | undefined;
  return typeof value === "object" && value !== null && value.protocol === protocol
    ? (value as ItemRecord)
    : undefined;
}
