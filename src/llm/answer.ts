/**
 * What the pipeline answers with, whatever writes it (a node:http response, a Web `Response`):
 * a status, headers and a body that is text, bytes or a stream of bytes.
 */

/** A body that arrives over time. `cancel` stops it (the client left). */
export interface ByteStream extends AsyncIterable<Uint8Array> {
  cancel(reason?: unknown): void;
}

export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string | Uint8Array | ByteStream;
}

export function isByteStream(body: Answer["body"]): body is ByteStream {
  return typeof body === "object" && Symbol.asyncIterator in body;
}

const encoder = new TextEncoder();

/** SSE events (each without its blank line) as a stream, optionally paced. */
export function eventStream(events: string[], delayMs: number): ByteStream {
  let cancelled = false;
  return {
    cancel: () => {
      cancelled = true;
    },
    async *[Symbol.asyncIterator]() {
      for (let i = 0; i < events.length && !cancelled; i++) {
        if (delayMs > 0 && i > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
        yield encoder.encode(`${events[i] as string}\n\n`);
      }
    },
  };
}

/** A Web stream as a ByteStream. */
export function fromWebStream(body: ReadableStream<Uint8Array>): ByteStream {
  const reader = body.getReader();
  return {
    cancel: (reason) => {
      reader.cancel(reason).catch(() => {});
    },
    async *[Symbol.asyncIterator]() {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return;
          yield value;
        }
      } finally {
        reader.releaseLock();
      }
    },
  };
}

/** A ByteStream as a Web stream (for `Response` bodies). */
export function toWebStream(body: ByteStream): ReadableStream<Uint8Array> {
  const iterator = body[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await iterator.next();
        if (next.done === true) controller.close();
        else controller.enqueue(next.value);
      } catch (error) {
        controller.error(error);
      }
    },
    cancel(reason) {
      body.cancel(reason);
      void iterator.return?.();
    },
  });
}
