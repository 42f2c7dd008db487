/**
 * A server-sent event stream to one client: events queued and written as the socket takes
 * them, a heartbeat comment so proxies keep the connection, and a bound on what may wait for a
 * slow client — past it the client is dropped instead of the server buffering without end.
 * Used by the gateway's dashboard feed and session streams, and by `serve()`.
 */

import type { ByteStream } from "../../llm/answer.js";
import { sseFrame } from "../../llm/sse.js";

export interface SseOptions {
  /** A `: keep-alive` comment this often, ms; 0 for none. @default 15000 */
  heartbeatMs?: number;
  /** Bytes that may wait for a slow client before it is dropped. @default 1 MiB */
  maxBufferedBytes?: number;
}

const encoder = new TextEncoder();

export class SseChannel {
  readonly #queue: Uint8Array[] = [];
  #queued = 0;
  #closed = false;
  #wake: (() => void) | undefined;
  /** Producers waiting for the client to take everything queued (`drained()`). */
  readonly #drained: (() => void)[] = [];
  readonly #heartbeat: NodeJS.Timeout | undefined;
  readonly #maxBuffered: number;
  readonly #onClose = new Set<() => void>();

  constructor(options: SseOptions = {}) {
    this.#maxBuffered = options.maxBufferedBytes ?? 1024 * 1024;
    const every = options.heartbeatMs ?? 15_000;
    if (every > 0) {
      this.#heartbeat = setInterval(() => this.#push(": keep-alive\n\n"), every);
      this.#heartbeat.unref();
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes queued that the client has not taken yet. */
  get bufferedBytes(): number {
    return this.#queued;
  }

  /**
   * Settles once the client has taken everything queued, or the channel closed: a producer that
   * waits for it runs no faster than its client reads, its backlog no more than it sent since.
   */
  drained(): Promise<void> {
    if (this.#queued === 0 || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#drained.push(resolve));
  }

  /** Sends an event; false when the channel is closed (or was just dropped as too slow). */
  send(data: string, event?: string): boolean {
    return this.#push(sseFrame(data, event));
  }

  /** Called once when the channel closes, whichever side closed it. */
  onClose(listener: () => void): void {
    if (this.#closed) listener();
    else this.#onClose.add(listener);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#heartbeat);
    this.#wake?.();
    this.#settleDrained();
    for (const listener of this.#onClose) listener();
    this.#onClose.clear();
  }

  /** The body to write: the events as they come, until the channel closes. */
  body(): ByteStream {
    const channel = this;
    return {
      cancel: () => channel.close(),
      async *[Symbol.asyncIterator]() {
        try {
          for (;;) {
            const next = channel.#queue.shift();
            if (next !== undefined) {
              channel.#queued -= next.byteLength;
              if (channel.#queued === 0) channel.#settleDrained();
              yield next;
              continue;
            }
            if (channel.#closed) return;
            await new Promise<void>((resolve) => {
              channel.#wake = resolve;
            });
            channel.#wake = undefined;
          }
        } finally {
          channel.close();
        }
      },
    };
  }

  #settleDrained(): void {
    for (const resolve of this.#drained.splice(0)) resolve();
  }

  #push(text: string): boolean {
    if (this.#closed) return false;
    const bytes = encoder.encode(text);
    if (this.#queued + bytes.byteLength > this.#maxBuffered) {
      // A client this far behind is not reading: drop it rather than hold its backlog.
      this.close();
      return false;
    }
    this.#queue.push(bytes);
    this.#queued += bytes.byteLength;
    this.#wake?.();
    return true;
  }
}
