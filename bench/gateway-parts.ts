/**
 * What a gateway hit's steps cost on their own, in this process (no HTTP): the whole
 * `pipeline.lookup()` of a hit with each store, and the pieces it is made of — the per-request
 * URL, the tenant, the key context and the memo lookup that finds a byte-identical body's key,
 * what that memo saves (parse + canonical hash), the store read, the answer's headers and the
 * bookkeeping (telemetry, metrics, dashboard feed).
 *
 * A few pieces are private to `src/llm/pipeline.ts` (the key context, the memo); they are timed
 * as the same operations written out here, and say so. Timings are medians of batches; GC
 * that a batch triggers is included, but a loop allocates less live state than 50 requests in
 * flight, so these are lower bounds of what the pieces cost under load.
 *
 * Usage: node --expose-gc --max-semi-space-size=64 --import tsx bench/gateway-parts.ts (prints
 * JSON; the larger young generation lets the allocation counts run without a collection)
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PerformanceObserver } from "node:perf_hooks";
import { hashKey } from "../src/key/hash-key.js";
import type { WholeCall } from "../src/llm/call.js";
import type { AnswerRecord, LlmRequest } from "../src/llm/protocol.js";
import { chatProtocol } from "../src/llm/protocols/chat.js";
import { renderRecord } from "../src/llm/render.js";
import { DashboardFeed } from "../src/server/gateway/dashboard/feed.js";
import { Metrics } from "../src/server/gateway/metrics.js";
import { Tenants } from "../src/server/gateway/tenants.js";
import { createGateway } from "../src/server.js";
import { SqliteStore } from "../src/sqlite.js";
import { decodeEntry, encodeEntry } from "../src/store/envelope.js";
import type { Entry } from "../src/store/store.js";
import { startServer } from "./gateway-procs.js";

export interface PartRow {
  name: string;
  us: number;
  /** Heap bytes one call allocates, where measured. */
  bytes?: number;
}

const chatUrl = new URL("http://127.0.0.1/v1/chat/completions");

const PLAIN = JSON.stringify({
  model: "bench",
  messages: [
    { role: "system", content: "You are a benchmark." },
    { role: "user", content: "Which answer is cached?" },
  ],
  temperature: 0,
  max_tokens: 200,
});

/** µs per call: the median of `batches` batches of `n` calls. */
async function time(fn: () => unknown, n = 2000, batches = 15): Promise<number> {
  for (let i = 0; i < n; i++) await fn();
  const per: number[] = [];
  for (let b = 0; b < batches; b++) {
    const started = performance.now();
    for (let i = 0; i < n; i++) await fn();
    per.push(((performance.now() - started) * 1000) / n);
  }
  per.sort((a, b) => a - b);
  return per[Math.floor(per.length / 2)] as number;
}

/**
 * Bytes of heap a call allocates: heap growth over `n` calls between two forced GCs, retried
 * until no GC ran in between (one would hide what it collected). Needs `--expose-gc`.
 */
async function allocated(fn: () => unknown, n = 2000): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return Number.NaN;
  for (let i = 0; i < n; i++) await fn();
  const starts: number[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) starts.push(entry.startTime);
  });
  observer.observe({ entryTypes: ["gc"] });
  try {
    for (let attempt = 0; attempt < 20; attempt++) {
      gc();
      const from = performance.now();
      const before = process.memoryUsage().heapUsed;
      for (let i = 0; i < n; i++) await fn();
      const after = process.memoryUsage().heapUsed;
      const to = performance.now();
      // GC entries arrive asynchronously: wait for them before judging the window.
      await new Promise((resolve) => setTimeout(resolve, 20));
      if (!starts.some((start) => start >= from && start <= to)) return (after - before) / n;
    }
    return Number.NaN;
  } finally {
    observer.disconnect();
  }
}

/** Like `time`, for synchronous work (no `await` per call). */
function timeSync(fn: () => unknown, n = 5000, batches = 15): number {
  let sink: unknown;
  for (let i = 0; i < n; i++) sink = fn();
  const per: number[] = [];
  for (let b = 0; b < batches; b++) {
    const started = performance.now();
    for (let i = 0; i < n; i++) sink = fn();
    per.push(((performance.now() - started) * 1000) / n);
  }
  if (sink === Symbol.for("never")) console.log(sink);
  per.sort((a, b) => a - b);
  return per[Math.floor(per.length / 2)] as number;
}

export async function gatewayParts(): Promise<PartRow[]> {
  const upstream = await startServer("upstream", { kind: "upstream" });
  const dir = mkdtempSync(join(tmpdir(), "infercache-gateway-parts-"));
  const sqliteStore = new SqliteStore({ path: join(dir, "cache.db") });
  const base = `${upstream.url}/v1`;
  const memory = createGateway({ upstream: base });
  const sqlite = createGateway({ upstream: base, store: sqliteStore });
  try {
    // The headers autocannon sends, as node:http hands them over.
    const headers = {
      host: "127.0.0.1:8080",
      connection: "keep-alive",
      "content-type": "application/json",
      authorization: "Bearer bench",
      "content-length": String(Buffer.byteLength(PLAIN)),
    };
    const body = Buffer.from(PLAIN);
    const request = (): LlmRequest => ({
      method: "POST",
      url: new URL(`${base}/chat/completions`),
      headers,
      body,
      signal: undefined,
    });
    const keys: Record<string, string> = {};
    for (const [name, gateway] of [
      ["memory", memory],
      ["sqlite", sqlite],
    ] as const) {
      await gateway.listen();
      for (let i = 0; i < 2; i++) {
        const answer = await gateway.pipeline.handle(request());
        if (typeof answer.body !== "string" && !(answer.body instanceof Uint8Array)) {
          for await (const _ of answer.body) {
          }
        }
        keys[name] = answer.headers["x-infercache-key"] ?? "";
        if (i === 1 && answer.headers["x-infercache"] !== "hit") {
          throw new Error(`the ${name} gateway did not hit: ${answer.headers["x-infercache"]}`);
        }
      }
    }
    const key = keys.memory as string;
    const scope = { namespace: "gateway" };
    const rows: PartRow[] = [];
    const add = (name: string, us: number, bytes?: number) =>
      rows.push({ name, us, ...(bytes !== undefined && { bytes }) });

    const memoryLookup = () => memory.pipeline.lookup(request());
    const sqliteLookup = () => sqlite.pipeline.lookup(request());
    add(
      "pipeline.lookup() of a hit, MemoryStore (all of the below)",
      await time(memoryLookup),
      await allocated(memoryLookup),
    );
    // gateway.ts builds the request with a `get signal()` in an object literal: V8 keeps such
    // objects in dictionary mode, so every read of it on the way is a slow lookup.
    const withGetter = (): LlmRequest => ({
      method: "POST",
      url: new URL(`${base}/chat/completions`),
      headers,
      body,
      get signal() {
        return undefined;
      },
    });
    const getterLookup = () => memory.pipeline.lookup(withGetter());
    add(
      "  the same, the request an object literal with a `get signal()` (as gateway.ts builds it)",
      await time(getterLookup),
      await allocated(getterLookup),
    );
    // A streamed request with a prompt of its own has an SSE record; one with the plain prompt is
    // served from the plain record, converted to SSE on every hit.
    const streamed = (content: string) =>
      Buffer.from(
        JSON.stringify({
          ...JSON.parse(PLAIN),
          messages: [
            { role: "system", content: "You are a benchmark." },
            { role: "user", content },
          ],
          stream: true,
        }),
      );
    const sseBody = streamed("Which streamed answer is cached?");
    const convertedBody = streamed("Which answer is cached?");
    for (let i = 0; i < 2; i++) {
      const answer = await memory.pipeline.handle({ ...request(), body: sseBody });
      if (typeof answer.body !== "string" && !(answer.body instanceof Uint8Array)) {
        for await (const _ of answer.body) {
        }
      }
    }
    const sseLookup = () => memory.pipeline.lookup({ ...request(), body: sseBody });
    const convertedLookup = () => memory.pipeline.lookup({ ...request(), body: convertedBody });
    add(
      "pipeline.lookup() of a streamed hit (an SSE record), MemoryStore",
      await time(sseLookup),
      await allocated(sseLookup),
    );
    add(
      "pipeline.lookup() of a streamed request served from a plain record (converted to SSE)",
      await time(convertedLookup),
      await allocated(convertedLookup),
    );
    add(
      "pipeline.lookup() of a hit, SqliteStore",
      await time(sqliteLookup),
      await allocated(sqliteLookup),
    );

    const url = `${base}/chat/completions`;
    add(
      "new URL(base + path) per request, and its origin/pathname/search (gateway.ts, pipeline.ts)",
      timeSync(() => {
        const u = new URL(url);
        return u.origin.length + u.pathname.length + u.search.length;
      }),
    );
    const tenants = new Tenants("bench-secret");
    add(
      "tenant: Tenants.ofParts() (credential headers, memoised HMAC)",
      timeSync(() => tenants.ofParts(headers, undefined)),
    );
    // pipeline.ts #keyContext and KeyMemo.keyFor + Map.get, written out.
    const tenant = tenants.ofParts(headers, undefined);
    const context = () => {
      const u = new URL(url);
      const path = u.pathname.replace(/\/+$/, "");
      const parts = [
        "r2:",
        "chat",
        `${u.origin}${path.slice(0, path.length - "/chat/completions".length)}`,
        tenant,
      ];
      for (const name of chatProtocol.keyHeaders)
        parts.push((headers as Record<string, string | undefined>)[name] ?? "\u0000");
      parts.push("");
      return JSON.stringify(parts);
    };
    add(
      "key context (as pipeline.ts #keyContext: URL, key headers, JSON.stringify)",
      timeSync(context),
    );
    const memo = new Map<string, unknown>();
    const memoKey = () => `${context()}\u0000${body.toString("latin1")}`;
    memo.set(memoKey(), {});
    const fixedContext = context();
    add(
      "memo lookup (as KeyMemo.keyFor + Map.get: latin1 copy of the body, concat, hash, compare)",
      timeSync(() =>
        memo.get(
          `${fixedContext}\u0000${Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("latin1")}`,
        ),
      ),
    );
    add(
      "what the memo saves: chatProtocol.parse() + hashKey() of the key material",
      timeSync(() => {
        const parsed = chatProtocol.parse(body, "application/json", chatUrl);
        return hashKey(parsed.keyMaterial, { context: fixedContext, root: "request" });
      }, 1000),
    );

    add(
      "store read: MemoryStore get() (async)",
      await time(() => memory.pipeline.store.get(key, scope)),
    );
    const memoryStore = memory.pipeline.store as unknown as {
      getSync(k: string, s: typeof scope): Entry | undefined;
    };
    add(
      "store read: MemoryStore getSync()",
      timeSync(() => memoryStore.getSync(key, scope)),
    );
    add(
      "store read: SqliteStore get() (query + decode)",
      await time(() => sqliteStore.get(keys.sqlite as string, scope)),
    );
    const entry = memoryStore.getSync(key, scope) as Entry;
    const encoded = encodeEntry(entry);
    add(
      "  of which decodeEntry() (checksum + v8.deserialize of the record)",
      timeSync(() => decodeEntry(encoded)),
    );

    const record = entry.value as AnswerRecord;
    const call = {
      key,
      parsed: chatProtocol.parse(body, "application/json", chatUrl),
      protocol: chatProtocol,
      started: performance.now(),
      scope,
    } as unknown as WholeCall;
    add(
      "answer headers: renderRecord() (x-infercache, key, age, server-timing, content-type)",
      timeSync(() => renderRecord(memory.pipeline, call, record, entry, "hit")),
    );
    add(
      "bookkeeping: core telemetry report('hit')",
      timeSync(() => memory.pipeline.core.telemetry.report("hit", key, scope, entry, undefined)),
    );
    const metrics = new Metrics();
    const feed = new DashboardFeed(metrics);
    const result = {
      route: "chat",
      outcome: "hit" as const,
      status: 200,
      stream: false,
      durationMs: 0.05,
      savedMs: 10,
      savedTokens: 220,
      model: "bench",
      key,
      tenant,
    };
    add(
      "bookkeeping: Metrics.record() (label string, counters)",
      timeSync(() => metrics.record(result)),
    );
    add(
      "bookkeeping: DashboardFeed.record() (event object, recent 50)",
      timeSync(() => feed.record(result)),
    );
    return rows;
  } finally {
    await memory.close(100);
    await sqlite.close(100);
    await sqliteStore.close();
    await upstream.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1]?.endsWith("gateway-parts.ts")) {
  process.stdout.write(JSON.stringify(await gatewayParts()));
}
