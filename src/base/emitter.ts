/**
 * A tiny typed event emitter. Not node:events: its `error` event throws when nobody listens,
 * and a cache must never fail a call because a listener is missing. Emitting with no listeners
 * costs one size check, so the hit path pays nothing for events nobody asked for.
 */

export type Listener<T> = (event: T) => void;

export class Emitter<Events extends object> {
  readonly #listeners = new Map<keyof Events, Set<Listener<never>>>();

  /** Subscribes to `type`; returns the unsubscribe function. */
  on<K extends keyof Events>(type: K, listener: Listener<Events[K]>): () => void {
    let set = this.#listeners.get(type);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(type, set);
    }
    set.add(listener as Listener<never>);
    return () => this.off(type, listener);
  }

  off<K extends keyof Events>(type: K, listener: Listener<Events[K]>): void {
    const set = this.#listeners.get(type);
    set?.delete(listener as Listener<never>);
    if (set?.size === 0) this.#listeners.delete(type);
  }

  /** Whether anyone listens to `type`: check before building an event object. */
  has(type: keyof Events): boolean {
    return this.#listeners.has(type);
  }

  emit<K extends keyof Events>(type: K, event: Events[K]): void {
    const set = this.#listeners.get(type);
    if (set === undefined) return;
    for (const listener of set) {
      try {
        (listener as Listener<Events[K]>)(event);
      } catch (error) {
        // A throwing listener must not break the cache or the caller; surface it asynchronously.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
