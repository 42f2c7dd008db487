/**
 * Completing a miss of a protocol whose answers are cached whole: join an identical call in
 * flight (in this process, or — on a store that coordinates processes — in another), or call
 * the upstream, hand its answer to the client as it arrives, record it, and store it only when
 * it is an answer: a success status, a body the protocol recognises as an answer, and for
 * streams the protocol's terminator with no error event.
 *
 * A streamed call is shared by every identical request: each reads the recording from its start
 * and then follows live. A reader that leaves does not stop the others; the upstream call is
 * aborted, and nothing is stored, only when the last one has left. Every flight settles on every
 * path, so nothing waits on a call that failed.
 */

import { traceStore } from "../base/tracing.js";
import { FlightTable } from "../cache/flight-table.js";
import type { Entry, FlightLease } from "../store/store.js";
import type { Answer, ByteStream } from "./answer.js";
import { cacheStatus, withUpstreamStatus } from "./cache-status.js";
import type { WholeCall } from "./call.js";
import { cacheMissAnswer, type LlmPipeline, recordOf, responseHeaders } from "./pipeline.js";
import { type AnswerRecord, NO_USAGE } from "./protocol.js";
import { cacheHeaders } from "./render.js";
import { StreamRecorder } from "./stream-recorder.js";
import type { UpstreamResponse } from "./upstream.js";

/** An upstream call in flight that identical requests join. */
export type Pending = (
  | { format: "sse"; recorder: StreamRecorder; response: Promise<UpstreamResponse> }
  | { format: "json"; record: Promise<AnswerRecord | undefined>; hold: ClientHold }
) & {
  /** The cross-process lock of a shared store, released when the flight settles. */
  lease?: FlightLease | undefined;
};

export class Completion {
  readonly #pipeline: LlmPipeline;

  constructor(pipeline: LlmPipeline) {
    this.#pipeline = pipeline;
  }

  async complete(call: WholeCall): Promise<Answer> {
    // A lookup never hands a replay call over; a caller that does gets the miss, not the upstream.
    if (call.cacheMode === "replay")
      return cacheMissAnswer(call.protocol, call.key || undefined, undefined);
    const mode = call.mode;
    if (mode.kind === "bypass") return this.#bypass(call);
    if (mode.kind === "bucket") return this.#fetch(call, mode.key ?? call.key, false, undefined);
    let lease: FlightLease | undefined;
    if (mode.kind === "cache") {
      const pending = this.#pipeline.core.flights.get(FlightTable.id(call.scope, call.key));
      if (pending !== undefined) return this.#join(call, pending);
      if (this.#pipeline.store.flights !== undefined) {
        // A store shared by processes: one of them calls the upstream, the others wait for it.
        const shared = await this.#shared(call);
        if (shared.record !== undefined) {
          const answer = this.#pipeline.render(call, shared.record, shared.entry, "coalesced");
          if (answer !== undefined) {
            this.#pipeline.core.telemetry.report(
              "coalesced",
              call.key,
              call.scope,
              undefined,
              undefined,
            );
            return answer;
          }
        }
        lease = shared.lease;
      }
    }
    return this.#fetch(call, call.key, true, lease);
  }

  /**
   * Cross-process single-flight: the lease when this process should call the upstream, or the
   * record another process stored while this one waited (bounded by the store's wait). Lock
   * failures fall back to calling the upstream, like every store failure.
   */
  async #shared(
    call: WholeCall,
  ): Promise<{ record?: AnswerRecord; entry?: Entry; lease?: FlightLease }> {
    const pipeline = this.#pipeline;
    const coordinator = pipeline.store.flights;
    if (coordinator === undefined) return {};
    try {
      const lease = await traceStore(pipeline.store, "lock", call.scope.namespace, () =>
        coordinator.acquire(call.key, call.scope),
      );
      if (lease !== undefined) {
        // Another process may have stored the answer and let go of the lock between this
        // request's read and its acquire: read once more before calling the upstream again.
        const entry = await pipeline.read(call.key, call);
        const record = entry === undefined ? undefined : recordOf(entry, call.protocol);
        if (record === undefined) return { lease };
        pipeline.core.releaseAfter(lease, undefined);
        return { record, entry: entry as Entry };
      }
      await traceStore(pipeline.store, "wait", call.scope.namespace, () =>
        coordinator.waitFor(call.key, call.scope, pipeline.core.waitTimeoutMs),
      );
    } catch (error) {
      pipeline.core.telemetry.fail("lock", error);
      return {};
    }
    const entry = await pipeline.read(call.key, call);
    const record = entry === undefined ? undefined : recordOf(entry, call.protocol);
    return record === undefined ? {} : { record, entry: entry as Entry };
  }

  async #bypass(call: WholeCall): Promise<Answer> {
    const pipeline = this.#pipeline;
    const request = call.request;
    const response = await pipeline.upstream(
      pipeline.upstreamRequest(request, request.body, request.signal),
    );
    pipeline.report(call, "bypass", response.status, 0, 0);
    const headers = { ...responseHeaders(response.headers), ...cacheHeaders(call, "bypass") };
    headers["cache-status"] = withUpstreamStatus(
      response.headers["cache-status"],
      cacheStatus({
        kind: "forward",
        fwd: "bypass",
        status: response.status,
        detail: call.mode.kind === "bypass" ? call.mode.reason : undefined,
      }),
    );
    return { status: response.status, headers, body: response.body };
  }

  /** Calls the upstream for a miss; with `coalesce`, identical calls may join it. */
  async #fetch(
    call: WholeCall,
    key: string,
    coalesce: boolean,
    lease: FlightLease | undefined,
  ): Promise<Answer> {
    const pipeline = this.#pipeline;
    const core = pipeline.core;
    core.telemetry.report("miss", key, call.scope, undefined, undefined);
    const controller = new AbortController();
    const request = call.request;
    // Not the client's signal: one client leaving must not cut the call for those who joined.
    const upstream = pipeline.upstream(
      pipeline.upstreamRequest(request, request.body, controller.signal),
    );
    const id = FlightTable.id(call.scope, key);
    if (call.parsed.stream) {
      let pending: Pending | undefined;
      const recorder = new StreamRecorder(
        () => controller.abort(new Error("infercache: every reader left")),
        {
          maxBytes: pipeline.maxRecordBytes,
          // Too big to be a record: no one new may join it (they could not replay its start).
          onOversize: () => {
            if (pending !== undefined) pipeline.settle(id, pending);
          },
        },
      );
      pending = { format: "sse", recorder, response: upstream, lease };
      if (coalesce) core.flights.start(id, pending);
      let response: UpstreamResponse;
      try {
        response = await upstream;
      } catch (error) {
        recorder.fail(error);
        pipeline.settle(id, pending);
        throw error;
      }
      if (!isOk(response) || !isEventStream(response)) {
        recorder.fail(new Error(`infercache: the upstream answered ${response.status}`));
        pipeline.settle(id, pending);
        return this.#plainMiss(call, key, response, undefined);
      }
      // Never an unhandled rejection: whatever the upstream sent, the process must not fall.
      this.#pump(call, key, id, pending, response, recorder).catch((error: unknown) =>
        pipeline.core.telemetry.fail("record", error),
      );
      pipeline.report(call, "miss", response.status, 0, 0);
      return {
        status: response.status,
        headers: missHeaders(call, response, false),
        body: recorder.reader(),
      };
    }
    const hold = new ClientHold(controller);
    hold.add(request.signal);
    let settleRecord!: (record: AnswerRecord | undefined) => void;
    const record = new Promise<AnswerRecord | undefined>((resolve) => {
      settleRecord = resolve;
    });
    const pending: Pending = { format: "json", record, hold, lease };
    if (coalesce) core.flights.start(id, pending);
    let response: UpstreamResponse;
    try {
      response = await upstream;
    } catch (error) {
      settleRecord(undefined);
      pipeline.settle(id, pending);
      throw error;
    }
    return this.#plainMiss(call, key, response, { id, pending, settleRecord });
  }

  /**
   * A plain answer (or a stream request the upstream answered plainly): read it whole, store it
   * if it is an answer, hand the bytes on as received.
   */
  async #plainMiss(
    call: WholeCall,
    key: string,
    response: UpstreamResponse,
    flight:
      | { id: string; pending: Pending; settleRecord: (record: AnswerRecord | undefined) => void }
      | undefined,
  ): Promise<Answer> {
    const pipeline = this.#pipeline;
    const headers = missHeaders(call, response, false);
    if (!isOk(response)) {
      // Errors go to the client as they are, never stored.
      flight?.settleRecord(undefined);
      if (flight !== undefined) pipeline.settle(flight.id, flight.pending);
      pipeline.report(call, "miss", response.status, 0, 0);
      return { status: response.status, headers, body: response.body };
    }
    let read: Buffer | ByteStream;
    try {
      read = await readUpTo(response.body, pipeline.maxRecordBytes);
    } catch (error) {
      flight?.settleRecord(undefined);
      if (flight !== undefined) pipeline.settle(flight.id, flight.pending);
      throw error;
    }
    if (!Buffer.isBuffer(read)) {
      // Larger than any record may be: passed on as it streams, never stored.
      flight?.settleRecord(undefined);
      if (flight !== undefined) pipeline.settle(flight.id, flight.pending);
      pipeline.report(call, "miss", response.status, 0, 0);
      return { status: response.status, headers, body: read };
    }
    const bytes = read;
    const protocol = call.protocol;
    const contentType = header(response, "content-type") ?? "application/json";
    const record: AnswerRecord | undefined = forbidsStoring(response)
      ? undefined
      : protocol.record !== undefined
        ? protocol.record(response.status, contentType, bytes)
        : jsonRecord(protocol, response.status, contentType, bytes.toString("utf8"));
    flight?.settleRecord(record);
    if (record !== undefined && pipeline.stores(call)) {
      headers["cache-status"] = missHeaders(call, response, true)["cache-status"] as string;
    }
    if (record === undefined) {
      if (flight !== undefined) pipeline.settle(flight.id, flight.pending);
    } else {
      const written = pipeline.write(call, key, record);
      if (flight !== undefined) {
        const { id, pending } = flight;
        void written.finally(() => pipeline.settle(id, pending));
      }
    }
    pipeline.report(call, "miss", response.status, 0, 0);
    headers["server-timing"] = `upstream;dur=${(performance.now() - call.started).toFixed(1)}`;
    return { status: response.status, headers, body: bytes };
  }

  /** Pumps a streamed miss into the recorder; stores it once it is a whole answer. */
  async #pump(
    call: WholeCall,
    key: string,
    id: string,
    pending: Pending,
    response: UpstreamResponse,
    recorder: StreamRecorder,
  ): Promise<void> {
    const pipeline = this.#pipeline;
    const body = response.body;
    try {
      for await (const chunk of body) {
        if (recorder.state === "abandoned") break;
        recorder.push(chunk);
      }
      recorder.end();
    } catch (error) {
      recorder.fail(error);
    }
    if (recorder.state === "abandoned") body.cancel();
    try {
      if (recorder.state === "done" && !recorder.oversize && !forbidsStoring(response)) {
        const text = recorder.text();
        if (call.protocol.isCompleteStream(text)) {
          await pipeline.write(call, key, {
            protocol: call.protocol.name,
            format: "sse",
            status: 200,
            contentType: "text/event-stream",
            body: text,
            usage: safeUsage(call.protocol, "sse", text),
          });
        }
      }
    } finally {
      pipeline.settle(id, pending);
    }
  }

  /** An identical request is in flight: share its answer. */
  async #join(call: WholeCall, pending: Pending): Promise<Answer> {
    const pipeline = this.#pipeline;
    pipeline.core.telemetry.report("coalesced", call.key, call.scope, undefined, undefined);
    if (pending.format === "sse") {
      const recorder = pending.recorder;
      if (call.parsed.stream) {
        const response = await pending.response.catch(() => undefined);
        if (
          response !== undefined &&
          isOk(response) &&
          recorder.state !== "failed" &&
          recorder.state !== "abandoned" &&
          !recorder.oversize
        ) {
          pipeline.report(call, "coalesced", response.status, 0, 0);
          const headers = {
            ...responseHeaders(response.headers),
            ...cacheHeaders(call, "coalesced"),
          };
          headers["cache-status"] = withUpstreamStatus(
            response.headers["cache-status"],
            cacheStatus({ kind: "forward", fwd: "uri-miss", collapsed: true }),
          );
          return { status: response.status, headers, body: recorder.reader() };
        }
        return this.#fetch(call, call.key, false, undefined);
      }
      await recorder.finished();
      const text = recorder.state === "done" ? recorder.text() : "";
      if (recorder.state !== "done" || !call.protocol.isCompleteStream(text)) {
        return this.#fetch(call, call.key, false, undefined);
      }
      const converted = pipeline.render(
        call,
        {
          protocol: call.protocol.name,
          format: "sse",
          status: 200,
          contentType: "text/event-stream",
          body: text,
          usage: safeUsage(call.protocol, "sse", text),
        },
        undefined,
        "coalesced",
      );
      return converted ?? this.#fetch(call, call.key, false, undefined);
    }
    pending.hold.add(call.request.signal);
    const record = await pending.record;
    const answer =
      record === undefined ? undefined : pipeline.render(call, record, undefined, "coalesced");
    return answer ?? this.#fetch(call, call.key, false, undefined);
  }
}

/** The headers of an answer that went upstream: the upstream's, ours, and `Cache-Status`. */
function missHeaders(
  call: WholeCall,
  response: UpstreamResponse,
  stored: boolean,
): Record<string, string> {
  const headers = { ...responseHeaders(response.headers), ...cacheHeaders(call, "miss") };
  const mode = call.mode;
  // Forwarded because the request said so (no-cache, max-age=0, mode refresh), or a plain miss.
  const asked =
    mode.kind === "refresh" ||
    (mode.kind === "bucket" && (call.control.noCache || call.cacheMode === "refresh"));
  headers["cache-status"] = withUpstreamStatus(
    response.headers["cache-status"],
    cacheStatus({
      kind: "forward",
      fwd: asked ? "request" : "uri-miss",
      status: response.status,
      stored,
    }),
  );
  return headers;
}

/**
 * Keeps a plain upstream call alive while any client still waits for it: each client's signal
 * leaving counts down, and the call is aborted when none is left. A client without a signal
 * cannot leave, so it holds the call to the end.
 */
class ClientHold {
  #clients = 0;
  #forever = false;
  readonly #controller: AbortController;

  constructor(controller: AbortController) {
    this.#controller = controller;
  }

  add(signal: AbortSignal | undefined): void {
    if (signal === undefined) {
      this.#forever = true;
      return;
    }
    if (signal.aborted) return;
    this.#clients++;
    signal.addEventListener(
      "abort",
      () => {
        this.#clients--;
        if (this.#clients === 0 && !this.#forever) {
          this.#controller.abort(new Error("infercache: every client left"));
        }
      },
      { once: true },
    );
  }
}

function jsonRecord(
  protocol: WholeCall["protocol"],
  status: number,
  contentType: string,
  text: string,
): AnswerRecord | undefined {
  if (!protocol.isAnswer(text)) return undefined;
  return {
    protocol: protocol.name,
    format: "json",
    status,
    contentType,
    body: text,
    usage: safeUsage(protocol, "json", text),
  };
}

/** A protocol's usage of an answer, or none when the answer's usage cannot be read. */
function safeUsage(
  protocol: WholeCall["protocol"],
  format: AnswerRecord["format"],
  text: string,
): AnswerRecord["usage"] {
  try {
    return protocol.usage(format, text);
  } catch {
    return NO_USAGE;
  }
}

/** The upstream said its answer must not be kept by a shared cache (RFC 9111 §5.2.2). */
function forbidsStoring(response: UpstreamResponse): boolean {
  const control = header(response, "cache-control")?.toLowerCase();
  return control !== undefined && /(^|[,\s])(no-store|private)([,\s=]|$)/.test(control);
}

function isOk(response: UpstreamResponse): boolean {
  return response.status >= 200 && response.status < 300;
}

function header(response: UpstreamResponse, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function isEventStream(response: UpstreamResponse): boolean {
  return (header(response, "content-type") ?? "").includes("text/event-stream");
}

/**
 * The whole body when it is at most `limit` bytes; else a stream of what was read and the rest,
 * so a body too large to record is passed on without being held.
 */
export async function readUpTo(body: ByteStream, limit: number): Promise<Buffer | ByteStream> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const iterator = body[Symbol.asyncIterator]();
  for (;;) {
    const next = await iterator.next();
    if (next.done === true) return Buffer.concat(chunks, size);
    chunks.push(next.value);
    size += next.value.byteLength;
    if (size > limit) break;
  }
  return {
    cancel: (reason) => body.cancel(reason),
    async *[Symbol.asyncIterator]() {
      yield* chunks.splice(0);
      for (;;) {
        const next = await iterator.next();
        if (next.done === true) return;
        yield next.value;
      }
    },
  };
}
