/**
 * `createQueue({ concurrency, maxSize })`: a waiting line shared by several functions, like
 * Gradio's queue. Each function gets a lane with its own concurrency limit (default 1: a GPU
 * model is not loaded twice); `maxSize` bounds the calls waiting across all lanes and a call that
 * would exceed it is rejected at once with `QueueFullError`; `maxConcurrency` optionally bounds
 * what runs across all lanes, and then lanes are served in arrival order.
 *
 * A call that finds a free slot starts at once and never counts as waiting. Cache hits and
 * coalesced callers never reach a lane at all (the cache layer answers them first), so a full
 * queue never rejects a call the cache could answer — the opposite of Gradio.
 *
 * A waiting call can be removed by its AbortSignal (it never starts); a running one sees the
 * signal as `currentSignal()`. Position and ETA (a rolling average of the lane's recent
 * durations) are pushed to callers that ask for them.
 */

import { type Clock, systemClock } from "../base/clock.js";
import { traceQueueWait } from "../base/tracing.js";
import { nonNegativeInteger, positiveInteger } from "../base/validate.js";
import { currentSignal, runComputation } from "../cache/computation.js";
import type { LaneRunOptions, QueueLane, QueueLike, QueuePosition } from "../cache/scheduling.js";
import { QueueFullError } from "./queue-full-error.js";

export interface QueueOptions {
  /** Concurrency of each function's lane unless the function sets its own. @default 1 */
  concurrency?: number;
  /** Calls allowed to wait across all lanes; more are rejected with QueueFullError. 0 = unlimited. @default 0 */
  maxSize?: number;
  /** Calls allowed to run across all lanes. 0 = unlimited (each lane is bounded by its own limit). @default 0 */
  maxConcurrency?: number;
  /** Recent durations averaged for the ETA. @default 20 */
  etaWindow?: number;
  /** Source of time for durations. @default Date.now */
  clock?: Clock;
}

interface Job {
  seq: number;
  lane: Lane;
  /** Waiting calls this job stands for: 1, or 0 for a batch (its items are counted apart). */
  weight: number;
  start: () => void;
  reject: (error: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  onPosition: ((update: QueuePosition) => void) | undefined;
  cancelled: boolean;
}

let nextSeq = 0;

export class Queue implements QueueLike {
  readonly concurrency: number;
  readonly maxSize: number;
  readonly maxConcurrency: number;
  readonly clock: Clock;
  readonly etaWindow: number;
  readonly #lanes: Lane[] = [];
  #running = 0;
  #waiting = 0;
  #idle: (() => void)[] = [];

  constructor(options: QueueOptions = {}) {
    this.concurrency = positiveInteger(options.concurrency ?? 1, "concurrency");
    this.maxSize = nonNegativeInteger(options.maxSize ?? 0, "maxSize");
    this.maxConcurrency = nonNegativeInteger(options.maxConcurrency ?? 0, "maxConcurrency");
    this.etaWindow = positiveInteger(options.etaWindow ?? 20, "etaWindow");
    this.clock = options.clock ?? systemClock;
  }

  /** A lane for one function: `concurrency` defaults to the queue's. */
  lane(options: { concurrency?: number | undefined; name?: string | undefined } = {}): Lane {
    const lane = new Lane(
      this,
      options.concurrency === undefined
        ? this.concurrency
        : positiveInteger(options.concurrency, "concurrency"),
      options.name ?? `lane-${this.#lanes.length + 1}`,
    );
    this.#lanes.push(lane);
    return lane;
  }

  /** Calls waiting plus calls running. */
  get size(): number {
    return this.#waiting + this.#running;
  }

  get running(): number {
    return this.#running;
  }

  get waiting(): number {
    return this.#waiting;
  }

  /** Resolves when nothing runs or waits. */
  onIdle(): Promise<void> {
    if (this.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Counts `count` more waiting calls, or throws QueueFullError. @internal (lanes, batchers) */
  admit(count: number): void {
    if (this.maxSize > 0 && this.#waiting + count > this.maxSize) {
      throw new QueueFullError(this.maxSize, this.#waiting);
    }
    this.#waiting += count;
  }

  /** @internal */
  unadmit(count: number): void {
    this.#waiting -= count;
    this.#checkIdle();
  }

  /** Whether one more call may run across the queue. @internal */
  hasRoom(): boolean {
    return this.maxConcurrency === 0 || this.#running < this.maxConcurrency;
  }

  /** @internal */
  started(): void {
    this.#running++;
  }

  /** A running call finished: start what can start. @internal */
  finished(lane: Lane): void {
    this.#running--;
    if (this.maxConcurrency === 0) lane.pump();
    else this.#pumpAll();
    this.#checkIdle();
  }

  /** With a total limit, the free slot goes to the oldest waiting call whose lane has room. */
  #pumpAll(): void {
    while (this.hasRoom()) {
      let best: Lane | undefined;
      let bestSeq = Number.POSITIVE_INFINITY;
      for (const lane of this.#lanes) {
        const seq = lane.headSeq();
        if (seq < bestSeq) {
          bestSeq = seq;
          best = lane;
        }
      }
      if (best === undefined || !best.startHead()) return;
    }
  }

  #checkIdle(): void {
    if (this.size !== 0 || this.#idle.length === 0) return;
    const idle = this.#idle;
    this.#idle = [];
    for (const resolve of idle) resolve();
  }
}

/** One function's lane: a FIFO of waiting jobs and a concurrency limit. */
export class Lane implements QueueLane {
  readonly #queue: Queue;
  readonly concurrency: number;
  readonly name: string;
  #jobs: (Job | undefined)[] = [];
  #head = 0;
  /** Waiting jobs not cancelled. */
  #live = 0;
  #running = 0;
  #watchers = 0;
  readonly #durations: number[] = [];
  #durationIndex = 0;

  constructor(queue: Queue, concurrency: number, name: string) {
    this.#queue = queue;
    this.concurrency = concurrency;
    this.name = name;
  }

  get running(): number {
    return this.#running;
  }

  get waiting(): number {
    return this.#live;
  }

  /** Runs `task` when a slot is free. The call's signal (or the current computation's) aborts it. */
  run<T>(task: () => T | Promise<T>, options?: LaneRunOptions): Promise<T> {
    const signal = options?.signal ?? currentSignal();
    return new Promise<T>((resolve, reject) => {
      const execute = () => {
        const started = this.#queue.clock.now();
        let result: Promise<T>;
        try {
          const value = signal === undefined ? task() : runComputation(signal, task);
          result = Promise.resolve(value);
        } catch (error) {
          result = Promise.reject(error);
        }
        result.then(
          (value) => {
            this.#done(started);
            resolve(value);
          },
          (error: unknown) => {
            this.#done(started);
            reject(error);
          },
        );
      };
      this.#submit(execute, reject, signal, options?.onPosition, 1);
    });
  }

  acquire(options?: LaneRunOptions): Promise<() => void> {
    const signal = options?.signal ?? currentSignal();
    return new Promise<() => void>((resolve, reject) => {
      const execute = () => {
        const started = this.#queue.clock.now();
        let released = false;
        resolve(() => {
          if (released) return;
          released = true;
          this.#done(started);
        });
      };
      this.#submit(execute, reject, signal, options?.onPosition, 1);
    });
  }

  /** Runs a job that stands for `weight` waiting calls (0 for a batch). @internal */
  submitJob(execute: () => void, reject: (error: unknown) => void, weight: number): void {
    this.#submit(execute, reject, undefined, undefined, weight);
  }

  /** Frees a slot taken by a job started with `submitJob`. @internal */
  release(started: number): void {
    this.#done(started);
  }

  /** Mean of recent durations, ms (0 before any finished). */
  averageMs(): number {
    const n = this.#durations.length;
    if (n === 0) return 0;
    let total = 0;
    for (const d of this.#durations) total += d;
    return total / n;
  }

  #submit(
    execute: () => void,
    reject: (error: unknown) => void,
    signal: AbortSignal | undefined,
    onPosition: ((update: QueuePosition) => void) | undefined,
    weight: number,
  ): void {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const queue = this.#queue;
    // A free slot: start at once, never counted as waiting (and never rejected as full).
    if (this.#running < this.concurrency && this.#live === 0 && queue.hasRoom()) {
      this.#running++;
      queue.started();
      execute();
      return;
    }
    try {
      queue.admit(weight);
    } catch (error) {
      reject(error);
      return;
    }
    const job: Job = {
      seq: nextSeq++,
      lane: this,
      weight,
      start: execute,
      reject,
      signal,
      onAbort: undefined,
      onPosition,
      cancelled: false,
    };
    traceQueueWait(job, this.name, this.#live + 1);
    if (signal !== undefined) {
      job.onAbort = () => this.#cancel(job);
      signal.addEventListener("abort", job.onAbort, { once: true });
    }
    this.#jobs.push(job);
    this.#live++;
    if (onPosition !== undefined) {
      this.#watchers++;
      onPosition(this.#positionOf(this.#live));
    }
    // Only cancelled jobs may have been ahead of it: start it if a slot is free.
    if (this.#running < this.concurrency && queue.hasRoom()) this.pump();
  }

  /** The sequence number of the next job this lane would start, or Infinity. @internal */
  headSeq(): number {
    if (this.#running >= this.concurrency) return Number.POSITIVE_INFINITY;
    this.#skipCancelled();
    const job = this.#jobs[this.#head];
    return job === undefined ? Number.POSITIVE_INFINITY : job.seq;
  }

  /** Starts slots while this lane and the queue have room. @internal */
  pump(): void {
    while (this.#running < this.concurrency && this.#queue.hasRoom() && this.startHead()) {}
  }

  /** Starts the next waiting job; false when none. @internal */
  startHead(): boolean {
    this.#skipCancelled();
    if (this.#head >= this.#jobs.length) return false;
    const job = this.#jobs[this.#head] as Job;
    this.#jobs[this.#head] = undefined;
    this.#head++;
    this.#live--;
    this.#compact();
    if (job.onAbort !== undefined) job.signal?.removeEventListener("abort", job.onAbort);
    if (job.onPosition !== undefined) this.#watchers--;
    this.#queue.unadmit(job.weight);
    this.#running++;
    this.#queue.started();
    job.start();
    this.#announcePositions();
    return true;
  }

  #done(started: number): void {
    const duration = this.#queue.clock.now() - started;
    const window = this.#queue.etaWindow;
    if (this.#durations.length < window) this.#durations.push(duration);
    else {
      this.#durations[this.#durationIndex] = duration;
      this.#durationIndex = (this.#durationIndex + 1) % window;
    }
    this.#running--;
    this.#queue.finished(this);
  }

  #cancel(job: Job): void {
    if (job.cancelled) return;
    job.cancelled = true;
    this.#live--;
    if (job.onPosition !== undefined) this.#watchers--;
    this.#queue.unadmit(job.weight);
    job.reject(job.signal?.reason);
    this.#announcePositions();
  }

  #skipCancelled(): void {
    while (this.#head < this.#jobs.length && (this.#jobs[this.#head] as Job).cancelled) {
      this.#jobs[this.#head] = undefined;
      this.#head++;
    }
    this.#compact();
  }

  /** Drops the consumed front of the array now and then (amortised O(1) dequeue). */
  #compact(): void {
    if (this.#head > 1024 && this.#head * 2 > this.#jobs.length) {
      this.#jobs = this.#jobs.slice(this.#head);
      this.#head = 0;
    }
  }

  #positionOf(position: number): QueuePosition {
    const rounds = Math.ceil(position / this.concurrency);
    return { position, etaMs: rounds * this.averageMs() };
  }

  #announcePositions(): void {
    if (this.#watchers === 0) return;
    let position = 0;
    for (let i = this.#head; i < this.#jobs.length; i++) {
      const job = this.#jobs[i] as Job;
      if (job.cancelled) continue;
      position++;
      job.onPosition?.(this.#positionOf(position));
    }
  }
}

/** A queue shared by several functions (see `Queue`). */
export function createQueue(options?: QueueOptions): Queue {
  return new Queue(options);
}
