/**
 * Reads a served generator for one call: every value to the call's event stream (when it has
 * one), and its end — or, when the client leaves, its closing. Works over sync and async
 * generators, cached or not.
 */

import type { EventStream } from "./event-stream.js";
import { encode } from "./wire.js";

/** How many values a generator may yield between two turns of the event loop: one that never
 * waits would otherwise keep the server from ever seeing that its client left. */
const YIELDS_PER_TURN = 16;

/**
 * Reads a served generator to its end, each value to `events` when streaming, and returns its
 * last value. When `signal` fires (the client left) it stops and closes the generator with
 * `return()`: its `finally` runs, and a cached generator's consumer leaves its flight (which
 * stops the source once no consumer is left).
 */
export async function readGenerator(
  iterator: Iterator<unknown> | AsyncIterator<unknown>,
  events: EventStream | undefined,
  signal: AbortSignal,
): Promise<unknown> {
  const isAsync = Symbol.asyncIterator in iterator;
  let last: unknown;
  let finished = false;
  try {
    for (let n = 1; ; n++) {
      signal.throwIfAborted();
      const next = iterator.next();
      const step = isAsync
        ? await untilAborted(next as Promise<IteratorResult<unknown>>, signal)
        : (next as IteratorResult<unknown>);
      if (step.done) {
        finished = true;
        return last;
      }
      // As `for await` does, a sync generator's yielded promise is awaited.
      last = isAsync ? step.value : await step.value;
      const room = events?.send("yield", encode(last));
      if (room !== undefined) await room;
      if (n % YIELDS_PER_TURN === 0) await new Promise((resolve) => setImmediate(resolve));
    }
  } finally {
    if (!finished) close(iterator);
  }
}

function close(iterator: Iterator<unknown> | AsyncIterator<unknown>): void {
  try {
    const closing = iterator.return?.();
    if (closing instanceof Promise) closing.catch(() => {});
  } catch {
    // The generator's own cleanup failed while it was dropped: nobody is left to tell.
  }
}

/** `promise`, or a rejection with the signal's reason as soon as it fires. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (cause: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(cause);
      },
    );
  });
}
