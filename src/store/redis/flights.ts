/**
 * Cross-process single-flight over Redis: the process that takes a key's lock (`SET NX PX`)
 * computes; the others wait for its `done` message (pub/sub, bounded by the cache's
 * `waitTimeoutMs`) and read the entry it wrote. Not a distributed mutex: a lock outlives a
 * crashed holder by at most `lockTtlMs`, and a waiter that times out computes anyway.
 *
 * Under the breaker: with Redis down, `acquire` and `waitFor` fail at once (the cache layer then
 * computes without coordination), and waiters fail as soon as Redis is lost.
 */

import { randomUUID } from "node:crypto";
import type { FlightCoordinator, FlightLease, Scope } from "../store.js";
import type { Connection } from "./connection.js";
import type { RedisLayout } from "./layout.js";
import type { RedisSubscriber } from "./pubsub.js";

/**
 * KEYS: the lock. ARGV: this holder's token, the `done` channel. Deletes the lock if this holder
 * still has it and announces the end, in one round trip; a lock that already expired is announced
 * too (its waiters would otherwise wait it out), one another holder took is left alone.
 */
const RELEASE = `local held = redis.call("GET", KEYS[1])
if held == ARGV[1] then redis.call("DEL", KEYS[1]) end
if held == ARGV[1] or not held then redis.call("PUBLISH", ARGV[2], KEYS[1]) end
return 1`;

export class RedisFlights implements FlightCoordinator {
  readonly #conn: Connection;
  readonly #layout: RedisLayout;
  readonly #subscriber: RedisSubscriber;
  readonly #lockTtl: string;

  constructor(
    conn: Connection,
    layout: RedisLayout,
    subscriber: RedisSubscriber,
    lockTtlMs: number,
  ) {
    this.#conn = conn;
    this.#layout = layout;
    this.#subscriber = subscriber;
    this.#lockTtl = String(Math.ceil(lockTtlMs));
  }

  async acquire(key: string, scope: Scope): Promise<FlightLease | undefined> {
    const lockKey = this.#layout.lockKey(scope, key);
    const token = randomUUID();
    const driver = this.#conn.driver;
    const got = await this.#conn.run(() =>
      driver.send(["SET", lockKey, token, "PX", this.#lockTtl, "NX"], lockKey),
    );
    if (got !== "OK") return undefined;
    const done = this.#layout.channel("done");
    return {
      release: async () => {
        await this.#conn.run(() =>
          driver.send(["EVAL", RELEASE, "1", lockKey, token, done], lockKey),
        );
      },
    };
  }

  /** Waits until the computation holding the lock finishes (or `timeoutMs` passes). */
  waitFor(key: string, scope: Scope, timeoutMs: number): Promise<void> {
    const lockKey = this.#layout.lockKey(scope, key);
    return this.#subscriber.waitFor(lockKey, timeoutMs, async () => {
      const exists = await this.#conn.run(() =>
        this.#conn.driver.send(["EXISTS", lockKey], lockKey),
      );
      return Number(exists) > 0;
    });
  }
}
