/**
 * `RedisStore`: entries shared by every process and machine behind one Redis or Valkey (single
 * node or Cluster), through node-redis or ioredis, with TTL, namespaces, sessions,
 * cross-process single-flight and fail-open behaviour. This file is the Store itself; the key
 * layout, the client, the breaker, the index, locks and pub/sub live beside it.
 *
 * Fail-open. Every command has a deadline (`commandTimeoutMs`) and a circuit breaker stands in
 * front of all of them (connection.ts): with Redis down, silent or unreachable, the first call
 * finds out within a deadline and every call after it fails at once, so `cache(fn)` runs
 * uncached at the function's own speed and counts the error. A background probe finds Redis
 * again and caching resumes. `health()` says which state the store is in, for `/healthz`.
 */

import { randomBytes, randomUUID } from "node:crypto";
import { type Clock, systemClock } from "../../base/clock.js";
import { type Duration, parseDuration } from "../../base/duration.js";
import { positiveMilliseconds } from "../../base/validate.js";
import { CorruptEntryError, decodeEntry, encodeOrRefuse } from "../envelope.js";
import {
  type ClearScope,
  type Entry,
  type FlightCoordinator,
  type InvalidationBus,
  type InvalidationMessage,
  isExpired,
  type PurgeFilter,
  type Scope,
  type SetOutcome,
  type Store,
  type StoreEvent,
  type StoreHealth,
  withDefaultTtl,
} from "../store.js";
import { checkPurgeFilter } from "../tags.js";
import { Bookkeeping, type BookkeepingMode, CHUNK } from "./bookkeeping.js";
import { driverFor, driverForUrl, type RedisClient, type RedisDriver } from "./client.js";
import { Connection, consoleLogger, type RedisStoreLogger } from "./connection.js";
import { RedisFlights } from "./flights.js";
import { RedisLayout } from "./layout.js";
import { RedisSubscriber } from "./pubsub.js";
import { RedisPurge } from "./purge.js";

/** What every RedisStore takes, besides where Redis is (`url` or `client`). */
export interface RedisStoreBaseOptions {
  /** Prefix of every key this store writes. @default "infercache:" */
  prefix?: string;
  /** Expiry for entries written without their own `expiresAt`: ms or `"1d"`. @default never */
  ttl?: Duration;
  /**
   * Deadline of each command, ms. A call past it goes on uncached, and the store takes Redis to
   * be down (every call uncached at once) until a background probe gets an answer. @default 300
   */
  commandTimeoutMs?: number;
  /** How often reads are written to the LRU order (one command per scope), ms. @default 1000 */
  accessFlushMs?: number;
  /** How long a cross-process computation may hold its lock, ms. @default 30000 */
  lockTtlMs?: number;
  /**
   * Where the store says that Redis went down, that it is back, and warnings about its
   * configuration (one line each, never a credential). @default console.warn
   */
  logger?: RedisStoreLogger;
  /**
   * How clears, `size()` and listings find a scope's entries. `"index"`: the store's per-scope
   * index, O(scope). `"scan"`: also SCAN the database for the namespace's keys, exact even when
   * Redis evicts the index (maxmemory-policy allkeys-*), O(keys in the database). `"auto"`:
   * `"scan"` when the server's policy is allkeys-*, read when the store connects.
   * @default "auto"
   */
  bookkeeping?: BookkeepingMode;
  clock?: Clock;
}

/** Either where Redis is (`url`) or a client of your own (`client`), never both. */
export type RedisStoreOptions = RedisStoreBaseOptions &
  (
    | {
        /**
         * Where Redis is, e.g. `"redis://127.0.0.1:6379"`. The store makes a node-redis client
         * (the `redis` package; ioredis when only that is installed) and closes it on `close()`.
         */
        url: string;
        client?: never;
      }
    | {
        /**
         * A client of your own: node-redis (`createClient`, `createCluster`) or ioredis (`Redis`,
         * `Cluster`). It is not closed by `close()`; one not yet connected is connected.
         */
        client: RedisClient;
        url?: never;
      }
  );

const BOOKKEEPING_MODES: readonly string[] = ["auto", "index", "scan"];

export class RedisStore implements Store, InvalidationBus {
  readonly kind = "redis";
  readonly prefix: string;
  readonly ttl: number;
  readonly commandTimeoutMs: number;
  readonly flights: FlightCoordinator;
  readonly #driver: RedisDriver;
  readonly #conn: Connection;
  readonly #layout: RedisLayout;
  readonly #bookkeeping: Bookkeeping;
  readonly #subscriber: RedisSubscriber;
  readonly #purge: RedisPurge;
  readonly #clock: Clock;
  readonly #listeners = new Set<(event: StoreEvent) => void>();
  readonly #touchTimer: NodeJS.Timeout;
  readonly #id = randomUUID();
  #closed: Promise<void> | undefined;

  constructor(options: RedisStoreOptions) {
    const { url, client } = (options ?? {}) as { url?: unknown; client?: unknown };
    if ((url === undefined) === (client === undefined)) {
      throw new TypeError(
        `Expected exactly one of \`url\` (e.g. "redis://127.0.0.1:6379") or \`client\` (a node-redis or ioredis client), got ${url === undefined ? "neither" : "both"}`,
      );
    }
    if (url !== undefined && typeof url !== "string") {
      throw new TypeError(
        `Expected \`url\` to be a string like "redis://127.0.0.1:6379", got \`${String(url)}\` (${typeof url})`,
      );
    }
    const bookkeeping = options.bookkeeping ?? "auto";
    if (!BOOKKEEPING_MODES.includes(bookkeeping)) {
      throw new TypeError(
        `Expected \`bookkeeping\` to be "auto", "index" or "scan", got \`${String(bookkeeping)}\` (${typeof bookkeeping})`,
      );
    }
    const logger = options.logger ?? consoleLogger;
    if (typeof logger?.warn !== "function") {
      throw new TypeError(
        `Expected \`logger\` to be an object with a warn(message) method, got \`${String(logger)}\` (${typeof logger})`,
      );
    }
    this.prefix = options.prefix ?? "infercache:";
    this.ttl = options.ttl === undefined ? 0 : parseDuration(options.ttl, "ttl");
    this.commandTimeoutMs = positiveMilliseconds(
      options.commandTimeoutMs ?? 300,
      "commandTimeoutMs",
    );
    const lockTtlMs = positiveMilliseconds(options.lockTtlMs ?? 30_000, "lockTtlMs");
    const accessFlushMs = positiveMilliseconds(options.accessFlushMs ?? 1000, "accessFlushMs");
    this.#clock = options.clock ?? systemClock;
    const driver = url === undefined ? driverFor(client) : driverForUrl(url as string, 2000);
    if (driver === undefined) {
      throw new TypeError(
        `Expected \`client\` to be a node-redis (createClient, createCluster) or ioredis (Redis, Cluster) client, got \`${String(client)}\` (${typeof client})`,
      );
    }
    this.#driver = driver;
    this.#layout = new RedisLayout(this.prefix);
    this.#conn = new Connection(driver, {
      deadlineMs: this.commandTimeoutMs,
      clock: this.#clock,
      logger,
    });
    this.#bookkeeping = new Bookkeeping(this.#conn, this.#layout, {
      mode: bookkeeping as BookkeepingMode,
      logger,
      clock: this.#clock,
    });
    this.#subscriber = new RedisSubscriber(this.#conn, this.#layout, this.#id);
    this.#purge = new RedisPurge(this.#conn, this.#layout, this.#bookkeeping, () =>
      this.#clock.now(),
    );
    this.flights = new RedisFlights(this.#conn, this.#layout, this.#subscriber, lockTtlMs);
    this.#touchTimer = setInterval(() => {
      this.#bookkeeping.flushTouches().catch(() => {});
    }, accessFlushMs);
    this.#touchTimer.unref();
  }

  /** Which client library the store talks through: `"node-redis"` or `"ioredis"`. */
  get library(): "node-redis" | "ioredis" {
    return this.#driver.library;
  }

  /** Resolves once Redis answers (calls before then wait for it within their deadline). */
  ready(timeoutMs = 5000): Promise<void> {
    return this.#conn.ready(timeoutMs);
  }

  /** `ok`, or `degraded` with why while Redis is unreachable (calls then run uncached). No I/O. */
  health(): StoreHealth {
    return this.#conn.health();
  }

  async get(key: string, scope: Scope): Promise<Entry | undefined> {
    const entryKey = this.#layout.entryKey(scope, key);
    const driver = this.#driver;
    const bytes = (await this.#conn.run(() =>
      driver.sendForBytes(["GET", entryKey], entryKey),
    )) as Buffer | null;
    if (bytes === null) return undefined;
    let entry: Entry;
    try {
      entry = decodeEntry(bytes);
    } catch (error) {
      if (!(error instanceof CorruptEntryError)) throw error;
      await this.#bookkeeping.remove(scope, [key]);
      this.#emit({ type: "evict", reason: "corrupt", scope, key });
      return undefined;
    }
    if (isExpired(entry, this.#clock.now())) return undefined;
    this.#bookkeeping.touch(scope, key);
    return entry;
  }

  async set(key: string, scope: Scope, entry: Entry): Promise<SetOutcome> {
    entry = withDefaultTtl(entry, this.ttl);
    const bytes = encodeOrRefuse(entry);
    if (bytes === "not-serializable") return bytes;
    let ttl = 0;
    if (entry.expiresAt !== undefined) {
      ttl = Math.ceil(entry.expiresAt - this.#clock.now());
      if (ttl <= 0) {
        // Already expired: nothing to keep, and an older value under the key is stale.
        await this.delete(key, scope);
        return "stored";
      }
    }
    const usable = this.#conn.usable();
    if (usable !== undefined) await usable;
    const entryKey = this.#layout.entryKey(scope, key);
    const args = ttl === 0 ? ["SET", entryKey, bytes] : ["SET", entryKey, bytes, "PX", String(ttl)];
    const driver = this.#driver;
    // The entry goes out now; its index member follows in this tick's batch (bookkeeping.ts).
    const written = this.#conn.run(() => driver.send(args, entryKey));
    const indexed = this.#bookkeeping.track(scope, key, {
      createdAt: entry.createdAt,
      tags: entry.tags,
      ttlMs: ttl,
    });
    await written;
    await indexed;
    return "stored";
  }

  /**
   * A random secret kept in Redis under `<prefix>secret:<name>`, created by whichever process asks
   * first (SET NX) and read by every other: the gateway's tenant hashes then agree across
   * instances and restarts.
   */
  async secret(name: string): Promise<string> {
    const key = `${this.prefix}secret:${name}`;
    const driver = this.#driver;
    const candidate = randomBytes(32).toString("hex");
    await this.#conn.run(() => driver.send(["SET", key, candidate, "NX"], key));
    const stored = (await this.#conn.run(() => driver.send(["GET", key], key))) as
      | string
      | Buffer
      | null;
    if (stored === null)
      throw new Error("infercache: Redis lost the store's secret as it was written");
    return String(stored);
  }

  async delete(key: string, scope: Scope): Promise<boolean> {
    return (await this.#bookkeeping.remove(scope, [key])) > 0;
  }

  clear(scope?: ClearScope): Promise<number> {
    return this.#bookkeeping.clear(scope);
  }

  /**
   * Removes the live entries `filter` matches: through the namespace's tag and creation-time
   * indexes (no scan of the database), or, when Redis may evict those (allkeys-*), a SCAN of the
   * namespace's entries that reads each one. Needs Redis 6.2 or later (ZMSCORE).
   */
  async purge(filter: PurgeFilter): Promise<number> {
    return this.#purge.purge(checkPurgeFilter(filter));
  }

  size(scope?: ClearScope): Promise<number> {
    return this.#bookkeeping.size(scope);
  }

  async *entries(scope: Scope): AsyncIterable<[key: string, entry: Entry]> {
    const keys = await this.#bookkeeping.keys(scope);
    const driver = this.#driver;
    const now = this.#clock.now();
    for (let i = 0; i < keys.length; i += CHUNK) {
      const chunk = keys.slice(i, i + CHUNK);
      const entryKeys = chunk.map((key) => this.#layout.entryKey(scope, key));
      const values = (await this.#conn.run(() =>
        driver.sendForBytes(["MGET", ...entryKeys], entryKeys[0]),
      )) as (Buffer | null)[];
      const gone: string[] = [];
      for (const [j, bytes] of values.entries()) {
        const key = chunk[j] as string;
        if (bytes === null) {
          gone.push(key);
          continue;
        }
        let entry: Entry;
        try {
          entry = decodeEntry(bytes);
        } catch (error) {
          if (!(error instanceof CorruptEntryError)) throw error;
          gone.push(key);
          continue;
        }
        if (!isExpired(entry, now)) yield [key, entry];
      }
      if (gone.length > 0) await this.#bookkeeping.remove(scope, gone);
    }
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Tells other processes' memory tiers that entries changed (TieredStore). */
  async publishInvalidation(message: Omit<InvalidationMessage, "origin">): Promise<void> {
    const payload = JSON.stringify({ ...message, origin: this.#id });
    const channel = this.#layout.channel("invalidate");
    await this.#conn.run(() => this.#driver.send(["PUBLISH", channel, payload]));
  }

  /** Listens to other processes' invalidations (not this store's own). */
  onInvalidation(listener: (message: InvalidationMessage) => void): Promise<() => void> {
    return this.#subscriber.onInvalidation(listener);
  }

  /** Lets commands under way land, then closes the connections the store made. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    clearInterval(this.#touchTimer);
    await this.#bookkeeping.flushTouches().catch(() => {});
    // Let commands already under way land (each is bounded by its deadline).
    do {
      await this.#conn.drain();
      // A finished write may start a follow-up (an index batch, a lock release) on the next turn.
      await new Promise((resolve) => setImmediate(resolve));
    } while (this.#conn.inFlight > 0);
    this.#subscriber.close();
    this.#conn.close();
    this.#driver.close();
  }

  #emit(event: StoreEvent): void {
    for (const listener of this.#listeners) listener(event);
  }
}
