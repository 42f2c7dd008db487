/**
 * Collects single calls into batches for a batch function (`limit(fn, { batch })`).
 *
 * Calls wait here until the batch is full (`maxBatchSize`) or the window closes (`maxWaitMs`,
 * measured from the first waiting call); then one batch job joins the lane and, when it gets a
 * slot, takes whatever is waiting then (up to `maxBatchSize`) — so with a busy lane batches form
 * greedily as in Gradio, and with `maxWaitMs: 0` a batch is what arrived within one turn of the
 * event loop, as in DataLoader. Results map back by position; an `Error` in the results fails
 * only its call, a thrown error fails the whole batch. The window is scheduled through an
 * injectable `scheduler`, so tests drive it by hand.
 */

import type { QueuePosition } from "../cache/scheduling.js";
import type { Lane, Queue } from "./queue.js";

export interface BatchOptions {
  /** Most calls in one batch. */
  maxBatchSize: number;
  /**
   * How long the first waiting call waits for others, ms. 0: only what arrives within the
   * current turn of the event loop.
   * @default 0
   */
  maxWaitMs?: number;
}

/** Schedules `flush` after `waitMs`; returns a function that cancels it (DataLoader's batchScheduleFn). */
export type BatchScheduler = (flush: () => void, waitMs: number) => () => void;

export const defaultScheduler: BatchScheduler = (flush, waitMs) => {
  if (waitMs <= 0) {
    const handle = setImmediate(flush);
    return () => clearImmediate(handle);
  }
  const handle = setTimeout(flush, waitMs);
  return () => clearTimeout(handle);
};

interface Item<A, R> {
  args: A;
  resolve: (value: R) => void;
  reject: (error: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  onPosition: ((update: QueuePosition) => void) | undefined;
  arrivedAt: number;
  cancelled: boolean;
}

export type BatchFunction<A extends unknown[], R> = (
  calls: A[],
) => readonly (R | Error)[] | Promise<readonly (R | Error)[]>;

export class Batcher<A extends unknown[], R> {
  readonly maxBatchSize: number;
  readonly maxWaitMs: number;
  readonly #fn: BatchFunction<A, R>;
  readonly #lane: Lane;
  readonly #queue: Queue;
  readonly #scheduler: BatchScheduler;
  #items: Item<A, R>[] = [];
  #live = 0;
  #cancelTimer: (() => void) | undefined;
  #jobPending = false;

  constructor(
    fn: BatchFunction<A, R>,
    lane: Lane,
    queue: Queue,
    options: BatchOptions,
    scheduler: BatchScheduler,
  ) {
    if (!Number.isSafeInteger(options.maxBatchSize) || options.maxBatchSize < 1) {
      throw new TypeError(
        `Expected \`batch.maxBatchSize\` to be a positive integer, got \`${String(options.maxBatchSize)}\``,
      );
    }
    const wait = options.maxWaitMs ?? 0;
    if (!Number.isFinite(wait) || wait < 0) {
      throw new TypeError(
        `Expected \`batch.maxWaitMs\` to be a non-negative number of ms, got \`${String(wait)}\``,
      );
    }
    this.#fn = fn;
    this.#lane = lane;
    this.#queue = queue;
    this.#scheduler = scheduler;
    this.maxBatchSize = options.maxBatchSize;
    this.maxWaitMs = wait;
  }

  /** Calls waiting for a batch. */
  get waiting(): number {
    return this.#live;
  }

  add(
    args: A,
    signal: AbortSignal | undefined,
    onPosition?: (update: QueuePosition) => void,
  ): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      try {
        this.#queue.admit(1);
      } catch (error) {
        reject(error);
        return;
      }
      const item: Item<A, R> = {
        args,
        resolve,
        reject,
        signal,
        onAbort: undefined,
        onPosition,
        arrivedAt: this.#queue.clock.now(),
        cancelled: false,
      };
      if (signal !== undefined) {
        item.onAbort = () => this.#cancel(item);
        signal.addEventListener("abort", item.onAbort, { once: true });
      }
      this.#items.push(item);
      this.#live++;
      onPosition?.(this.#positionOf(this.#live));
      if (this.#live >= this.maxBatchSize) this.#submit();
      else if (!this.#jobPending && this.#cancelTimer === undefined) this.#schedule(this.maxWaitMs);
    });
  }

  #schedule(waitMs: number): void {
    this.#cancelTimer = this.#scheduler(() => {
      this.#cancelTimer = undefined;
      this.#submit();
    }, waitMs);
  }

  /** Puts one batch job in the lane (at most one waits at a time). */
  #submit(): void {
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    if (this.#jobPending || this.#live === 0) return;
    this.#jobPending = true;
    this.#lane.submitJob(
      () => this.#start(),
      () => {},
      0,
    );
  }

  /** The batch job got a slot: take what is waiting now and call the batch function. */
  #start(): void {
    this.#jobPending = false;
    const started = this.#queue.clock.now();
    const batch: Item<A, R>[] = [];
    while (batch.length < this.maxBatchSize && this.#items.length > 0) {
      const item = this.#items.shift() as Item<A, R>;
      if (item.cancelled) continue;
      if (item.onAbort !== undefined) item.signal?.removeEventListener("abort", item.onAbort);
      batch.push(item);
    }
    this.#live -= batch.length;
    this.#queue.unadmit(batch.length);
    this.#afterTake();
    if (batch.length === 0) {
      this.#lane.release(started);
      return;
    }
    let results: Promise<readonly (R | Error)[]>;
    try {
      results = Promise.resolve(this.#fn(batch.map((item) => item.args)));
    } catch (error) {
      results = Promise.reject(error);
    }
    results.then(
      (values) => {
        this.#lane.release(started);
        if (!Array.isArray(values) || values.length !== batch.length) {
          const error = new TypeError(
            `infercache: the batch function returned ${Array.isArray(values) ? `${values.length} results` : typeof values} for ${batch.length} calls; return one result (or Error) per call, in order`,
          );
          for (const item of batch) item.reject(error);
          return;
        }
        for (const [i, item] of batch.entries()) {
          const value = values[i];
          if (value instanceof Error) item.reject(value);
          else item.resolve(value as R);
        }
      },
      (error: unknown) => {
        this.#lane.release(started);
        for (const item of batch) item.reject(error);
      },
    );
  }

  /** Calls still waiting after a batch was taken: a full batch goes at once, else its window. */
  #afterTake(): void {
    if (this.#live === 0) return;
    if (this.#live >= this.maxBatchSize) {
      this.#submit();
      return;
    }
    const oldest = this.#items.find((item) => !item.cancelled);
    const waited = oldest === undefined ? 0 : this.#queue.clock.now() - oldest.arrivedAt;
    const left = this.maxWaitMs - waited;
    // Calls that already waited out their window (the slot was busy) go in the next batch now.
    if (left <= 0) this.#submit();
    else if (this.#cancelTimer === undefined) this.#schedule(left);
    this.#announcePositions();
  }

  #cancel(item: Item<A, R>): void {
    if (item.cancelled) return;
    item.cancelled = true;
    this.#live--;
    this.#queue.unadmit(1);
    item.reject(item.signal?.reason);
    this.#announcePositions();
  }

  #positionOf(position: number): QueuePosition {
    const rounds = Math.ceil(position / (this.maxBatchSize * this.#lane.concurrency));
    return { position, etaMs: rounds * this.#lane.averageMs() };
  }

  #announcePositions(): void {
    let position = 0;
    for (const item of this.#items) {
      if (item.cancelled) continue;
      position++;
      item.onPosition?.(this.#positionOf(position));
    }
  }
}
