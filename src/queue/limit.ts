/**
 * `limit(fn, { concurrency, maxQueue, batch })`: a function that runs at most `concurrency` at a
 * time, lets at most `maxQueue` calls wait, and — with `batch` — turns single calls into calls of
 * a batch function. Calls made inside a cached computation inherit its AbortSignal.
 */

import { currentSignal } from "../cache/computation.js";
import type { LaneRunOptions } from "../cache/scheduling.js";
import {
  Batcher,
  type BatchFunction,
  type BatchOptions,
  type BatchScheduler,
  defaultScheduler,
} from "./batcher.js";
import { type Lane, Queue } from "./queue.js";

interface LimitCommonOptions {
  /** Calls of this function running at once. @default 1, or the queue's default */
  concurrency?: number;
  /** Collect calls into batches for a batch function. */
  batch?: BatchOptions;
  /** Schedules batch windows (tests pass a manual one). @default setImmediate / setTimeout */
  scheduler?: BatchScheduler;
}

/** A private queue of this function's own. */
interface PrivateQueueOptions {
  queue?: undefined;
  /** Calls allowed to wait (the private queue's maxSize). 0 = unlimited. @default 0 */
  maxQueue?: number;
}

/** A queue shared with other functions: its `maxSize` bounds what waits. */
interface SharedQueueOptions {
  /** A shared queue (its maxSize and maxConcurrency apply). */
  queue: Queue;
  /** With a shared queue, set `maxSize` on the queue. */
  maxQueue?: never;
}

export type LimitOptions = LimitCommonOptions & (PrivateQueueOptions | SharedQueueOptions);

export interface LimitHandle<F> {
  readonly queue: Queue;
  readonly lane: Lane;
  /** The same function with per-call options: a signal, or a position/ETA listener. */
  with(options: LaneRunOptions): F;
}

// biome-ignore lint/suspicious/noExplicitAny: a wrapper must accept every function type.
type AnyFunction = (this: any, ...args: any[]) => any;

export type LimitedFunction<F extends AnyFunction> = ((
  this: ThisParameterType<F>,
  ...args: Parameters<F>
) => Promise<Awaited<ReturnType<F>>>) & { readonly queue: LimitHandle<LimitedFunction<F>> };

/** Runs `fn` under a concurrency limit and a bounded wait. */
export function limit<F extends AnyFunction>(
  fn: F,
  options?: LimitOptions & { batch?: undefined },
): LimitedFunction<F>;
/** Turns single calls into calls of the batch function `fn` (one argument list per call). */
export function limit<A extends unknown[], R>(
  fn: BatchFunction<A, R>,
  options: LimitOptions & { batch: BatchOptions },
): LimitedFunction<(...args: A) => Promise<R>>;
export function limit(fn: AnyFunction, options: LimitOptions = {}): LimitedFunction<AnyFunction> {
  if (typeof fn !== "function") {
    throw new TypeError(`limit(fn) expected a function, got \`${String(fn)}\` (${typeof fn})`);
  }
  const given = options as LimitCommonOptions & { queue?: Queue; maxQueue?: number };
  if (given.queue !== undefined && given.maxQueue !== undefined) {
    throw new TypeError(
      "limit(fn): `maxQueue` applies to a private queue; with `queue`, set `maxSize` on the queue",
    );
  }
  const queue =
    options.queue ??
    new Queue({
      ...(options.concurrency !== undefined && { concurrency: options.concurrency }),
      maxSize: options.maxQueue ?? 0,
    });
  const lane = queue.lane({ concurrency: options.concurrency, name: fn.name || undefined });
  let call: (
    thisArg: unknown,
    args: unknown[],
    callOptions: LaneRunOptions | undefined,
  ) => Promise<unknown>;
  if (options.batch !== undefined) {
    const batcher = new Batcher(
      fn as BatchFunction<unknown[], unknown>,
      lane,
      queue,
      options.batch,
      options.scheduler ?? defaultScheduler,
    );
    call = (_thisArg, args, callOptions) =>
      batcher.add(args, callOptions?.signal ?? currentSignal(), callOptions?.onPosition);
  } else {
    call = (thisArg, args, callOptions) => lane.run(() => fn.apply(thisArg, args), callOptions);
  }
  const limited = function (this: unknown, ...args: unknown[]) {
    return call(this, args, undefined);
  };
  Object.defineProperty(limited, "name", { value: fn.name, configurable: true });
  const handle: LimitHandle<AnyFunction> = {
    queue,
    lane,
    with: (callOptions) =>
      function (this: unknown, ...args: unknown[]) {
        return call(this, args, callOptions);
      },
  };
  Object.defineProperty(limited, "queue", { value: handle, enumerable: true });
  return limited as unknown as LimitedFunction<AnyFunction>;
}
