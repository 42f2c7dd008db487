/**
 * A Store that answers asynchronously (a macrotask per operation, like a database round trip),
 * backed by a MemoryStore, with a switch that makes every operation fail like a store that is
 * down. Tests use it to exercise the paths a SQLite or Redis store takes: async kinds,
 * single-flight across an awaited lookup, and fail-open behaviour.
 */

import { setImmediate as tick } from "node:timers/promises";
import {
  type ClearScope,
  type Entry,
  MemoryStore,
  type MemoryStoreOptions,
  type PurgeFilter,
  type Scope,
  type SetOutcome,
  type Store,
  type StoreEvent,
} from "../../src/index.js";

export class AsyncStore implements Store {
  readonly kind = "async-memory";
  readonly inner: MemoryStore;
  /** While true, every operation rejects. */
  down = false;
  operations = 0;

  constructor(options: MemoryStoreOptions = {}) {
    this.inner = new MemoryStore(options);
  }

  async #io(): Promise<void> {
    this.operations++;
    await tick();
    if (this.down) throw new Error("connection refused");
  }

  async get(key: string, scope: Scope): Promise<Entry | undefined> {
    await this.#io();
    return this.inner.getSync(key, scope);
  }
  async set(key: string, scope: Scope, entry: Entry): Promise<SetOutcome> {
    await this.#io();
    return this.inner.setSync(key, scope, entry);
  }
  async delete(key: string, scope: Scope): Promise<boolean> {
    await this.#io();
    return this.inner.deleteSync(key, scope);
  }
  async purge(filter: PurgeFilter): Promise<number> {
    await this.#io();
    return this.inner.purgeSync(filter);
  }
  async clear(scope?: ClearScope): Promise<number> {
    await this.#io();
    return this.inner.clearSync(scope);
  }
  async size(scope?: ClearScope): Promise<number> {
    await this.#io();
    return this.inner.sizeSync(scope);
  }
  async *entries(scope: Scope): AsyncIterable<[string, Entry]> {
    await this.#io();
    yield* this.inner.entriesSync(scope);
  }
  subscribe(listener: (event: StoreEvent) => void): () => void {
    return this.inner.subscribe(listener);
  }
  usage(namespace: string): { entries: number; bytes: number } {
    return this.inner.usage(namespace);
  }
  async close(): Promise<void> {
    await this.inner.close();
  }
}
