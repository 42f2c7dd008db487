/**
 * RedisStore's one subscriber connection, for two channels: `done` (a cross-process computation
 * released its lock: wake this process's waiters) and `invalidate` (another process changed
 * entries: tell the memory tiers here). Publishing goes through the store's own connection.
 *
 * Under the breaker like every command: while Redis is down a subscription or a wait fails at
 * once, and waiters already waiting fail when it goes down (their callers compute instead of
 * waiting out `waitTimeoutMs`). Messages are checked before use: a malformed one is dropped,
 * never thrown inside the client's event handler. When the subscriber's connection comes back
 * after a drop, invalidations sent meanwhile are lost, so listeners are told to drop everything.
 */

import type { InvalidationMessage } from "../store.js";
import type { Connection } from "./connection.js";
import type { RedisLayout } from "./layout.js";

/** How long setting up the subscription may take, ms (a second connection and a SUBSCRIBE). */
const SUBSCRIBE_DEADLINE_MS = 5000;

interface Waiter {
  wake(): void;
  fail(error: Error): void;
}

export class RedisSubscriber {
  readonly #conn: Connection;
  readonly #done: string;
  readonly #invalidate: string;
  readonly #origin: string;
  readonly #waiters = new Map<string, Set<Waiter>>();
  readonly #listeners = new Set<(message: InvalidationMessage) => void>();
  #subscribed: Promise<void> | undefined;
  #unsubscribe: (() => void) | undefined;
  #closed = false;

  constructor(conn: Connection, layout: RedisLayout, origin: string) {
    this.#conn = conn;
    this.#done = layout.channel("done");
    this.#invalidate = layout.channel("invalidate");
    this.#origin = origin;
    conn.onChange((up) => {
      if (!up) this.#failWaiters();
      // A subscription that failed while Redis was down is set up once it is back.
      else if (this.#listeners.size > 0) this.ensure().catch(() => {});
    });
  }

  /** Subscribes once (again after a failure). */
  ensure(): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("infercache: RedisStore is closed"));
    if (this.#subscribed !== undefined) return this.#subscribed;
    let attempt: Promise<() => void> | undefined;
    const subscribe = () => {
      attempt = this.#conn.driver.subscribe(
        [this.#done, this.#invalidate],
        (channel, message) => this.#message(channel, message),
        () => this.#missed(),
      );
      return attempt;
    };
    this.#subscribed = this.#conn.runWithin(subscribe, SUBSCRIBE_DEADLINE_MS).then(
      (unsubscribe) => {
        if (this.#closed) unsubscribe();
        else this.#unsubscribe = unsubscribe;
      },
      (error: unknown) => {
        this.#subscribed = undefined;
        // A subscription that completes after its deadline is closed, not left to deliver twice.
        attempt?.then(
          (unsubscribe) => unsubscribe(),
          () => {},
        );
        throw error;
      },
    );
    return this.#subscribed;
  }

  /**
   * Resolves when the holder of `lockKey` announces it is done, when `stillHeld` says the lock
   * is already gone, or after `timeoutMs`; rejects when Redis is lost meanwhile.
   */
  async waitFor(
    lockKey: string,
    timeoutMs: number,
    stillHeld: () => Promise<boolean>,
  ): Promise<void> {
    await this.ensure();
    let waiter!: Waiter;
    const done = new Promise<void>((resolve, reject) => {
      waiter = { wake: resolve, fail: reject };
    });
    let waiters = this.#waiters.get(lockKey);
    if (waiters === undefined) {
      waiters = new Set();
      this.#waiters.set(lockKey, waiters);
    }
    waiters.add(waiter);
    const timer = setTimeout(waiter.wake, timeoutMs);
    try {
      // The lock may have gone between the failed acquire and the subscription.
      if (!(await stillHeld())) return;
      await done;
    } finally {
      clearTimeout(timer);
      waiters.delete(waiter);
      if (waiters.size === 0) this.#waiters.delete(lockKey);
    }
  }

  /** Listens to other processes' invalidations; resolves once subscribed. */
  async onInvalidation(listener: (message: InvalidationMessage) => void): Promise<() => void> {
    this.#listeners.add(listener);
    await this.ensure();
    return () => this.#listeners.delete(listener);
  }

  /** Wakes every waiter (the store is closing) and closes the connection. */
  close(): void {
    this.#closed = true;
    for (const waiters of this.#waiters.values()) for (const waiter of waiters) waiter.wake();
    this.#waiters.clear();
    this.#listeners.clear();
    this.#unsubscribe?.();
  }

  #message(channel: string, message: string): void {
    if (channel === this.#done) {
      for (const waiter of this.#waiters.get(message) ?? []) waiter.wake();
    } else if (channel === this.#invalidate) {
      const parsed = parseInvalidation(message);
      if (parsed === undefined || parsed.origin === this.#origin) return;
      for (const listener of this.#listeners) listener(parsed);
    }
  }

  /** The subscriber reconnected: what was published meanwhile never arrived. */
  #missed(): void {
    const everything: InvalidationMessage = { origin: this.#origin, kind: "clear" };
    for (const listener of this.#listeners) listener(everything);
  }

  #failWaiters(): void {
    for (const waiters of this.#waiters.values()) {
      for (const waiter of waiters) {
        waiter.fail(this.#conn.unavailable());
      }
    }
  }
}

/** An invalidation message as published by a RedisStore, or `undefined` for anything else. */
export function parseInvalidation(message: string): InvalidationMessage | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(message);
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null) return undefined;
  const { origin, kind, namespace, session, key, tags, allTags, olderThan } = parsed as Record<
    string,
    unknown
  >;
  if (typeof origin !== "string" || (kind !== "key" && kind !== "clear" && kind !== "purge")) {
    return undefined;
  }
  if (tags !== undefined && !(Array.isArray(tags) && tags.every((t) => typeof t === "string"))) {
    return undefined;
  }
  if (
    allTags !== undefined &&
    !(Array.isArray(allTags) && allTags.every((t) => typeof t === "string"))
  ) {
    return undefined;
  }
  if (olderThan !== undefined && typeof olderThan !== "number") return undefined;
  if (namespace !== undefined && typeof namespace !== "string") return undefined;
  if (session !== undefined && session !== null && typeof session !== "string") return undefined;
  if (key !== undefined && typeof key !== "string") return undefined;
  const result: InvalidationMessage = { origin, kind };
  if (namespace !== undefined) result.namespace = namespace;
  if (session !== undefined) result.session = session;
  if (key !== undefined) result.key = key;
  if (tags !== undefined) result.tags = tags as string[];
  if (allTags !== undefined) result.allTags = allTags as string[];
  if (olderThan !== undefined) result.olderThan = olderThan;
  return result;
}
