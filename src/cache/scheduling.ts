/**
 * What the cache layer needs from a queue, so `cache(fn, { queue })` can send misses through one
 * without importing the queue layer (which sits below it). `Queue` in `src/queue/` implements it.
 */

/** Where a waiting call stands: 1 = next to start. `etaMs` from recent durations. */
export interface QueuePosition {
  position: number;
  etaMs: number;
}

export interface LaneRunOptions {
  /** Removes the call while it waits; passed to it (as `currentSignal()`) while it runs. */
  signal?: AbortSignal | undefined;
  /** Called when the call starts waiting and whenever its position changes. */
  onPosition?: ((update: QueuePosition) => void) | undefined;
}

/** One function's share of a queue: its own concurrency limit. */
export interface QueueLane {
  run<T>(task: () => T | Promise<T>, options?: LaneRunOptions): Promise<T>;
  /** Waits for a slot and holds it until `release` is called (streams hold one while they run). */
  acquire(options?: LaneRunOptions): Promise<() => void>;
}

export interface QueueLike {
  lane(options?: { concurrency?: number | undefined; name?: string | undefined }): QueueLane;
}
