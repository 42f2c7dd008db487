/**
 * Keyv interop, both ways.
 *
 * - `toKeyv(store)`: any infercache store as a Keyv storage adapter (`new Keyv({ store:
 *   toKeyv(sqliteStore) })`). Keyv's namespace maps to a store namespace, so `clear()` clears only
 *   it. It passes `@keyv/test-suite`.
 * - `fromKeyv(keyv)`: any Keyv instance (Postgres, Mongo, DynamoDB… adapters) as an infercache
 *   store. Entries travel as the checksummed envelope, base64-encoded, so any Keyv serializer
 *   carries them; scoped clears and listings need a Keyv store with `iterator()`. `purge` is a
 *   scan: Keyv has no secondary index, so it reads every entry of the namespace (or the store)
 *   through `iterator()` and decodes each to test the filter.
 */

import { scopeId } from "./address.js";
import { CorruptEntryError, decodeEntry, encodeOrRefuse } from "./envelope.js";
import type { ClearScope, Entry, PurgeFilter, Scope, SetOutcome, Store } from "./store.js";
import { StoreError } from "./store.js";
import { checkPurgeFilter, matchesPurge } from "./tags.js";

/** The parts of a Keyv storage adapter Keyv uses. */
export interface KeyvAdapter {
  opts: Record<string, unknown>;
  namespace?: string | undefined;
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown, ttl?: number): Promise<boolean>;
  delete(key: string): Promise<boolean>;
  clear(): Promise<void>;
  has(key: string): Promise<boolean>;
  getMany(keys: string[]): Promise<unknown[]>;
  deleteMany(keys: string[]): Promise<boolean>;
  iterator(namespace?: string): AsyncGenerator<[string, unknown], void>;
  disconnect(): Promise<void>;
  on(event: string, listener: (...args: unknown[]) => void): KeyvAdapter;
}

export interface ToKeyvOptions {
  /** Namespace prefix in the store for everything Keyv writes. @default "keyv" */
  namespace?: string;
}

export function toKeyv(store: Store, options: ToKeyvOptions = {}): KeyvAdapter {
  const base = options.namespace ?? "keyv";
  const listeners = new Map<string, Set<(...args: unknown[]) => void>>();
  const scopeOf = (namespace: string | undefined): Scope => ({
    namespace: namespace === undefined || namespace === "" ? base : `${base}:${namespace}`,
  });
  const adapter: KeyvAdapter = {
    // Keyv reads `opts.url` and enables `iterator()` only for the backends it names (sqlite,
    // redis, …): ours names the store that really holds the data.
    opts: { dialect: `infercache-${store.kind}`, url: `infercache+${store.kind}://` },
    namespace: undefined,
    async get(key) {
      return (await store.get(key, scopeOf(adapter.namespace)))?.value;
    },
    async set(key, value, ttl) {
      const createdAt = Date.now();
      const entry: Entry = { value, createdAt };
      if (typeof ttl === "number" && ttl > 0) entry.expiresAt = createdAt + ttl;
      return (await store.set(key, scopeOf(adapter.namespace), entry)) === "stored";
    },
    async delete(key) {
      return store.delete(key, scopeOf(adapter.namespace));
    },
    async clear() {
      await store.clear({ namespace: scopeOf(adapter.namespace).namespace });
    },
    async has(key) {
      return (await store.get(key, scopeOf(adapter.namespace))) !== undefined;
    },
    async getMany(keys) {
      return Promise.all(keys.map((key) => adapter.get(key)));
    },
    async deleteMany(keys) {
      const results = await Promise.all(keys.map((key) => adapter.delete(key)));
      return results.some(Boolean);
    },
    async *iterator(namespace) {
      for await (const [key, entry] of store.entries(scopeOf(namespace ?? adapter.namespace))) {
        yield [key, entry.value];
      }
    },
    async disconnect() {
      await store.close();
    },
    on(event, listener) {
      let set = listeners.get(event);
      if (set === undefined) {
        set = new Set();
        listeners.set(event, set);
      }
      set.add(listener);
      return adapter;
    },
  };
  return adapter;
}

/** The parts of a Keyv instance `fromKeyv` uses. */
export interface KeyvLike {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown, ttl?: number): Promise<unknown>;
  delete(key: string): Promise<boolean>;
  clear(): Promise<void>;
  iterator?: ((namespace?: string) => AsyncIterable<[string, unknown]>) | undefined;
  disconnect?(): Promise<void>;
}

export function fromKeyv(keyv: KeyvLike): Store {
  if (typeof keyv?.get !== "function" || typeof keyv.set !== "function") {
    throw new TypeError("fromKeyv() takes a Keyv instance: fromKeyv(new Keyv({ store: adapter }))");
  }
  return new KeyvBackedStore(keyv);
}

class KeyvBackedStore implements Store {
  readonly kind = "keyv";
  readonly #keyv: KeyvLike;

  constructor(keyv: KeyvLike) {
    this.#keyv = keyv;
  }

  async get(key: string, scope: Scope): Promise<Entry | undefined> {
    const stored = await this.#keyv.get(address(scope, key));
    if (typeof stored !== "string") return undefined;
    try {
      const entry = decodeEntry(Buffer.from(stored, "base64"));
      if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) return undefined;
      return entry;
    } catch (error) {
      if (!(error instanceof CorruptEntryError)) throw error;
      await this.#keyv.delete(address(scope, key));
      return undefined;
    }
  }

  async set(key: string, scope: Scope, entry: Entry): Promise<SetOutcome> {
    const bytes = encodeOrRefuse(entry);
    if (bytes === "not-serializable") return bytes;
    const ttl =
      entry.expiresAt === undefined
        ? undefined
        : Math.max(1, Math.ceil(entry.expiresAt - Date.now()));
    await this.#keyv.set(address(scope, key), bytes.toString("base64"), ttl);
    return "stored";
  }

  async delete(key: string, scope: Scope): Promise<boolean> {
    return this.#keyv.delete(address(scope, key));
  }

  async clear(scope?: ClearScope): Promise<number> {
    if (scope?.namespace === undefined && scope?.session === undefined) {
      const count = this.#keyv.iterator === undefined ? 0 : await this.size();
      await this.#keyv.clear();
      return count;
    }
    let removed = 0;
    for (const key of await this.#matching(scope)) if (await this.#keyv.delete(key)) removed++;
    return removed;
  }

  /** A scan (see the module header): every entry in scope is read and decoded. */
  async purge(filter: PurgeFilter): Promise<number> {
    const checked = checkPurgeFilter(filter);
    const now = Date.now();
    let removed = 0;
    for (const stored of await this.#matching({ namespace: checked.namespace })) {
      const parsed = parse(stored);
      const raw = await this.#keyv.get(stored);
      if (parsed === undefined || typeof raw !== "string") continue;
      let entry: Entry;
      try {
        entry = decodeEntry(Buffer.from(raw, "base64"));
      } catch (error) {
        if (!(error instanceof CorruptEntryError)) throw error;
        continue;
      }
      if (entry.expiresAt !== undefined && entry.expiresAt <= now) continue;
      if (!matchesPurge(entry, parsed.namespace, checked)) continue;
      if (await this.#keyv.delete(stored)) removed++;
    }
    return removed;
  }

  async size(scope?: ClearScope): Promise<number> {
    return (await this.#matching(scope)).length;
  }

  async *entries(scope: Scope): AsyncIterable<[key: string, entry: Entry]> {
    const prefix = scopeId(scope);
    for (const stored of await this.#matching({
      namespace: scope.namespace,
      session: scope.session ?? null,
    })) {
      const key = stored.slice(prefix.length);
      const entry = await this.get(key, scope);
      if (entry !== undefined) yield [key, entry];
    }
  }

  async close(): Promise<void> {
    await this.#keyv.disconnect?.();
  }

  async #matching(scope: ClearScope | undefined): Promise<string[]> {
    const iterator = this.#keyv.iterator;
    if (typeof iterator !== "function") {
      throw new StoreError(
        "list entries",
        "keyv",
        new Error("this Keyv store has no iterator(); scoped clear, size and keys() need one"),
      );
    }
    const keys: string[] = [];
    for await (const [stored] of iterator.call(this.#keyv)) {
      const parsed = parse(stored);
      if (parsed === undefined) continue;
      if (scope?.namespace !== undefined && parsed.namespace !== scope.namespace) continue;
      if (scope?.session === null && parsed.session !== undefined) continue;
      if (typeof scope?.session === "string" && parsed.session !== scope.session) continue;
      keys.push(stored);
    }
    return keys;
  }
}

function address(scope: Scope, key: string): string {
  return scopeId(scope, key);
}

function parse(stored: string): { namespace: string; session?: string } | undefined {
  const colon = stored.indexOf(":");
  const length = Number(stored.slice(0, colon));
  if (!Number.isSafeInteger(length)) return undefined;
  const namespace = stored.slice(colon + 1, colon + 1 + length);
  let rest = stored.slice(colon + 1 + length);
  if (!rest.startsWith("|")) return undefined;
  rest = rest.slice(1);
  if (rest.startsWith("-|")) return { namespace };
  if (!rest.startsWith("s")) return undefined;
  const sessionColon = rest.indexOf(":");
  const sessionLength = Number(rest.slice(1, sessionColon));
  if (!Number.isSafeInteger(sessionLength)) return undefined;
  return { namespace, session: rest.slice(sessionColon + 1, sessionColon + 1 + sessionLength) };
}
