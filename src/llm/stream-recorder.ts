/**
 * Records an upstream byte stream while handing it to any number of readers: each reader gets
 * what arrived so far, then follows live (late joiners of an identical streamed request). A
 * reader that leaves does not stop the others; when the last reader has left before the end,
 * `onAbandoned` fires (the upstream call is then aborted and nothing is stored).
 */

import type { ByteStream } from "./answer.js";

export class StreamRecorder {
  readonly chunks: Uint8Array[] = [];
  state: "live" | "done" | "failed" | "abandoned" = "live";
  error: unknown;
  bytes = 0;
  readonly #waiting = new Set<() => void>();
  #readers = 0;
  readonly #onAbandoned: () => void;

  constructor(onAbandoned: () => void) {
    this.#onAbandoned = onAbandoned;
  }

  /** Everything received, as text (once the stream is over). */
  text(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }

  push(chunk: Uint8Array): void {
    if (this.state !== "live") return;
    this.chunks.push(chunk);
    this.bytes += chunk.byteLength;
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
    let index = 0;
    this.#readers++;
    let left = false;
    const leave = () => {
      if (left) return;
      left = true;
      this.#readers--;
      if (this.#readers === 0 && this.state === "live") {
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
            if (index < recorder.chunks.length) {
              yield recorder.chunks[index++] as Uint8Array;
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

  #wake(): void {
    const waiting = [...this.#waiting];
    this.#waiting.clear();
    for (const resolve of waiting) resolve();
  }
}
