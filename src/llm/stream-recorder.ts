/**
 * Records an upstream byte stream while handing it to any number of readers: each reader gets
 * what arrived so far, then follows live (late joiners of an identical streamed request). When
 * every reader has cancelled before the end, `onAbandoned` fires (the upstream request is then
 * aborted and nothing is cached).
 */

export class StreamRecorder {
  readonly chunks: Uint8Array[] = [];
  state: "live" | "done" | "failed" | "abandoned" = "live";
  error: unknown;
  #text = "";
  readonly #decoder = new TextDecoder();
  readonly #waiting = new Set<() => void>();
  #readers = 0;
  readonly #onAbandoned: () => void;

  constructor(onAbandoned: () => void) {
    this.#onAbandoned = onAbandoned;
  }

  /** Everything received, as text. */
  get text(): string {
    return this.#text;
  }

  push(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.#text += this.#decoder.decode(chunk, { stream: true });
    this.#wake();
  }

  end(): void {
    if (this.state !== "live") return;
    this.#text += this.#decoder.decode();
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

  /** A new reader: replay, then live. */
  reader(): ReadableStream<Uint8Array> {
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
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        for (;;) {
          if (index < this.chunks.length) {
            controller.enqueue(this.chunks[index++] as Uint8Array);
            return;
          }
          if (this.state === "done") {
            leave();
            controller.close();
            return;
          }
          if (this.state === "failed" || this.state === "abandoned") {
            leave();
            controller.error(
              this.error ?? new Error("infercache: the upstream stream ended early"),
            );
            return;
          }
          await new Promise<void>((resolve) => this.#waiting.add(resolve));
        }
      },
      cancel: () => leave(),
    });
  }

  #wake(): void {
    const waiting = [...this.#waiting];
    this.#waiting.clear();
    for (const resolve of waiting) resolve();
  }
}
