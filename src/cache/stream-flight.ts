/**
 * Single-flight for generators: one run of the source, any number of consumers.
 *
 * The source is pulled lazily, by whichever consumer is furthest ahead, so it runs no faster
 * than someone reads it (generator semantics). Every item is kept as it was yielded (and, when it
 * can be, as a snapshot for the record); a consumer that joins late replays what was produced and
 * then follows live. The consumer that pulled an item gets the live value, the others the
 * snapshot. When the last consumer leaves early, the source is closed and its signal aborted,
 * and nothing is recorded. Works over sync and async sources; `pullSync` serves sync consumers.
 */

import { NotSnapshotableError, snapshot } from "./snapshot.js";

interface Item<T> {
  live: T;
  replay: T;
  puller: object;
}

export interface StreamRecord<T, R> {
  yields: T[];
  returnValue: R;
}

export interface StreamFlightHooks<T, R> {
  /** Starts the source (calls the user's generator function). */
  start(signal: AbortSignal): Iterator<T, R> | AsyncIterator<T, R>;
  /** Runs one step of the source in the computation's context. */
  step<X>(signal: AbortSignal, fn: () => X): X;
  /** The source finished and every item could be snapshotted. */
  complete(record: StreamRecord<T, R>): void;
  /** The source threw or was abandoned: nothing is recorded. */
  discard(): void;
  /** An item could not be snapshotted: the stream goes on, uncached. */
  notSnapshotable(error: NotSnapshotableError): void;
}

export class StreamFlight<T, R> {
  readonly controller = new AbortController();
  readonly items: Item<T>[] = [];
  state: "running" | "done" | "error" | "abandoned" = "running";
  returnValue: R | undefined;
  error: unknown;
  #consumers = 0;
  #source: Iterator<T, R> | AsyncIterator<T, R> | undefined;
  #pulling: Promise<void> | undefined;
  #recordable = true;
  readonly #hooks: StreamFlightHooks<T, R>;

  constructor(hooks: StreamFlightHooks<T, R>) {
    this.#hooks = hooks;
  }

  enter(): void {
    this.#consumers++;
  }

  /** A consumer is gone (finished, closed early, or aborted). */
  leave(): void {
    this.#consumers--;
    if (this.#consumers > 0 || this.state !== "running") return;
    this.state = "abandoned";
    this.controller.abort(new Error("infercache: every consumer of the stream left"));
    const source = this.#source;
    this.#hooks.discard();
    if (source?.return !== undefined) {
      try {
        const closing = source.return();
        if (closing instanceof Promise) closing.catch(() => {});
      } catch {
        // The source is being dropped; an error while closing it has no one to go to.
      }
    }
  }

  /** The value consumer `me` should see for item `index`. */
  valueFor(index: number, me: object): T {
    const item = this.items[index] as Item<T>;
    return item.puller === me ? item.live : item.replay;
  }

  /** Pulls the next item from an async or sync source; concurrent pulls share one. */
  pull(me: object): Promise<void> {
    if (this.#pulling === undefined) {
      this.#pulling = this.#pullAsync(me).finally(() => {
        this.#pulling = undefined;
      });
    }
    return this.#pulling;
  }

  /** Pulls the next item from a sync source. */
  pullSync(me: object): void {
    try {
      const source = this.#open() as Iterator<T, R>;
      const signal = this.controller.signal;
      const result = this.#hooks.step(signal, () => source.next());
      this.#accept(result, me);
    } catch (error) {
      this.#fail(error);
    }
  }

  async #pullAsync(me: object): Promise<void> {
    try {
      const source = this.#open();
      const signal = this.controller.signal;
      const result = await this.#hooks.step(signal, () => source.next());
      this.#accept(result, me);
    } catch (error) {
      this.#fail(error);
    }
  }

  #open(): Iterator<T, R> | AsyncIterator<T, R> {
    this.#source ??= this.#hooks.start(this.controller.signal);
    return this.#source;
  }

  #accept(result: IteratorResult<T, R>, me: object): void {
    if (this.state !== "running") return;
    if (result.done) {
      this.state = "done";
      this.returnValue = result.value;
      if (this.#recordable) {
        this.#hooks.complete({
          yields: this.items.map((item) => item.replay),
          returnValue: result.value,
        });
      } else {
        this.#hooks.discard();
      }
      return;
    }
    let replay = result.value;
    if (this.#recordable) {
      try {
        replay = snapshot(result.value, `yield[${this.items.length}]`);
      } catch (error) {
        if (!(error instanceof NotSnapshotableError)) throw error;
        this.#recordable = false;
        this.#hooks.notSnapshotable(error);
      }
    }
    this.items.push({ live: result.value, replay, puller: me });
  }

  #fail(error: unknown): void {
    if (this.state !== "running") return;
    this.state = "error";
    this.error = error;
    this.#hooks.discard();
  }
}
