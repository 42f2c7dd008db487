/**
 * Records an upstream byte stream while handing it to any number of readers: each reader gets
 * what arrived so far, then follows live (late joiners of an identical streamed request). A
 * reader that leaves does not stop the others; when the last reader has left before the end,
 * `onAbandoned` fires (the upstream call is then aborted and nothing is stored).
 *
 * Bounded: past `maxBytes` the stream is no longer a record (it will not be stored and no one
 * new may join it); it keeps flowing to its readers, and chunks every reader has passed are let
 * go, so a long answer costs the memory of what the slowest reader has not read yet.
 */

import type { ByteStream } from "./answer.js";

interface Reader {
  /** The absolute index of the next chunk this reader takes. */
  index: number;
}

export class StreamRecorder {
  state: "live" | "done" | "failed" | "abandoned" = "live";
  error: unknown;
  bytes = 0;
  /** Past the bound: no record, no new readers. */
  oversize = false;
  /** Chunks from absolute index `#base` on (earlier ones were let go once oversize). */
  #chunks: Uint8Array[] = [];
  #base = 0;
  readonly #readers = new Set<Reader>();
  readonly #waiting = new Set<() => void>();
  readonly #onAbandoned: () => void;
  readonly #maxBytes: number;
  readonly #onOversize: (() => void) | undefined;

  constructor(
    onAbandoned: () => void,
    options: { maxBytes?: number; onOversize?: () => void } = {},
  ) {
    this.#onAbandoned = onAbandoned;
    this.#maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
    this.#onOversize = options.onOversize;
  }

  /** Everything received, as text (once the stream is over; not for an oversize one). */
  text(): string {
    return Buffer.concat(this.#chunks).toString("utf8");
  }

  push(chunk: Uint8Array): void {
    if (this.state !== "live") return;
    this.#chunks.push(chunk);
    this.bytes += chunk.byteLength;
    if (!this.oversize && this.bytes > this.#maxBytes) {
      this.oversize = true;
      this.#onOversize?.();
    }
    if (this.oversize) this.#trim();
    this.#wake();
  }

  end(): void {
    if (this.state !== "live") return;
    this.state = "done";
    this.#wake();
  }

  fail(error: unknown): void {
    if (this.state !== "live") return;
    this.state = "failed";
    this.error = error;
    this.#wake();
  }

  /** Resolves when the stream is over, whatever way. */
  finished(): Promise<void> {
    if (this.state !== "live") return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (this.state !== "live") resolve();
        else this.#waiting.add(check);
      };
      check();
    });
  }

  /** A new reader: what arrived so far, then live. */
  reader(): ByteStream {
    const me: Reader = { index: this.#base };
    this.#readers.add(me);
    let left = false;
    const leave = () => {
      if (left) return;
      left = true;
      this.#readers.delete(me);
      if (this.#readers.size === 0 && this.state === "live") {
        this.state = "abandoned";
        this.#onAbandoned();
        this.#wake();
      }
    };
    const recorder = this;
    return {
      cancel: leave,
      async *[Symbol.asyncIterator]() {
        try {
          for (;;) {
            const at = me.index - recorder.#base;
            if (at < recorder.#chunks.length) {
              me.index++;
              yield recorder.#chunks[at] as Uint8Array;
              continue;
            }
            if (recorder.state === "done") return;
            if (recorder.state !== "live") {
              throw recorder.error ?? new Error("infercache: the upstream stream ended early");
            }
            await new Promise<void>((resolve) => recorder.#waiting.add(resolve));
          }
        } finally {
          leave();
        }
      },
    };
  }

  /** Lets go of the chunks every reader has passed. */
  #trim(): void {
    let lowest = this.#base + this.#chunks.length;
    for (const reader of this.#readers) lowest = Math.min(lowest, reader.index);
    const drop = lowest - this.#base;
    if (drop > 0) {
      this.#chunks = this.#chunks.slice(drop);
      this.#base = lowest;
    }
  }

  #wake(): void {
    const waiting = [...this.#waiting];
    this.#waiting.clear();
    for (const resolve of waiting) resolve();
  }
}
