/**
 * Single-flight for promises: identical concurrent calls share one computation.
 *
 * Each caller may bring an AbortSignal. An aborted caller stops waiting at once; the shared
 * computation is aborted (through its own signal) only when no caller is left. Callers without
 * a signal cannot leave, so they keep it alive. Flights live in a map owned by one cache
 * instance and are removed when they settle or are abandoned (DataLoader's rule: never a
 * module-level map shared across instances).
 */

export class Flight<T> {
  readonly controller = new AbortController();
  readonly promise: Promise<T>;
  /** Callers still waiting. */
  waiting = 0;
  /** True once every caller left before the computation finished: its result is discarded. */
  abandoned = false;
  #onAbandon: () => void;

  constructor(run: (signal: AbortSignal) => Promise<T>, onAbandon: () => void) {
    this.#onAbandon = onAbandon;
    this.promise = run(this.controller.signal);
    // The flight's own promise may reject with nobody attached (all callers aborted).
    this.promise.catch(() => {});
  }

  /** A caller joins; with a signal, it gets a promise that rejects when that signal aborts. */
  join(signal: AbortSignal | undefined): Promise<T> {
    if (signal === undefined) {
      this.waiting++;
      return this.promise;
    }
    if (signal.aborted) return Promise.reject(signal.reason);
    this.waiting++;
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const onAbort = () => {
        if (settled) return;
        settled = true;
        reject(signal.reason);
        this.#leave(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.promise.then(
        (value) => {
          if (settled) return;
          settled = true;
          signal.removeEventListener("abort", onAbort);
          resolve(value);
        },
        (error: unknown) => {
          if (settled) return;
          settled = true;
          signal.removeEventListener("abort", onAbort);
          reject(error);
        },
      );
    });
  }

  #leave(reason: unknown): void {
    this.waiting--;
    if (this.waiting > 0 || this.abandoned) return;
    this.abandoned = true;
    this.controller.abort(reason);
    this.#onAbandon();
  }
}
