/**
 * `TieredStore`: a MemoryStore in front of a persistent or shared store. Reads are served from
 * memory when they can and fill it when they come from the back store; writes, deletes and clears
 * reach both. When the back store can broadcast (RedisStore), every change is announced, and other
 * processes drop their memory copy, so a delete in one process is seen by all.
 *
 * `purge` runs on the back store (its count is the answer), then on this memory tier, then is
 * announced, so other processes run the same filter on their memory tiers (their tag indexes:
 * no scan for a tag purge). A process that missed the message (pub/sub is not durable: Redis
 * restarted, a connection dropped) is told to drop its whole memory tier, as for clears.
 *
 * Reads served from memory do not reach the back store (that is the point), so the back store's
 * LRU order, and `entries()`, reflect only the reads that missed memory.
 */

import { MemoryStore, type MemoryStoreOptions } from "./memory.js";
import type {
  ClearScope,
  Entry,
  FlightCoordinator,
  InvalidationBus,
  InvalidationMessage,
  PurgeFilter,
  Scope,
  SetOutcome,
  Store,
  StoreEvent,
  StoreHealth,
} from "./store.js";

export interface TieredStoreOptions {
  /** The back store (SqliteStore, RedisStore, any Store). Closed by `close()`. */
  store: Store;
  /** The memory tier, or options for a new one. @default new MemoryStore() (128 entries) */
  memory?: MemoryStore | MemoryStoreOptions;
}

export class TieredStore implements Store {
  readonly kind: string;
  readonly memory: MemoryStore;
  readonly back: Store;
  readonly flights: FlightCoordinator | undefined;
  readonly #bus: InvalidationBus | undefined;
  readonly #listening: Promise<() => void> | undefined;

  constructor(options: TieredStoreOptions) {
    if (options?.store === undefined) {
      throw new TypeError(
        "new TieredStore() needs `store`: the persistent or shared store behind memory",
      );
    }
    this.back = options.store;
    this.memory =
      options.memory instanceof MemoryStore ? options.memory : new MemoryStore(options.memory);
    this.kind = `tiered(memory+${this.back.kind})`;
    this.flights = this.back.flights;
    this.#bus = isBus(this.back) ? this.back : undefined;
    this.#listening = this.#bus?.onInvalidation((message) => this.#invalidate(message));
    // A failed subscription only means other processes' changes are not pushed here.
    this.#listening?.catch(() => {});
  }

  /** Resolves once this process listens to other processes' changes (when the back store can tell). */
  async ready(): Promise<void> {
    await this.#listening;
  }

  async get(key: string, scope: Scope): Promise<Entry | undefined> {
    const near = this.memory.getSync(key, scope);
    if (near !== undefined) return near;
    const far = await this.back.get(key, scope);
    if (far !== undefined) this.memory.setSync(key, scope, far);
    return far;
  }

  async set(key: string, scope: Scope, entry: Entry): Promise<SetOutcome> {
    const outcome = await this.back.set(key, scope, entry);
    if (outcome === "stored") this.memory.setSync(key, scope, entry);
    else this.memory.deleteSync(key, scope);
    await this.#announce({
      kind: "key",
      namespace: scope.namespace,
      session: scope.session ?? null,
      key,
    });
    return outcome;
  }

  async delete(key: string, scope: Scope): Promise<boolean> {
    this.memory.deleteSync(key, scope);
    const deleted = await this.back.delete(key, scope);
    await this.#announce({
      kind: "key",
      namespace: scope.namespace,
      session: scope.session ?? null,
      key,
    });
    return deleted;
  }

  async clear(scope?: ClearScope): Promise<number> {
    this.memory.clearSync(scope);
    const removed = await this.back.clear(scope);
    await this.#announce({ kind: "clear", namespace: scope?.namespace, session: scope?.session });
    return removed;
  }

  async purge(filter: PurgeFilter): Promise<number> {
    if (this.back.purge === undefined) {
      return Promise.reject(
        new Error(`infercache: the ${this.back.kind} store behind TieredStore cannot purge`),
      );
    }
    // The back store first: purging memory first would let a read refill it from the back
    // store with an entry about to be purged.
    const removed = await this.back.purge(filter);
    this.memory.purgeSync(filter);
    await this.#announce({
      kind: "purge",
      namespace: filter.namespace,
      tags: filter.tags,
      allTags: filter.allTags,
      olderThan: filter.olderThan,
    });
    return removed;
  }

  size(scope?: ClearScope): Promise<number> {
    return this.back.size(scope);
  }

  entries(scope: Scope): AsyncIterable<[key: string, entry: Entry]> {
    return this.back.entries(scope);
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    return this.back.subscribe?.(listener) ?? (() => {});
  }

  usage(namespace: string): { entries: number; bytes: number } {
    return this.back.usage?.(namespace) ?? this.memory.usage(namespace);
  }

  /** The back store's secret (shared by every process on it). */
  secret(name: string): Promise<string> {
    if (this.back.secret === undefined) {
      return Promise.reject(new Error(`infercache: the ${this.back.kind} store keeps no secrets`));
    }
    return this.back.secret(name);
  }

  /** The back store's health: the memory tier cannot be down, the store behind it can. */
  health(): StoreHealth {
    return this.back.health?.() ?? { state: "ok" };
  }

  async close(): Promise<void> {
    const unsubscribe = await this.#listening?.catch(() => undefined);
    unsubscribe?.();
    await this.memory.close();
    await this.back.close();
  }

  async #announce(message: Omit<InvalidationMessage, "origin">): Promise<void> {
    // A change that cannot be announced is still made; other processes' copies then live until
    // their own limits or TTL drop them. Failing the write for it would lose more.
    await this.#bus?.publishInvalidation(message).catch(() => {});
  }

  #invalidate(message: InvalidationMessage): void {
    if (message.kind === "key" && message.namespace !== undefined && message.key !== undefined) {
      const scope: Scope =
        message.session === null || message.session === undefined
          ? { namespace: message.namespace }
          : { namespace: message.namespace, session: message.session };
      this.memory.deleteSync(message.key, scope);
    } else if (message.kind === "purge") {
      try {
        this.memory.purgeSync({
          namespace: message.namespace,
          tags: message.tags,
          allTags: message.allTags,
          olderThan: message.olderThan,
        });
      } catch {
        // A filter this version refuses: drop the whole tier rather than keep what it named.
        this.memory.clearSync({ namespace: message.namespace });
      }
    } else if (message.kind === "clear") {
      this.memory.clearSync({ namespace: message.namespace, session: message.session });
    }
  }
}

function isBus(store: Store): store is Store & InvalidationBus {
  const candidate = store as Partial<InvalidationBus>;
  return (
    typeof candidate.publishInvalidation === "function" &&
    typeof candidate.onInvalidation === "function"
  );
}
