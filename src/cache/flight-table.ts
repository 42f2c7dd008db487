/**
 * The computations in flight of one cache instance, so identical concurrent calls join one
 * (single-flight). Every cache — `cache(fn)`, `Cache.getOrSet`, `cachingFetch`, the AI SDK
 * middleware — keeps its flights here and nowhere else.
 *
 * Two rules, written once: a flight is removed only if it is still the one under its id (a newer
 * flight under the same id is left alone), and a flight stays joinable until its entry is
 * written (`releaseAfter`), so a call that arrives between "computed" and "stored" on an
 * asynchronous store joins it instead of computing again. One table per instance (DataLoader's
 * rule): never a module-level map shared by caches.
 */

import { scopeId } from "../store/address.js";
import type { Scope } from "../store/store.js";

export class FlightTable<F extends object> {
  readonly #flights = new Map<string, F>();

  /** The id of the flight computing `key` in `scope`. */
  static id(scope: Scope, key: string): string {
    return scopeId(scope, key);
  }

  get size(): number {
    return this.#flights.size;
  }

  get(id: string): F | undefined {
    return this.#flights.get(id);
  }

  /** Makes `flight` the one identical calls join. */
  start(id: string, flight: F): void {
    this.#flights.set(id, flight);
  }

  /** Removes `flight` if it is still the one under `id`. */
  release(id: string, flight: F): void {
    if (this.#flights.get(id) === flight) this.#flights.delete(id);
  }

  /** Removes `flight` once `written` settles, or at once when nothing is being written. */
  releaseAfter(id: string, flight: F, written: PromiseLike<unknown> | undefined): void {
    if (written === undefined) {
      this.release(id, flight);
      return;
    }
    const release = () => this.release(id, flight);
    written.then(release, release);
  }
}
