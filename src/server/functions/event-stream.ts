/**
 * The event stream (`text/event-stream`) of one `serve()` call, on the shared `SseChannel`: one
 * `event:` / `data:` frame (JSON) per `send`, with back-pressure. `send` hands back a promise once
 * a backlog has built up, settled when the client has taken it, so a generator that awaits it
 * runs no faster than its client reads; a client that stopped reading holds the generator, not a
 * growing buffer.
 *
 * The channel has no byte bound and no heartbeat: the producer waits instead of being cut off
 * (one `complete` frame may carry a result of many megabytes, which a bound would refuse), and
 * what is sent without waiting (queue positions, the last event) is bounded by the call itself.
 */

import type { Answer } from "../../llm/answer.js";
import { SseChannel } from "../http/sse.js";

/** Bytes queued for the client past which `send` asks its caller to wait (a socket's default). */
const HIGH_WATER_BYTES = 16 * 1024;

export class EventStream {
  readonly #channel = new SseChannel({
    heartbeatMs: 0,
    maxBufferedBytes: Number.POSITIVE_INFINITY,
  });
  readonly #stop = new AbortController();
  #ended = false;

  /** `client` fires when the client left; the stream's `signal` also fires if it closed first. */
  constructor(client: AbortSignal) {
    const stop = () => {
      if (!this.#ended) this.#stop.abort(client.reason ?? closed());
    };
    if (client.aborted) stop();
    else client.addEventListener("abort", stop, { once: true });
    this.#channel.onClose(() => {
      client.removeEventListener("abort", stop);
      stop();
    });
  }

  /** Fires when nobody is left to read the events: the call should stop. */
  get signal(): AbortSignal {
    return this.#stop.signal;
  }

  /** What the route answers: the headers now, the events as they come. */
  answer(): Answer {
    return {
      status: 200,
      headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
      body: this.#channel.body(),
    };
  }

  /** Queues one event; the promise, if any, settles when the client has taken the backlog or left. */
  send(event: string, data: unknown): Promise<void> | undefined {
    const channel = this.#channel;
    if (!channel.send(JSON.stringify(data), event)) return undefined;
    return channel.bufferedBytes > HIGH_WATER_BYTES ? channel.drained() : undefined;
  }

  /** Ends the stream once the events queued so far are out. */
  end(): void {
    this.#ended = true;
    this.#channel.close();
  }
}

function closed(): Error {
  return new Error("infercache: the event stream closed");
}
