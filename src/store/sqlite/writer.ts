/**
 * `Writer`: runs one process's writes to a SQLite file in order, without letting a write lock
 * held by another process freeze this process's event loop.
 *
 * better-sqlite3 is synchronous, and so is SQLite's busy handler: with a 5 s `busy_timeout`, a
 * write that meets another process's lock sleeps the whole event loop for up to 5 s. Here the
 * connection waits synchronously only a short slice (`BUSY_SLICE_MS`, enough for other
 * processes' ordinary transactions). A write still refused after that is queued, and the queue
 * is retried from a timer with back-off — each retry a non-blocking try — until the lock is free
 * or the write's deadline (`timeoutMs` after it was queued) has passed; then it is rejected with
 * `LockTimeoutError`, which the cache layer counts as a store error (the call is not cached).
 *
 * Order is kept: while anything waits, every new write queues behind it, so a delete issued after
 * a set still wins. Reads are not queued (WAL lets them go on during another process's write);
 * the store answers reads of keys with queued writes itself. Not a worker thread: a round trip
 * to one costs 25–55 µs, several times a whole write here.
 */

/** The connection's synchronous wait for a lock, ms: absorbs other processes' short writes. */
export const BUSY_SLICE_MS = 10;
const FIRST_RETRY_MS = 2;
const MAX_RETRY_MS = 50;
/** Work one timer turn may do once the lock is free, ms, before it yields to the event loop. */
const TURN_BUDGET_MS = 8;
/** Bytes that may wait for the lock; beyond, writes are refused at once (memory stays bounded). */
const MAX_WAITING_BYTES = 64 * 1024 * 1024;
/** Counted per waiting write on top of its value. */
const WAITING_OVERHEAD = 256;

/** A write that another process's lock kept out for too long, or that found the queue full. */
export class LockTimeoutError extends Error {
  override readonly name = "LockTimeoutError";
  constructor(
    message: string,
    /** How long this write waited, ms. */
    readonly waitedMs: number,
    /** Writes of this process waiting for the lock when it was refused. */
    readonly waiting: number,
  ) {
    super(message);
  }
}

interface Queued {
  write: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  queuedAt: number;
  bytes: number;
}

export interface WriterOptions {
  /** How long a write may wait for the lock in all, ms (the store's `busyTimeoutMs`). */
  timeoutMs: number;
  /** Sets the connection's synchronous busy wait, ms. */
  setBusyTimeout: (ms: number) => void;
  /** Epoch ms for `refusedSince`. */
  now: () => number;
}

export class Writer {
  readonly #options: WriterOptions;
  readonly #queue: Queued[] = [];
  #setup: (() => void) | undefined;
  /** Why setting up failed for good (not a lock): every write is refused with it. */
  #failed: unknown;
  #bytes = 0;
  #timer: NodeJS.Timeout | undefined;
  #delay = FIRST_RETRY_MS;
  #idle: (() => void)[] = [];
  #refusedSince: number | undefined;

  constructor(options: WriterOptions) {
    this.#options = options;
  }

  /** Whether writes are waiting for the lock (then reads must look at them first). */
  get waiting(): boolean {
    return this.#setup !== undefined || this.#queue.length > 0;
  }

  /** Whether setting the file up failed for another reason than a lock: no write can land. */
  get failed(): boolean {
    return this.#failed !== undefined;
  }

  /**
   * When writes were last refused for the lock (epoch ms), while none has landed since:
   * the store is `degraded`.
   */
  get refusedSince(): number | undefined {
    return this.#refusedSince;
  }

  /**
   * Runs `setup` before any write, retried like one but without a deadline (creating the schema
   * or migrating it needs the lock). Writes queue behind it.
   */
  setUpFirst(setup: () => void): void {
    this.#setup = setup;
    this.#schedule(0);
  }

  /**
   * Runs `write` now, or queues it behind the writes already waiting. Returns its result, or a
   * promise of it when it had to wait. `bytes`: what it holds in memory while waiting.
   */
  run<T>(write: () => T, bytes = 0): T | Promise<T> {
    if (this.#failed !== undefined) throw this.#failed;
    if (!this.waiting) {
      try {
        const result = write();
        this.#refusedSince = undefined;
        return result;
      } catch (error) {
        if (!isBusy(error)) throw error;
      }
    }
    return this.#enqueue(write, bytes);
  }

  /** Resolves once nothing waits (every write landed or was refused). */
  idle(): Promise<void> {
    if (!this.waiting) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #enqueue<T>(write: () => T, bytes: number): Promise<T> {
    const size = WAITING_OVERHEAD + bytes;
    if (this.#bytes + size > MAX_WAITING_BYTES) {
      this.#refused();
      return Promise.reject(
        new LockTimeoutError(
          `infercache: ${this.#queue.length} writes (${Math.round(this.#bytes / 1048576)} MB) already wait for the SQLite write lock another process holds; this one was not stored`,
          0,
          this.#queue.length,
        ),
      );
    }
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({
        write,
        resolve: resolve as (value: unknown) => void,
        reject,
        queuedAt: performance.now(),
        bytes: size,
      });
      this.#bytes += size;
      if (this.#timer === undefined) this.#schedule(FIRST_RETRY_MS);
    });
  }

  #schedule(delayMs: number): void {
    clearTimeout(this.#timer);
    // Jitter keeps processes waiting on the same lock from retrying in step.
    const jittered = delayMs === 0 ? 0 : delayMs * (0.75 + Math.random() * 0.5);
    this.#timer = setTimeout(() => this.#retry(), jittered);
  }

  /** One timer turn: refuse what outwaited its deadline, then try the queue without blocking. */
  #retry(): void {
    this.#timer = undefined;
    const started = performance.now();
    this.#expire(started);
    if (!this.waiting) {
      this.#settled();
      return;
    }
    let progressed = false;
    let busy = false;
    this.#options.setBusyTimeout(0);
    try {
      if (this.#setup !== undefined) {
        try {
          this.#setup();
          this.#setup = undefined;
          progressed = true;
        } catch (error) {
          if (!isBusy(error)) {
            this.#fail(error);
            return;
          }
          busy = true;
        }
      }
      while (!busy && this.#queue.length > 0) {
        if (performance.now() - started > TURN_BUDGET_MS) break;
        const next = this.#queue[0] as Queued;
        let result: unknown;
        try {
          result = next.write();
        } catch (error) {
          if (isBusy(error)) {
            busy = true;
            break;
          }
          this.#dequeue();
          next.reject(error);
          continue;
        }
        this.#dequeue();
        this.#refusedSince = undefined;
        progressed = true;
        next.resolve(result);
      }
    } finally {
      this.#options.setBusyTimeout(BUSY_SLICE_MS);
    }
    if (!this.waiting) {
      this.#settled();
      return;
    }
    if (progressed) this.#delay = FIRST_RETRY_MS;
    else this.#delay = Math.min(this.#delay * 2, MAX_RETRY_MS);
    this.#schedule(busy ? this.#delay : 0);
  }

  /** Rejects the writes whose deadline has passed (the oldest first: deadlines come in order). */
  #expire(now: number): void {
    const timeoutMs = this.#options.timeoutMs;
    while (this.#queue.length > 0) {
      const oldest = this.#queue[0] as Queued;
      const waited = now - oldest.queuedAt;
      if (waited < timeoutMs) return;
      this.#dequeue();
      this.#refused();
      oldest.reject(
        new LockTimeoutError(
          `infercache: another process has held the SQLite write lock for over ${timeoutMs} ms (busyTimeoutMs); this write was not stored`,
          Math.round(waited),
          this.#queue.length + 1,
        ),
      );
    }
  }

  /** Setting up failed for another reason than the lock: nothing queued can land. */
  #fail(error: unknown): void {
    this.#failed = error;
    this.#refusedSince = this.#options.now();
    this.#setup = undefined;
    for (const queued of this.#queue.splice(0)) queued.reject(error);
    this.#bytes = 0;
    this.#settled();
  }

  #dequeue(): void {
    const done = this.#queue.shift();
    if (done !== undefined) this.#bytes -= done.bytes;
  }

  #refused(): void {
    this.#refusedSince ??= this.#options.now();
  }

  #settled(): void {
    this.#delay = FIRST_RETRY_MS;
    for (const resolve of this.#idle.splice(0)) resolve();
  }
}

/** SQLITE_BUSY and its extended codes: another connection holds the lock. */
export function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("SQLITE_BUSY");
}
