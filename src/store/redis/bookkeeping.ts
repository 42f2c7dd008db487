/**
 * RedisStore's bookkeeping: the per-scope index that lets clears, `size()` and listings find a
 * scope's entries without KEYS, kept exact under concurrency and under Redis's own eviction. Not
 * the entries themselves (the store reads and writes those).
 *
 * Index writes leave the hot path's critical section but not its round trip: a set sends its
 * entry (`SET`) at once, and the index members of every set of the same tick and scope follow in
 * one variadic `ZADD` (then `SADD` of the session), written right behind on the same connection.
 * The set resolves when both are acknowledged. The order makes the pair safe without a script: a
 * clear that runs between the `SET` and the `ZADD` does not see the entry and the `ZADD` then
 * indexes it (it was written after the clear began); a clear after the `ZADD` sees both. Only a
 * connection lost between the two can leave an entry unindexed; its set fails, and once Redis
 * answers again the entry is deleted (a miss, never a stale survivor of a later clear).
 *
 * Reads do not write: the keys a process read are batched into the index (`ZADD XX GT`) once a
 * second (`accessFlushMs`), for the LRU order of listings.
 *
 * Purge indexes. Each set also puts the entry's member in its namespace's creation-time index
 * (`{ns}:c`) and in one index per tag (`{ns}:t:<tag>`), scored by its creation time, in the same
 * batch (one script call per index key and tick). A delete, clear or eviction by this store
 * removes the member from `{ns}:c` with the entry; the tag indexes are not touched then (the
 * store does not know the old entry's tags without reading it), so a tag index may hold members
 * whose entry is gone, expired, or was rewritten without the tag. A purge checks each member
 * against `{ns}:c` (same creation time: the entry as it is now carries the tag) and drops the
 * stale ones it meets. Bounded: every index key's expiry is kept at the longest lifetime of the
 * entries written to it (persistent once one has none), so an index whose entries all expired
 * goes with them, and a purge of a tag empties and deletes that tag's index.
 *
 * Eviction. Under `maxmemory-policy allkeys-*` Redis may evict the index or the session and
 * namespace sets, and then a clear would leave the entries they listed behind. The store reads
 * the policy when it connects (INFO, else CONFIG GET; neither refusing is fatal) and, when it is
 * allkeys-*, also SCANs the database with the namespace's hash tag for clears, `size()` and
 * listings: exact, but O(keys in the database) instead of O(scope); it says so once in the log,
 * with the fix. `bookkeeping: "index" | "scan"` overrides the detection.
 */

import type { Clock } from "../../base/clock.js";
import type { ClearScope, Scope } from "../store.js";
import type { NodeSender, RedisArg } from "./client.js";
import type { Connection, RedisStoreLogger } from "./connection.js";
import { inScope, type RedisLayout } from "./layout.js";

/** How clears and `size()` find a scope's entries. */
export type BookkeepingMode = "auto" | "index" | "scan";

/** Members per ZSCAN/SCAN page and per DEL/MGET. */
export const CHUNK = 500;
/** Entries whose index write may have failed, remembered for deletion when Redis is back. */
const MAX_REPAIRS = 10_000;

/**
 * Adds members to a purge index and keeps its expiry at least `ARGV[1]` ms (0: none, for ever).
 * A key without an expiry holds a member that never expires, so it stays persistent. KEYS: the
 * index. ARGV: the lifetime, then score, member pairs.
 */
const INDEX_ADD = `local ttl = tonumber(ARGV[1])
local before = redis.call("PTTL", KEYS[1])
for i = 2, #ARGV, 1000 do
  redis.call("ZADD", KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if ttl == 0 then
  if before ~= -1 then redis.call("PERSIST", KEYS[1]) end
elseif before == -2 or (before >= 0 and before < ttl) then
  redis.call("PEXPIRE", KEYS[1], ttl)
end
return 1`;
/** Kept on a purge index beyond its longest-lived entry, ms: clocks and deadlines differ. */
const INDEX_MARGIN_MS = 60_000;

/** What `track` needs of an entry for the purge indexes. */
export interface TrackedEntry {
  createdAt: number;
  tags?: readonly string[] | undefined;
  /** The entry's lifetime from now, ms; 0 = none. */
  ttlMs: number;
}

/** One purge index's writes of a tick: its lifetime (0 = for ever) and score, member pairs. */
interface PurgeIndexBatch {
  namespace: string;
  ttl: number;
  pairs: string[];
}

/** KEYS: the session's index, the namespace's sessions. ARGV: the session. */
const FORGET_SESSION = `if redis.call("ZCARD", KEYS[1]) == 0 then redis.call("SREM", KEYS[2], ARGV[1]) end
return 1`;

interface IndexBatch {
  scope: Scope;
  indexKey: string;
  /** `ZADD <index> <score> <key> …` */
  args: RedisArg[];
  written: Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
}

export interface BookkeepingOptions {
  mode: BookkeepingMode;
  logger: RedisStoreLogger;
  clock: Clock;
}

export class Bookkeeping {
  readonly #conn: Connection;
  readonly #layout: RedisLayout;
  readonly #mode: BookkeepingMode;
  readonly #logger: RedisStoreLogger;
  readonly #clock: Clock;
  #scan: boolean;
  #detected: Promise<void> = Promise.resolve();
  #warned = false;
  readonly #knownNamespaces = new Set<string>();
  #batches: Map<string, IndexBatch> | undefined;
  /** This tick's purge-index writes, by index key (flushed with `#batches`). */
  #purgeBatches = new Map<string, PurgeIndexBatch>();
  /** Index members read since the last flush, with when: LRU order without a write per read. */
  #touches = new Map<string, Map<string, number>>();
  /** Entry keys to delete once Redis is back, by hash tag (one DEL per slot). */
  readonly #repairs = new Map<string, Set<string>>();
  #repairCount = 0;
  #lastTick = 0;

  constructor(conn: Connection, layout: RedisLayout, options: BookkeepingOptions) {
    this.#conn = conn;
    this.#layout = layout;
    this.#mode = options.mode;
    this.#logger = options.logger;
    this.#clock = options.clock;
    this.#scan = options.mode === "scan";
    conn.onChange((up) => {
      if (!up) return;
      this.#detected = this.#detect();
      this.#repair().catch(() => {});
    });
    if (conn.up) this.#detected = this.#detect();
  }

  /** Whether clears and `size()` also scan the database (the policy may evict the index). */
  get scanning(): boolean {
    return this.#scan;
  }

  /** Microseconds since the epoch, strictly increasing in this process (the index score). */
  tick(): number {
    this.#lastTick = Math.max(this.#lastTick + 1, this.#clock.now() * 1000);
    return this.#lastTick;
  }

  /**
   * Puts `key` in its scope's index, in this tick's batched write (issued after the tick's
   * entry writes); resolves once Redis acknowledged it.
   */
  track(scope: Scope, key: string, entry: TrackedEntry): Promise<void> {
    const indexKey = this.#layout.indexKey(scope);
    const member = this.#layout.member(scope, key);
    const score = String(entry.createdAt);
    this.#indexForPurge(this.#layout.createdKey(scope.namespace), scope, entry, score, member);
    if (entry.tags !== undefined) {
      for (const tag of entry.tags) {
        this.#indexForPurge(this.#layout.tagKey(scope.namespace, tag), scope, entry, score, member);
      }
    }
    let batches = this.#batches;
    if (batches === undefined) {
      batches = new Map();
      this.#batches = batches;
      process.nextTick(this.#flushBatches);
    }
    let batch = batches.get(indexKey);
    if (batch === undefined) {
      let resolve!: () => void;
      let reject!: (error: unknown) => void;
      const written = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      // A set whose entry write failed never awaits this; its rejection is not unhandled.
      written.catch(() => {});
      batch = { scope, indexKey, args: ["ZADD", indexKey], written, resolve, reject };
      batches.set(indexKey, batch);
    }
    batch.args.push(String(this.tick()), key);
    return batch.written;
  }

  #indexForPurge(
    indexKey: string,
    scope: Scope,
    entry: TrackedEntry,
    score: string,
    member: string,
  ): void {
    let batch = this.#purgeBatches.get(indexKey);
    if (batch === undefined) {
      batch = { namespace: scope.namespace, ttl: -1, pairs: [] };
      this.#purgeBatches.set(indexKey, batch);
    }
    const ttl = entry.ttlMs === 0 ? 0 : entry.ttlMs + INDEX_MARGIN_MS;
    if (batch.ttl !== 0) batch.ttl = ttl === 0 ? 0 : Math.max(batch.ttl, ttl);
    batch.pairs.push(score, member);
  }

  readonly #flushBatches = (): void => {
    const batches = this.#batches;
    this.#batches = undefined;
    if (batches === undefined) return;
    const driver = this.#conn.driver;
    const purgeBatches = this.#purgeBatches;
    this.#purgeBatches = new Map();
    const purgeWrites: Promise<unknown>[] = [];
    for (const [indexKey, batch] of purgeBatches) {
      const args = ["EVAL", INDEX_ADD, "1", indexKey, String(batch.ttl), ...batch.pairs];
      purgeWrites.push(this.#conn.run(() => driver.send(args, indexKey)));
    }
    for (const batch of batches.values()) {
      const { scope, indexKey } = batch;
      const writes: Promise<unknown>[] = [
        this.#conn.run(() => driver.send(batch.args, indexKey)),
        ...purgeWrites,
      ];
      const session = scope.session;
      if (session !== undefined) {
        const sessionsKey = this.#layout.sessionsKey(scope.namespace);
        writes.push(this.#conn.run(() => driver.send(["SADD", sessionsKey, session], sessionsKey)));
      }
      if (!this.#knownNamespaces.has(scope.namespace)) writes.push(this.#rememberNamespace(scope));
      (writes.length === 1 ? (writes[0] as Promise<unknown>) : Promise.all(writes)).then(
        () => batch.resolve(),
        (error: unknown) => {
          this.#needsRepair(batch);
          batch.reject(error);
        },
      );
    }
  };

  async #rememberNamespace(scope: Scope): Promise<void> {
    const key = this.#layout.namespacesKey;
    await this.#conn.run(() => this.#conn.driver.send(["SADD", key, scope.namespace], key));
    this.#knownNamespaces.add(scope.namespace);
  }

  #needsRepair(batch: IndexBatch): void {
    const tag = this.#layout.tag(batch.scope.namespace);
    let keys = this.#repairs.get(tag);
    if (keys === undefined) {
      keys = new Set();
      this.#repairs.set(tag, keys);
    }
    for (let i = 3; i < batch.args.length && this.#repairCount < MAX_REPAIRS; i += 2) {
      keys.add(this.#layout.entryKey(batch.scope, batch.args[i] as string));
      this.#repairCount++;
    }
  }

  /** Deletes the entries whose index write may have failed (their sets already failed). */
  async #repair(): Promise<void> {
    for (const [tag, keys] of this.#repairs) {
      const list = [...keys];
      for (let i = 0; i < list.length; i += CHUNK) {
        const chunk = list.slice(i, i + CHUNK);
        await this.#conn.run(() => this.#conn.driver.send(["DEL", ...chunk], chunk[0]));
      }
      this.#repairs.delete(tag);
      this.#repairCount -= list.length;
    }
  }

  /** Records a read, for the LRU order (written by `flushTouches`). */
  touch(scope: Scope, key: string): void {
    const indexKey = this.#layout.indexKey(scope);
    let keys = this.#touches.get(indexKey);
    if (keys === undefined) {
      keys = new Map();
      this.#touches.set(indexKey, keys);
    }
    keys.set(key, this.tick());
  }

  async flushTouches(): Promise<void> {
    if (this.#touches.size === 0) return;
    const touches = this.#touches;
    this.#touches = new Map();
    if (!this.#conn.up) return; // best effort: the order is a hint
    const driver = this.#conn.driver;
    await Promise.all(
      [...touches].map(([indexKey, keys]) => {
        // XX: a removed entry is not brought back; GT: a later write's score is kept.
        const args: RedisArg[] = ["ZADD", indexKey, "XX", "GT"];
        for (const [key, at] of keys) args.push(String(at), key);
        return this.#conn.run(() => driver.send(args, indexKey));
      }),
    );
  }

  /** Deletes entries and their index members; returns how many entries existed. */
  async remove(scope: Scope, keys: string[]): Promise<number> {
    if (keys.length === 0) return 0;
    const entryKeys = keys.map((key) => this.#layout.entryKey(scope, key));
    const indexKey = this.#layout.indexKey(scope);
    const members = keys.map((key) => this.#layout.member(scope, key));
    const replies = await this.#conn.run(() =>
      this.#conn.driver.transaction(indexKey, [
        ["DEL", ...entryKeys],
        ["ZREM", indexKey, ...keys],
        ["ZREM", this.#layout.createdKey(scope.namespace), ...members],
      ]),
    );
    return Number(replies[0] ?? 0);
  }

  async clear(scope: ClearScope | undefined): Promise<number> {
    await this.#detected;
    let removed = 0;
    for (const target of await this.#scopes(scope)) {
      for await (const keys of this.#indexChunks(target))
        removed += await this.remove(target, keys);
      if (target.session !== undefined) await this.#forgetSession(target);
    }
    if (this.#scan) {
      for (const [target, keys] of await this.#scanScopes(scope)) {
        for (let i = 0; i < keys.length; i += CHUNK) {
          removed += await this.remove(target, keys.slice(i, i + CHUNK));
        }
      }
    }
    return removed;
  }

  async size(scope: ClearScope | undefined): Promise<number> {
    await this.#detected;
    let total = 0;
    if (this.#scan) {
      for (const keys of (await this.#scanScopes(scope)).values()) total += keys.length;
      return total;
    }
    for (const target of await this.#scopes(scope)) {
      for await (const keys of this.#indexChunks(target))
        total += (await this.#prune(target, keys)).length;
    }
    return total;
  }

  /** The keys of one scope for a listing, least recently used first. */
  async keys(scope: Scope): Promise<string[]> {
    await this.flushTouches().catch(() => {});
    await this.#detected;
    const indexKey = this.#layout.indexKey(scope);
    const indexed = (await this.#conn.run(() =>
      this.#conn.driver.send(["ZRANGE", indexKey, "0", "-1"], indexKey),
    )) as string[];
    if (!this.#scan) return indexed;
    // Entries whose index member Redis evicted: no known last use, so listed first.
    const listed = new Set(indexed);
    const exact: ClearScope = { namespace: scope.namespace, session: scope.session ?? null };
    const [found] = [...(await this.#scanScopes(exact)).values()];
    const unindexed = (found ?? []).filter((key) => !listed.has(key));
    return [...unindexed, ...indexed];
  }

  /** The namespaces this store has written to (from the namespaces set). */
  async namespaces(): Promise<string[]> {
    const key = this.#layout.namespacesKey;
    return (await this.#conn.run(() => this.#conn.driver.send(["SMEMBERS", key], key))) as string[];
  }

  /** Every entry key of `scope` found by SCAN, by concrete scope (see `#scanScopes`). */
  scanScopes(scope: ClearScope): Promise<Map<Scope, string[]>> {
    return this.#scanScopes(scope);
  }

  /** Waits for the eviction-policy detection (whether to scan). */
  get detected(): Promise<void> {
    return this.#detected;
  }

  /** Drops a cleared session from its namespace's set, unless a set indexed a key meanwhile. */
  async #forgetSession(scope: Scope): Promise<void> {
    const indexKey = this.#layout.indexKey(scope);
    const sessionsKey = this.#layout.sessionsKey(scope.namespace);
    const session = scope.session as string;
    await this.#conn.run(() =>
      this.#conn.driver.send(
        ["EVAL", FORGET_SESSION, "2", indexKey, sessionsKey, session],
        indexKey,
      ),
    );
  }

  /** Keeps the index members whose entries still exist; returns them. */
  async #prune(scope: Scope, keys: string[]): Promise<string[]> {
    const indexKey = this.#layout.indexKey(scope);
    const replies = await this.#conn.run(() =>
      this.#conn.driver.transaction(
        indexKey,
        keys.map((key) => ["EXISTS", this.#layout.entryKey(scope, key)]),
      ),
    );
    const alive: string[] = [];
    const gone: string[] = [];
    for (const [i, key] of keys.entries()) (Number(replies[i]) === 1 ? alive : gone).push(key);
    if (gone.length > 0) {
      await this.#conn.run(() => this.#conn.driver.send(["ZREM", indexKey, ...gone], indexKey));
    }
    return alive;
  }

  async *#indexChunks(scope: Scope): AsyncIterable<string[]> {
    const indexKey = this.#layout.indexKey(scope);
    let cursor = "0";
    do {
      const [next, flat] = (await this.#conn.run(() =>
        this.#conn.driver.send(["ZSCAN", indexKey, cursor, "COUNT", String(CHUNK)], indexKey),
      )) as [string, string[]];
      cursor = String(next);
      const keys = flat.filter((_, i) => i % 2 === 0);
      if (keys.length > 0) yield keys;
    } while (cursor !== "0");
  }

  /** The concrete scopes a clear or size covers, from the namespace and session sets. */
  async #scopes(scope: ClearScope | undefined): Promise<Scope[]> {
    const driver = this.#conn.driver;
    const namespacesKey = this.#layout.namespacesKey;
    const namespaces =
      scope?.namespace !== undefined
        ? [scope.namespace]
        : ((await this.#conn.run(() =>
            driver.send(["SMEMBERS", namespacesKey], namespacesKey),
          )) as string[]);
    const scopes: Scope[] = [];
    for (const namespace of namespaces) {
      if (scope?.session === null) scopes.push({ namespace });
      else if (scope?.session !== undefined) scopes.push({ namespace, session: scope.session });
      else {
        scopes.push({ namespace });
        const sessionsKey = this.#layout.sessionsKey(namespace);
        const sessions = (await this.#conn.run(() =>
          driver.send(["SMEMBERS", sessionsKey], sessionsKey),
        )) as string[];
        for (const session of sessions) scopes.push({ namespace, session });
      }
    }
    return scopes;
  }

  /**
   * Every entry of `scope` found by SCAN on each master, grouped by concrete scope, each key
   * once (SCAN may return a key twice). Keys the pattern matches but the layout does not (a
   * name that looks like the layout) are left out by parsing each key exactly.
   */
  async #scanScopes(scope: ClearScope | undefined): Promise<Map<Scope, string[]>> {
    const pattern = this.#layout.entryPattern(scope);
    const seen = new Set<string>();
    const byScope = new Map<string, { scope: Scope; keys: string[] }>();
    const masters: NodeSender[] = await this.#conn.run(() => this.#conn.driver.masters());
    for (const send of masters) {
      let cursor = "0";
      do {
        const [next, found] = (await this.#conn.run(() =>
          send(["SCAN", cursor, "MATCH", pattern, "COUNT", "1000"]),
        )) as [string, string[]];
        cursor = String(next);
        for (const fullKey of found.map(String)) {
          if (seen.has(fullKey)) continue;
          seen.add(fullKey);
          const parsed = this.#layout.parseEntryKey(fullKey);
          if (parsed === undefined || !inScope(parsed.scope, scope)) continue;
          const id = this.#layout.indexKey(parsed.scope);
          let group = byScope.get(id);
          if (group === undefined) {
            group = { scope: parsed.scope, keys: [] };
            byScope.set(id, group);
          }
          group.keys.push(parsed.key);
        }
      } while (cursor !== "0");
    }
    return new Map([...byScope.values()].map((group) => [group.scope, group.keys]));
  }

  /** Reads the eviction policy of every master and picks index or index + scan. */
  async #detect(): Promise<void> {
    if (this.#mode !== "auto") return;
    let policies: (string | undefined)[];
    try {
      const masters = await this.#conn.run(() => this.#conn.driver.masters());
      policies = await Promise.all(masters.map((send) => this.#policyOf(send)));
    } catch {
      return; // Redis went away again; the next recovery detects
    }
    const evicting = policies.find((policy) => policy?.startsWith("allkeys-"));
    if (evicting !== undefined) {
      this.#scan = true;
      this.#warnOnce(
        `infercache: Redis at ${this.#conn.driver.target} evicts with maxmemory-policy ${evicting}, which can drop RedisStore's index; clears, size() and listings now also SCAN the database for the namespace's keys (exact, but O(keys in the database) instead of O(scope)). To keep them O(scope), set maxmemory-policy volatile-lru (or volatile-lfu) and give entries a \`ttl\`, so Redis evicts entries and never the index; \`bookkeeping: "scan"\` makes this choice explicit and silent.`,
      );
    } else if (policies.includes(undefined)) {
      this.#warnOnce(
        `infercache: RedisStore could not read maxmemory-policy from Redis at ${this.#conn.driver.target} (INFO and CONFIG GET refused); if it is allkeys-*, pass \`bookkeeping: "scan"\` so clears also find entries whose index Redis evicted.`,
      );
    } else {
      this.#scan = false;
    }
  }

  async #policyOf(send: NodeSender): Promise<string | undefined> {
    try {
      const info = String(await this.#conn.run(() => send(["INFO", "memory"])));
      const match = /maxmemory_policy:(\S+)/.exec(info);
      if (match !== null) return match[1];
    } catch {
      // INFO may be renamed or denied; CONFIG may still answer
    }
    try {
      const reply = (await this.#conn.run(() => send(["CONFIG", "GET", "maxmemory-policy"]))) as
        | unknown[]
        | Record<string, unknown>;
      const value = Array.isArray(reply) ? reply[1] : reply["maxmemory-policy"];
      return value === undefined ? undefined : String(value);
    } catch {
      return undefined;
    }
  }

  #warnOnce(message: string): void {
    if (this.#warned) return;
    this.#warned = true;
    this.#logger.warn(message);
  }
}
