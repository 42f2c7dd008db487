/**
 * `RedisStore`: entries shared by every process and machine behind one Redis or Valkey (single
 * node or Cluster), with TTL, namespaces, sessions, cross-process single-flight and fail-open
 * behaviour.
 *
 * Layout. Every key of a namespace carries the same hash tag, `{<length>:<namespace>}`, so one
 * namespace lives in one cluster slot and its writes can be transactions. The length prefix keeps
 * keys unambiguous whatever characters a namespace, session or key holds.
 *   <prefix>{ns}:e:<session>:<key>   the entry (an envelope, PX for TTL)
 *   <prefix>{ns}:i:<session>         sorted set of the scope's keys, scored by write time
 *   <prefix>{ns}:s                   set of the namespace's sessions
 *   <prefix>{ns}:l:<session>:<key>   single-flight lock
 *   <prefix>namespaces               set of namespaces (for clears across namespaces)
 * Clears walk the index sets (ZSCAN), never KEYS. Redis does its own memory eviction
 * (maxmemory-policy); entries it drops leave index members that reads and clears prune.
 *
 * Fail-open. The client's offline queue is off and every command has a deadline
 * (`commandTimeoutMs`, default 300 ms), so with Redis down, slow or unreachable a call fails
 * fast; the cache layer then runs the function uncached and counts the error. The client
 * reconnects on its own and caching resumes.
 */

import { randomUUID } from "node:crypto";
import type { Cluster, Redis, RedisOptions } from "ioredis";
import { type Clock, systemClock } from "../base/clock.js";
import { type Duration, parseDuration } from "../base/duration.js";
import { loadPeer } from "../base/optional-peer.js";
import { positiveMilliseconds } from "../base/validate.js";
import { CorruptEntryError, decodeEntry, encodeOrRefuse } from "./envelope.js";
import {
  type ClearScope,
  type Entry,
  type FlightCoordinator,
  type FlightLease,
  type InvalidationBus,
  type InvalidationMessage,
  type Scope,
  type SetOutcome,
  type Store,
  type StoreEvent,
  withDefaultTtl,
} from "./store.js";

type Client = Redis | Cluster;

export interface RedisStoreOptions {
  /** Where Redis is, e.g. `"redis://127.0.0.1:6379"`. Give either `url` or `client`. */
  url?: string;
  /** A client of your own (Redis or Cluster); it is not closed by `close()`. */
  client?: Client;
  /** Prefix of every key this store writes. @default "infercache:" */
  prefix?: string;
  /** Expiry for entries written without their own `expiresAt`: ms or `"1d"`. @default never */
  ttl?: Duration;
  /** Deadline of each command, ms: past it the call goes on uncached. @default 300 */
  commandTimeoutMs?: number;
  /** How often reads are written to the LRU order (one pipeline), ms. @default 1000 */
  accessFlushMs?: number;
  /** How long a cross-process computation may hold its lock, ms. @default 30000 */
  lockTtlMs?: number;
  clock?: Clock;
}

/** Raised when Redis does not answer in time; the cache layer treats it as a store error. */
export class RedisTimeoutError extends Error {
  override readonly name = "RedisTimeoutError";
}

/** KEYS: entry, index, sessions. ARGV: bytes, ttl ms (0 = none), index score, key, session. */
const SET_SCRIPT = `
if ARGV[2] == "0" then redis.call("SET", KEYS[1], ARGV[1]) else redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2]) end
redis.call("ZADD", KEYS[2], ARGV[3], ARGV[4])
if ARGV[5] ~= "" then redis.call("SADD", KEYS[3], ARGV[5]) end
return 1`;

interface ScriptCommands {
  infercacheSet(...args: (string | number | Buffer)[]): Promise<unknown>;
}

const RELEASE = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`;
const CHUNK = 500;

export class RedisStore implements Store, InvalidationBus {
  readonly kind = "redis";
  readonly prefix: string;
  readonly ttl: number;
  readonly commandTimeoutMs: number;
  readonly flights: FlightCoordinator;
  readonly #client: Client;
  readonly #owned: boolean;
  readonly #clock: Clock;
  readonly #lockTtlMs: number;
  readonly #knownNamespaces = new Set<string>();
  readonly #listeners = new Set<(event: StoreEvent) => void>();
  readonly #waiters = new Map<string, Set<() => void>>();
  readonly #invalidationListeners = new Set<(message: InvalidationMessage) => void>();
  #subscriber: Client | undefined;
  #everReady = false;
  #firstConnection: Promise<void> | undefined;
  /** Index members read since the last flush, with when: LRU order without a write per read. */
  #touches = new Map<string, Map<string, number>>();
  readonly #touchTimer: NodeJS.Timeout;
  #lastTick = 0;
  readonly #pending = new Set<Promise<unknown>>();
  #subscribed: Promise<void> | undefined;
  readonly #id = randomUUID();

  constructor(options: RedisStoreOptions) {
    if ((options?.url === undefined) === (options?.client === undefined)) {
      throw new TypeError(
        'new RedisStore() needs exactly one of `url` (e.g. "redis://127.0.0.1:6379") or `client` (an ioredis Redis or Cluster)',
      );
    }
    this.prefix = options.prefix ?? "infercache:";
    this.ttl = options.ttl === undefined ? 0 : parseDuration(options.ttl, "ttl");
    this.commandTimeoutMs = positiveMilliseconds(
      options.commandTimeoutMs ?? 300,
      "commandTimeoutMs",
    );
    this.#lockTtlMs = positiveMilliseconds(options.lockTtlMs ?? 30_000, "lockTtlMs");
    this.#clock = options.clock ?? systemClock;
    if (options.client !== undefined) {
      this.#client = options.client;
      this.#owned = false;
    } else {
      const RedisClass = loadPeer<{ Redis: new (url: string, options: RedisOptions) => Redis }>(
        "ioredis",
        "redis",
      ).Redis;
      this.#client = new RedisClass(options.url as string, clientOptions(this.commandTimeoutMs));
      this.#owned = true;
    }
    this.#client.defineCommand("infercacheSet", { numberOfKeys: 3, lua: SET_SCRIPT });
    // Errors surface through the calls that meet them; an unhandled 'error' event would crash.
    this.#client.on("error", () => {});
    this.#touchTimer = setInterval(() => {
      this.#flushTouches().catch(() => {});
    }, options.accessFlushMs ?? 1000);
    this.#touchTimer.unref();
    this.flights = {
      acquire: (key, scope) => this.#acquire(key, scope),
      waitFor: (key, scope, timeoutMs) => this.#waitFor(key, scope, timeoutMs),
    };
  }

  /** Resolves once the connection is up (calls before then run uncached). */
  async ready(timeoutMs = 5000): Promise<void> {
    const client = this.#client;
    if (client.status === "ready") return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        client.off("ready", onReady);
        reject(
          new RedisTimeoutError(
            `infercache: Redis was not ready after ${timeoutMs} ms (status ${client.status})`,
          ),
        );
      }, timeoutMs);
      const onReady = () => {
        clearTimeout(timer);
        resolve();
      };
      client.once("ready", onReady);
    });
  }

  async get(key: string, scope: Scope): Promise<Entry | undefined> {
    if (!this.#everReady) await this.#connected();
    this.#adapt();
    const bytes = await this.#timed(this.#client.getBuffer(this.#entryKey(scope, key)));
    if (bytes === null) return undefined;
    let entry: Entry;
    try {
      entry = decodeEntry(bytes);
    } catch (error) {
      if (!(error instanceof CorruptEntryError)) throw error;
      await this.#remove(scope, [key]);
      this.#emit({ type: "evict", reason: "corrupt", scope, key });
      return undefined;
    }
    if (entry.expiresAt !== undefined && entry.expiresAt <= this.#clock.now()) return undefined;
    this.#touch(this.#indexKey(scope), key);
    return entry;
  }

  async set(key: string, scope: Scope, entry: Entry): Promise<SetOutcome> {
    entry = withDefaultTtl(entry, this.ttl);
    const bytes = encodeOrRefuse(entry);
    if (bytes === "not-serializable") return bytes;
    if (!this.#everReady) await this.#connected();
    this.#adapt();
    let ttl = 0;
    if (entry.expiresAt !== undefined) {
      ttl = Math.ceil(entry.expiresAt - this.#clock.now());
      if (ttl <= 0) return "stored"; // already expired: nothing to keep
    }
    // One script, one round trip: the entry, its index member and its session, atomically.
    await this.#timed(
      (this.#client as unknown as ScriptCommands).infercacheSet(
        this.#entryKey(scope, key),
        this.#indexKey(scope),
        this.#sessionsKey(scope.namespace),
        bytes,
        ttl,
        this.#tick(),
        key,
        scope.session ?? "",
      ),
    );
    await this.#rememberNamespace(scope.namespace);
    return "stored";
  }

  async delete(key: string, scope: Scope): Promise<boolean> {
    if (!this.#everReady) await this.#connected();
    return (await this.#remove(scope, [key])) > 0;
  }

  async clear(scope?: ClearScope): Promise<number> {
    if (!this.#everReady) await this.#connected();
    let removed = 0;
    for (const target of await this.#scopes(scope)) removed += await this.#clearScope(target);
    return removed;
  }

  async size(scope?: ClearScope): Promise<number> {
    if (!this.#everReady) await this.#connected();
    let total = 0;
    for (const target of await this.#scopes(scope)) {
      for await (const keys of this.#indexChunks(target))
        total += (await this.#prune(target, keys)).length;
    }
    return total;
  }

  async *entries(scope: Scope): AsyncIterable<[key: string, entry: Entry]> {
    if (!this.#everReady) await this.#connected();
    await this.#flushTouches();
    const keys = (await this.#timed(
      this.#client.zrange(this.#indexKey(scope), "0", "-1"),
    )) as string[];
    for (let i = 0; i < keys.length; i += CHUNK) {
      const chunk = keys.slice(i, i + CHUNK);
      const values = (await this.#timed(
        this.#client.mgetBuffer(...chunk.map((key) => this.#entryKey(scope, key))),
      )) as (Buffer | null)[];
      const gone: string[] = [];
      for (const [j, bytes] of values.entries()) {
        const key = chunk[j] as string;
        if (bytes === null) {
          gone.push(key);
          continue;
        }
        try {
          yield [key, decodeEntry(bytes)];
        } catch (error) {
          if (!(error instanceof CorruptEntryError)) throw error;
          gone.push(key);
        }
      }
      if (gone.length > 0) await this.#remove(scope, gone);
    }
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Tells other processes' memory tiers that entries changed (TieredStore). */
  async publishInvalidation(message: Omit<InvalidationMessage, "origin">): Promise<void> {
    const payload = JSON.stringify({ ...message, origin: this.#id });
    await this.#timed(this.#client.publish(this.#channel("invalidate"), payload));
  }

  /** Listens to other processes' invalidations (not this store's own). */
  async onInvalidation(listener: (message: InvalidationMessage) => void): Promise<() => void> {
    this.#invalidationListeners.add(listener);
    await this.#ensureSubscriber();
    return () => this.#invalidationListeners.delete(listener);
  }

  async close(): Promise<void> {
    clearInterval(this.#touchTimer);
    await this.#flushTouches().catch(() => {});
    // Let writes already under way land (each is bounded by its deadline).
    do {
      await Promise.allSettled([...this.#pending]);
      // A finished write may start a follow-up (releasing a lock) on the next turn.
      await new Promise((resolve) => setImmediate(resolve));
    } while (this.#pending.size > 0);
    for (const waiters of this.#waiters.values()) for (const wake of waiters) wake();
    this.#waiters.clear();
    this.#subscriber?.disconnect();
    if (this.#owned) this.#client.disconnect();
  }

  async #acquire(key: string, scope: Scope): Promise<FlightLease | undefined> {
    if (!this.#everReady) await this.#connected();
    const lockKey = this.#lockKey(scope, key);
    const token = randomUUID();
    const got = await this.#timed(
      this.#client.set(lockKey, token, "PX", Math.ceil(this.#lockTtlMs), "NX"),
    );
    if (got !== "OK") return undefined;
    return {
      release: async () => {
        await this.#timed(this.#client.eval(RELEASE, 1, lockKey, token));
        await this.#timed(this.#client.publish(this.#channel("done"), lockKey));
      },
    };
  }

  /** Waits until the computation holding the lock finishes (or `timeoutMs` passes). */
  async #waitFor(key: string, scope: Scope, timeoutMs: number): Promise<void> {
    const lockKey = this.#lockKey(scope, key);
    await this.#ensureSubscriber();
    let wake!: () => void;
    const done = new Promise<void>((resolve) => {
      wake = resolve;
    });
    let waiters = this.#waiters.get(lockKey);
    if (waiters === undefined) {
      waiters = new Set();
      this.#waiters.set(lockKey, waiters);
    }
    waiters.add(wake);
    const timer = setTimeout(wake, timeoutMs);
    try {
      // The lock may have gone between the failed acquire and the subscription.
      if ((await this.#timed(this.#client.exists(lockKey))) === 0) return;
      await done;
    } finally {
      clearTimeout(timer);
      waiters.delete(wake);
      if (waiters.size === 0) this.#waiters.delete(lockKey);
    }
  }

  #ensureSubscriber(): Promise<void> {
    if (this.#subscribed !== undefined) return this.#subscribed;
    // The subscriber queues its SUBSCRIBE until connected; command deadlines still bound callers.
    const client = this.#client;
    const subscriber = (
      "isCluster" in client && client.isCluster
        ? (client as Cluster).duplicate(undefined, { enableOfflineQueue: true })
        : (client as Redis).duplicate({ enableOfflineQueue: true })
    ) as Client;
    subscriber.on("error", () => {});
    this.#subscriber = subscriber;
    const done = this.#channel("done");
    const invalidate = this.#channel("invalidate");
    subscriber.on("message", (channel: string, message: string) => {
      if (channel === done) {
        for (const wake of this.#waiters.get(message) ?? []) wake();
      } else if (channel === invalidate) {
        const parsed = JSON.parse(message) as InvalidationMessage;
        if (parsed.origin === this.#id) return;
        for (const listener of this.#invalidationListeners) listener(parsed);
      }
    });
    this.#subscribed = this.#timed(subscriber.subscribe(done, invalidate), 5000).then(
      () => undefined,
      (error: unknown) => {
        this.#subscribed = undefined;
        throw error;
      },
    );
    return this.#subscribed;
  }

  async #clearScope(scope: Scope): Promise<number> {
    let removed = 0;
    for await (const keys of this.#indexChunks(scope)) removed += await this.#remove(scope, keys);
    await this.#timed(this.#client.del(this.#indexKey(scope)));
    if (scope.session !== undefined) {
      await this.#timed(this.#client.srem(this.#sessionsKey(scope.namespace), scope.session));
    }
    return removed;
  }

  /** Deletes entries and their index members; returns how many entries existed. */
  async #remove(scope: Scope, keys: string[]): Promise<number> {
    if (keys.length === 0) return 0;
    const multi = this.#client.multi();
    multi.del(...keys.map((key) => this.#entryKey(scope, key)));
    multi.zrem(this.#indexKey(scope), ...keys);
    const results = (await this.#timed(multi.exec())) as [Error | null, number][] | null;
    return results?.[0]?.[1] ?? 0;
  }

  /** Keeps the index members whose entries still exist; returns them. */
  async #prune(scope: Scope, keys: string[]): Promise<string[]> {
    const pipeline = this.#client.multi();
    for (const key of keys) pipeline.exists(this.#entryKey(scope, key));
    const results = ((await this.#timed(pipeline.exec())) ?? []) as [Error | null, number][];
    const alive: string[] = [];
    const gone: string[] = [];
    for (const [i, key] of keys.entries()) (results[i]?.[1] === 1 ? alive : gone).push(key);
    if (gone.length > 0) await this.#timed(this.#client.zrem(this.#indexKey(scope), ...gone));
    return alive;
  }

  async *#indexChunks(scope: Scope): AsyncIterable<string[]> {
    let cursor = "0";
    do {
      const [next, flat] = (await this.#timed(
        this.#client.zscan(this.#indexKey(scope), cursor, "COUNT", CHUNK),
      )) as [string, string[]];
      cursor = next;
      const keys = flat.filter((_, i) => i % 2 === 0);
      if (keys.length > 0) yield keys;
    } while (cursor !== "0");
  }

  /** The concrete scopes a clear or size covers. */
  async #scopes(scope: ClearScope | undefined): Promise<Scope[]> {
    const namespaces =
      scope?.namespace !== undefined
        ? [scope.namespace]
        : ((await this.#timed(this.#client.smembers(`${this.prefix}namespaces`))) as string[]);
    const scopes: Scope[] = [];
    for (const namespace of namespaces) {
      if (scope?.session === null) scopes.push({ namespace });
      else if (scope?.session !== undefined) scopes.push({ namespace, session: scope.session });
      else {
        scopes.push({ namespace });
        const sessions = (await this.#timed(
          this.#client.smembers(this.#sessionsKey(namespace)),
        )) as string[];
        for (const session of sessions) scopes.push({ namespace, session });
      }
    }
    return scopes;
  }

  async #rememberNamespace(namespace: string): Promise<void> {
    if (this.#knownNamespaces.has(namespace)) return;
    await this.#timed(this.#client.sadd(`${this.prefix}namespaces`, namespace));
    this.#knownNamespaces.add(namespace);
  }

  #touch(indexKey: string, key: string): void {
    let keys = this.#touches.get(indexKey);
    if (keys === undefined) {
      keys = new Map();
      this.#touches.set(indexKey, keys);
    }
    keys.set(key, this.#tick());
  }

  async #flushTouches(): Promise<void> {
    if (this.#touches.size === 0) return;
    const touches = this.#touches;
    this.#touches = new Map();
    // One pipeline per index: on a cluster a pipeline must stay within one slot.
    const flushes: Promise<unknown>[] = [];
    for (const [indexKey, keys] of touches) {
      const pipeline = this.#client.pipeline();
      // XX: only members that still exist; a removed entry is not brought back.
      for (const [key, at] of keys) pipeline.zadd(indexKey, "XX", at, key);
      flushes.push(this.#timed(pipeline.exec()));
    }
    await Promise.all(flushes);
  }

  /** Microseconds since the epoch, strictly increasing in this process (the index score). */
  #tick(): number {
    this.#lastTick = Math.max(this.#lastTick + 1, Date.now() * 1000);
    return this.#lastTick;
  }

  #emit(event: StoreEvent): void {
    for (const listener of this.#listeners) listener(event);
  }

  #tag(namespace: string): string {
    return `${this.prefix}{${namespace.length}:${namespace}}`;
  }

  #entryKey(scope: Scope, key: string): string {
    return `${this.#tag(scope.namespace)}:e:${sessionPart(scope)}:${key}`;
  }

  #lockKey(scope: Scope, key: string): string {
    return `${this.#tag(scope.namespace)}:l:${sessionPart(scope)}:${key}`;
  }

  #indexKey(scope: Scope): string {
    return `${this.#tag(scope.namespace)}:i:${sessionPart(scope)}`;
  }

  #sessionsKey(namespace: string): string {
    return `${this.#tag(namespace)}:s`;
  }

  #channel(name: string): string {
    return `${this.prefix}${name}`;
  }

  /**
   * Before the first connection is up, a command waits for it (within its deadline) instead of
   * failing at once: a store used right after construction still caches. Once connected, a lost
   * connection fails commands fast until the client reconnects.
   */
  #connected(): Promise<void> | undefined {
    if (this.#everReady || this.#client.status === "ready") {
      this.#everReady = true;
      return undefined;
    }
    this.#firstConnection ??= this.ready(this.commandTimeoutMs).then(
      () => {
        this.#everReady = true;
      },
      () => {
        this.#firstConnection = undefined;
      },
    );
    return this.#firstConnection;
  }

  /**
   * Gives a command a deadline, so a slow or dead Redis cannot hold a call. Our own client has
   * ioredis's `commandTimeout` set, so only a client of the caller's gets a timer of ours (two
   * timers per command would cost throughput for nothing).
   */
  #timed<T>(command: Promise<T>, deadlineMs = this.commandTimeoutMs): Promise<T> {
    if (this.#owned && deadlineMs === this.commandTimeoutMs) return this.#track(command);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new RedisTimeoutError(`infercache: Redis did not answer within ${deadlineMs} ms`)),
        deadlineMs,
      );
    });
    return this.#track(Promise.race([command, deadline]).finally(() => clearTimeout(timer)));
  }

  /**
   * Adaptive pipelining for our own client: a command issued while others are in flight joins
   * the next batched write (throughput under load); a command on an idle connection goes out at
   * once (auto-pipelining would delay it to the next tick, ~10–20 µs of latency for nothing).
   */
  #adapt(): void {
    if (this.#owned)
      (this.#client.options as { enableAutoPipelining?: boolean }).enableAutoPipelining =
        this.#pending.size > 0;
  }

  /** Remembers a command until it settles, so `close()` can let it land. */
  #track<T>(command: Promise<T>): Promise<T> {
    this.#pending.add(command);
    const forget = () => {
      this.#pending.delete(command);
    };
    command.then(forget, forget);
    return command;
  }
}

function sessionPart(scope: Scope): string {
  return scope.session === undefined ? "-" : `s${scope.session.length}:${scope.session}`;
}

function clientOptions(commandTimeout: number): RedisOptions {
  return {
    commandTimeout,
    connectTimeout: 2000,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(50 * 2 ** times, 1000),
  };
}
