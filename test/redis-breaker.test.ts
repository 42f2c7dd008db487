/**
 * RedisStore with Redis down, hung or restarting: the breaker lets calls run uncached at once
 * (at most the first waits a deadline), locks and subscriptions fail fast too, caching resumes
 * when Redis answers again, the store says so once each way, and `health()` tells.
 *
 * Real servers only: a port with nothing listening, a TCP server that accepts and never answers,
 * and redis-server processes that are killed, paused (SIGSTOP) and restarted.
 */
import { createClient } from "redis";
import { afterAll, describe, expect, it } from "vitest";
import { cache, TieredStore } from "../src/index.js";
import { RedisStore, type RedisStoreBaseOptions, RedisUnavailableError } from "../src/redis.js";
import { freePort, RedisServer, startSilentServer } from "./helpers/redis-server.js";

/** Long enough that a call which waited for it cannot be mistaken for one that did not. */
const DEADLINE = 1000;
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

function open(url: string, logs: string[], options: RedisStoreBaseOptions = {}): RedisStore {
  const store = new RedisStore({
    url,
    commandTimeoutMs: DEADLINE,
    logger: { warn: (message) => logs.push(message) },
    ...options,
  });
  cleanups.push(() => store.close());
  return store;
}

/**
 * Makes up to `calls` cached calls one after another (within a time budget, so a store that
 * waits a deadline every call cannot hang the test) and counts those that waited at least 90% of
 * a deadline.
 */
async function waitedCalls(
  fn: (x: number) => Promise<number>,
  calls: number,
): Promise<{ made: number; waited: number }> {
  const budgetEnds = performance.now() + 8 * DEADLINE;
  let made = 0;
  let waited = 0;
  while (made < calls && performance.now() < budgetEnds) {
    const started = performance.now();
    expect(await fn(made)).toBe(made * 2);
    if (performance.now() - started >= 0.9 * DEADLINE) waited++;
    made++;
  }
  return { made, waited };
}

async function until(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const ends = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > ends) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const isDown = (line: string) => /RedisStore (lost|cannot reach) Redis/.test(line);
const isBack = (line: string) => /RedisStore reaches Redis .* again/.test(line);

describe("RedisStore with Redis unreachable", () => {
  it("with nothing listening on the port, calls run uncached at once", async () => {
    const logs: string[] = [];
    const store = open(`redis://127.0.0.1:${await freePort()}`, logs);
    let runs = 0;
    const fn = cache(
      async (x: number) => {
        runs++;
        return x * 2;
      },
      { store, namespace: "dead-port" },
    );
    const { made, waited } = await waitedCalls(fn, 300);
    expect(made).toBe(300);
    expect(waited).toBeLessThanOrEqual(1);
    expect(runs).toBe(300);
    expect(fn.cache.stats().errors).toBeGreaterThan(0);
    expect(store.health()).toMatchObject({ state: "degraded" });
    expect(store.health().reason).toMatch(/unreachable \(connection refused\)/);
    expect(logs.filter(isDown)).toHaveLength(1);
  });

  it("with a server that accepts and never answers, at most the first call waits a deadline", async () => {
    const silent = await startSilentServer();
    cleanups.push(() => silent.close());
    const logs: string[] = [];
    const store = open(silent.url, logs);
    const fn = cache(async (x: number) => x * 2, { store, namespace: "silent" });
    const { made, waited } = await waitedCalls(fn, 300);
    expect(made).toBe(300);
    expect(waited).toBeLessThanOrEqual(1);
    expect(store.health().state).toBe("degraded");
    expect(logs.filter(isDown)).toHaveLength(1);
  });

  it("with Redis paused mid-way (SIGSTOP), calls stop waiting after the first deadline and caching resumes", async () => {
    const server = await RedisServer.start();
    cleanups.push(() => server.kill());
    const logs: string[] = [];
    const store = open(server.url, logs);
    await store.ready();
    let runs = 0;
    const fn = cache(
      async (x: number) => {
        runs++;
        return x * 2;
      },
      { store, namespace: "paused" },
    );
    expect(await fn(1)).toBe(2);
    await until(async () => (await store.size()) === 1, 2000);
    server.pause();
    const { made, waited } = await waitedCalls(fn, 100);
    expect(made).toBe(100);
    expect(waited).toBeLessThanOrEqual(2);
    expect(store.health().state).toBe("degraded");
    server.resume();
    await until(() => store.health().state === "ok", 5000);
    const before = runs;
    await until(async () => {
      await fn(1);
      return runs === before;
    }, 5000);
    expect(logs.filter(isDown)).toHaveLength(1);
    expect(logs.filter(isBack)).toHaveLength(1);
  });

  it("after Redis is killed and restarted, caching resumes within 2 s, logged once each way without the password", async () => {
    const password = "s3cret-pass";
    const server = await RedisServer.start(["--requirepass", password]);
    cleanups.push(() => server.kill());
    const logs: string[] = [];
    const store = open(`redis://:${password}@127.0.0.1:${server.port}`, logs);
    await store.ready();
    let runs = 0;
    const fn = cache(
      async (x: number) => {
        runs++;
        return x * 2;
      },
      { store, namespace: "restart" },
    );
    expect(await fn(1)).toBe(2);
    expect(await fn(1)).toBe(2);
    expect(runs).toBe(1);
    await server.kill();
    await until(() => store.health().state === "degraded", 5000);
    const down = await waitedCalls(fn, 50);
    expect(down.waited).toBe(0);
    await server.restart();
    const restartedAt = Date.now();
    await until(() => store.health().state === "ok", 10_000);
    expect(store.health().since ?? 0).toBeLessThan(restartedAt + 2000);
    // The restarted server is empty: one run to fill it, then hits.
    await fn(7);
    const before = runs;
    await until(async () => {
      await fn(7);
      return runs === before;
    }, 5000);
    expect(logs.filter(isDown)).toHaveLength(1);
    expect(logs.filter(isBack)).toHaveLength(1);
    expect(logs.join("\n")).not.toContain(password);
    expect(logs.join("\n")).toContain(`127.0.0.1:${server.port}`);
  });

  it("locks, waits and subscriptions fail at once while Redis is down", async () => {
    const logs: string[] = [];
    const store = open(`redis://127.0.0.1:${await freePort()}`, logs);
    await until(() => store.health().state === "degraded", 5000);
    const scope = { namespace: "locks" };
    const started = performance.now();
    await expect(store.flights.acquire("k", scope)).rejects.toBeInstanceOf(RedisUnavailableError);
    await expect(store.flights.waitFor("k", scope, 30_000)).rejects.toBeInstanceOf(
      RedisUnavailableError,
    );
    await expect(store.onInvalidation(() => {})).rejects.toBeInstanceOf(RedisUnavailableError);
    await expect(store.get("k", scope)).rejects.toBeInstanceOf(RedisUnavailableError);
    await expect(store.set("k", scope, { value: 1, createdAt: 0 })).rejects.toBeInstanceOf(
      RedisUnavailableError,
    );
    expect(performance.now() - started).toBeLessThan(DEADLINE);
  });

  it("a process waiting for another's lock stops waiting when Redis is lost", async () => {
    const server = await RedisServer.start();
    cleanups.push(() => server.kill());
    const holder = open(server.url, []);
    const waiter = open(server.url, []);
    await Promise.all([holder.ready(), waiter.ready()]);
    const scope = { namespace: "wait" };
    expect(await holder.flights.acquire("k", scope)).toBeDefined();
    expect(await waiter.flights.acquire("k", scope)).toBeUndefined();
    const waiting = waiter.flights.waitFor("k", scope, 60_000).then(
      () => "woken",
      (error: unknown) => error,
    );
    // Subscribed and checked the lock: only a message, the timeout or the breaker ends the wait.
    await new Promise((resolve) => setTimeout(resolve, 100));
    await server.kill();
    expect(await waiting).toBeInstanceOf(RedisUnavailableError);
  });

  it("TieredStore reports the health of the store behind it", async () => {
    const store = open(`redis://127.0.0.1:${await freePort()}`, []);
    const tiered = new TieredStore({ store });
    expect(tiered.health()).toEqual(store.health());
    await until(() => /unreachable/.test(tiered.health().reason ?? ""), 5000);
    expect(tiered.health().state).toBe("degraded");
  });
});

describe("RedisStore pub/sub", () => {
  it("drops malformed invalidation messages and still delivers good ones", async () => {
    const server = await RedisServer.start();
    cleanups.push(() => server.kill());
    const store = open(server.url, [], { prefix: "bus:" });
    await store.ready();
    const received: unknown[] = [];
    await store.onInvalidation((message) => received.push(message));
    const raw = createClient({ url: server.url });
    await raw.connect();
    for (const garbage of [
      "not json",
      "null",
      "[1]",
      '{"origin":1,"kind":"key"}',
      '{"kind":"x"}',
    ]) {
      await raw.publish("bus:invalidate", garbage);
    }
    await raw.publish(
      "bus:invalidate",
      JSON.stringify({ origin: "other", kind: "key", namespace: "n", key: "k" }),
    );
    await until(() => received.length > 0, 5000);
    expect(received).toEqual([{ origin: "other", kind: "key", namespace: "n", key: "k" }]);
    raw.destroy();
  });
});
