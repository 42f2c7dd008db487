/**
 * RedisStore's connection discipline: a deadline on every command and a circuit breaker, so a
 * dead, unreachable or silent Redis costs a cached call next to nothing. Not the client itself
 * (client.ts) and not what the commands mean (the store).
 *
 * Deadlines. Commands in flight sit in one list in the order they were issued; a sweeper that
 * runs only while the list is not empty (every quarter deadline) fails them once the oldest has
 * waited `deadlineMs`. One timer for all commands instead of one per command: the hot path only
 * links and unlinks a node.
 *
 * Breaker. Closed (up): commands go out. A connection failure, a client event saying the
 * connection is gone, or a missed deadline opens it (down): every command, lock and
 * subscription fails at once with `RedisUnavailableError` — nothing is queued, nothing waits —
 * and the commands still in flight fail with it. In the background a PING probes Redis after a
 * back-off (50 ms doubling to 1 s, and at once when the client reports it reconnected); its
 * answer closes the breaker. Before the first connection the store is `connecting`: commands wait
 * for it within their deadline, so a store used right after construction still caches.
 *
 * Log lines: one when Redis is lost, one when it is back, naming `host:port` (never the URL's
 * credentials) and why.
 */

import type { Clock } from "../../base/clock.js";
import type { StoreHealth } from "../store.js";
import { describeFailure, isConnectionFailure, type RedisDriver } from "./client.js";

/** Where RedisStore writes its two outage lines (down, back) and configuration warnings. */
export interface RedisStoreLogger {
  warn(message: string): void;
}

export const consoleLogger: RedisStoreLogger = { warn: (message) => console.warn(message) };

/** A command that Redis did not answer within its deadline. A store failure for the cache layer. */
export class RedisTimeoutError extends Error {
  override readonly name = "RedisTimeoutError";
}

/**
 * Redis is unreachable and the store's breaker is open: the operation was not sent. A store
 * failure for the cache layer, which runs the call uncached.
 */
export class RedisUnavailableError extends Error {
  override readonly name = "RedisUnavailableError";
  constructor(
    /** Why the store took Redis to be down, e.g. `"connection refused"`. */
    readonly reason: string,
    /** Since when, ms since the epoch (the store's clock). */
    readonly since: number,
    target: string,
  ) {
    super(
      `infercache: Redis at ${target} is unavailable (${reason}); RedisStore sends nothing until a probe gets an answer`,
    );
  }
}

const FIRST_PROBE_MS = 50;
const MAX_PROBE_MS = 1000;

interface UpWaiter {
  /** `ready()` callers wait through an outage until their own timeout; commands do not. */
  patient: boolean;
  resolve(): void;
  reject(error: Error): void;
}

interface Pending {
  at: number;
  fail: (error: Error) => void;
  prev: Pending | undefined;
  next: Pending | undefined;
  linked: boolean;
}

type State = "connecting" | "up" | "down" | "closed";

export interface ConnectionOptions {
  deadlineMs: number;
  clock: Clock;
  logger: RedisStoreLogger;
}

export class Connection {
  readonly driver: RedisDriver;
  readonly deadlineMs: number;
  readonly #clock: Clock;
  readonly #logger: RedisStoreLogger;
  #state: State = "connecting";
  #reason = "connecting";
  #since: number;
  #head: Pending | undefined;
  #tail: Pending | undefined;
  #inFlight = 0;
  #sweeper: NodeJS.Timeout | undefined;
  #probeTimer: NodeJS.Timeout | undefined;
  #probeDelay = FIRST_PROBE_MS;
  #probing = false;
  #everUp = false;
  #drained: (() => void) | undefined;
  readonly #changes = new Set<(up: boolean) => void>();
  /** Waiters for the first connection (or the next, for `ready`). */
  readonly #upWaiters = new Set<UpWaiter>();

  constructor(driver: RedisDriver, options: ConnectionOptions) {
    this.driver = driver;
    this.deadlineMs = options.deadlineMs;
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#since = this.#clock.now();
    driver.watch(
      () => this.#connected(),
      (reason) => this.#lost(reason),
    );
    if (driver.isReady()) {
      this.#state = "up";
      this.#everUp = true;
    } else {
      // With nobody calling, health still turns `degraded` when the first connection fails.
      setTimeout(() => {
        if (this.#state === "connecting") {
          this.#lost(`no connection within ${this.deadlineMs} ms`);
        }
      }, this.deadlineMs).unref();
    }
  }

  /** Whether commands go out now (the breaker is closed). */
  get up(): boolean {
    return this.#state === "up";
  }

  /** Commands in flight. */
  get inFlight(): number {
    return this.#inFlight;
  }

  health(): StoreHealth {
    if (this.#state === "up") return { state: "ok", since: this.#since };
    const reason =
      this.#state === "closed"
        ? "the store is closed"
        : this.#state === "connecting"
          ? `connecting to Redis at ${this.driver.target}`
          : `Redis at ${this.driver.target} is unreachable (${this.#reason}); calls run uncached`;
    return { state: "degraded", reason, since: this.#since };
  }

  /** Calls `listener(true)` when the breaker closes, `listener(false)` when it opens. */
  onChange(listener: (up: boolean) => void): () => void {
    this.#changes.add(listener);
    return () => this.#changes.delete(listener);
  }

  /**
   * `undefined` when commands go out now; while connecting, a promise for the connection
   * (within the deadline); while down, a rejection with no I/O.
   */
  usable(): Promise<void> | undefined {
    if (this.#state === "up") return undefined;
    if (this.#state === "connecting") return this.#waitUp(this.deadlineMs);
    return Promise.reject(this.unavailable());
  }

  /**
   * Runs one command under the breaker and the deadline. `issue` is only called when the command
   * may go out; while the breaker is open the result is a rejection with no I/O.
   */
  run<T>(issue: () => Promise<T>): Promise<T> {
    if (this.#state === "up") return this.#track(issue);
    if (this.#state === "connecting") {
      return this.#waitUp(this.deadlineMs).then(() => this.run(issue));
    }
    return Promise.reject(this.unavailable());
  }

  /**
   * `run` with a deadline of its own (subscriptions); a miss fails this call only, it does not
   * open the breaker (the command may just be slow to set up).
   */
  runWithin<T>(issue: () => Promise<T>, deadlineMs: number): Promise<T> {
    if (this.#state === "connecting") {
      return this.#waitUp(this.deadlineMs).then(() => this.runWithin(issue, deadlineMs));
    }
    if (this.#state !== "up") return Promise.reject(this.unavailable());
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new RedisTimeoutError(
              `infercache: Redis at ${this.driver.target} did not answer within ${deadlineMs} ms`,
            ),
          ),
        deadlineMs,
      );
      issue().then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          clearTimeout(timer);
          this.#failed(error);
          reject(error);
        },
      );
    });
  }

  /** Resolves once the breaker is closed (at once if it is), or rejects after `timeoutMs`. */
  ready(timeoutMs: number): Promise<void> {
    if (this.#state === "up") return Promise.resolve();
    return this.#waitUp(timeoutMs, true);
  }

  /** Resolves when no command is in flight (each is bounded by its deadline). */
  drain(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#drained = resolve;
    });
  }

  /** Stops probing and fails whatever still waits; commands after this fail. */
  close(): void {
    this.#setState("closed", "closed");
    clearTimeout(this.#probeTimer);
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    this.#failAll(() => new Error("infercache: RedisStore is closed"));
    this.#rejectUpWaiters(new Error("infercache: RedisStore is closed"));
  }

  #track<T>(issue: () => Promise<T>): Promise<T> {
    const pending: Pending = {
      at: performance.now(),
      fail: noop,
      prev: this.#tail,
      next: undefined,
      linked: true,
    };
    if (this.#tail === undefined) this.#head = pending;
    else this.#tail.next = pending;
    this.#tail = pending;
    this.#inFlight++;
    this.driver.busy(this.#inFlight > 1);
    this.#sweeper ??= setInterval(() => this.#sweep(), Math.max(5, this.deadlineMs / 4)).unref();
    return new Promise<T>((resolve, reject) => {
      pending.fail = reject;
      let command: Promise<T>;
      try {
        command = issue();
      } catch (error) {
        this.#unlink(pending);
        reject(error);
        return;
      }
      command.then(
        (value) => {
          if (this.#unlink(pending)) resolve(value);
        },
        (error: unknown) => {
          if (!this.#unlink(pending)) return;
          this.#failed(error);
          reject(error);
        },
      );
    });
  }

  /** Unlinks a command; false when the sweeper or the breaker already failed it. */
  #unlink(pending: Pending): boolean {
    if (!pending.linked) return false;
    pending.linked = false;
    if (pending.prev === undefined) this.#head = pending.next;
    else pending.prev.next = pending.next;
    if (pending.next === undefined) this.#tail = pending.prev;
    else pending.next.prev = pending.prev;
    if (--this.#inFlight === 0 && this.#drained !== undefined) {
      const drained = this.#drained;
      this.#drained = undefined;
      drained();
    }
    return true;
  }

  #sweep(): void {
    const head = this.#head;
    if (head === undefined) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
      return;
    }
    if (performance.now() - head.at >= this.deadlineMs) {
      this.#lost(`no answer within ${this.deadlineMs} ms`);
    }
  }

  /** A command failed: a connection failure opens the breaker, an error reply does not. */
  #failed(error: unknown): void {
    if (isConnectionFailure(error)) this.#lost(describeFailure(error));
  }

  #connected(): void {
    if (this.#state === "connecting") this.#up();
    else if (this.#state === "down") this.#probeSoon(0);
  }

  #lost(reason: string): void {
    if (this.#state !== "up" && this.#state !== "connecting") return;
    const wasUp = this.#state === "up";
    this.#setState("down", reason);
    this.#logger.warn(
      `infercache: RedisStore ${wasUp ? "lost" : "cannot reach"} Redis at ${this.driver.target} (${reason}); calls run uncached until it answers again`,
    );
    const timedOut = reason.startsWith("no answer");
    this.#failAll(() =>
      timedOut
        ? new RedisTimeoutError(
            `infercache: Redis at ${this.driver.target} did not answer within ${this.deadlineMs} ms`,
          )
        : this.unavailable(),
    );
    this.#rejectUpWaiters(this.unavailable(), true);
    for (const listener of this.#changes) listener(false);
    this.#probeDelay = FIRST_PROBE_MS;
    this.#probeSoon(this.#probeDelay);
  }

  #up(): void {
    const wasDown = this.#state === "down";
    const downSince = this.#since;
    this.#setState("up", "");
    if (wasDown) {
      const seconds = ((this.#clock.now() - downSince) / 1000).toFixed(1);
      this.#logger.warn(
        this.#everUp
          ? `infercache: RedisStore reaches Redis at ${this.driver.target} again after ${seconds} s; caching resumed`
          : `infercache: RedisStore reaches Redis at ${this.driver.target} after ${seconds} s; caching started`,
      );
    }
    this.#everUp = true;
    for (const waiter of this.#upWaiters) waiter.resolve();
    this.#upWaiters.clear();
    for (const listener of this.#changes) listener(true);
  }

  #setState(state: State, reason: string): void {
    this.#state = state;
    this.#reason = reason;
    this.#since = this.#clock.now();
  }

  #probeSoon(delayMs: number): void {
    clearTimeout(this.#probeTimer);
    this.#probeTimer = setTimeout(() => {
      this.#probe().catch(() => {});
    }, delayMs);
    this.#probeTimer.unref();
  }

  async #probe(): Promise<void> {
    if (this.#state !== "down" || this.#probing) return;
    this.#probing = true;
    let answered = false;
    try {
      // A client still reconnecting would only queue the PING (or refuse it): ask when it is up.
      if (this.driver.isReady()) {
        let timer: NodeJS.Timeout | undefined;
        const deadline = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error("probe timed out")), this.deadlineMs);
        });
        try {
          await Promise.race([this.driver.send(["PING"]), deadline]);
          answered = true;
        } finally {
          clearTimeout(timer);
        }
      }
    } catch {
      // still down
    } finally {
      this.#probing = false;
    }
    if (this.#state !== "down") return;
    if (answered) {
      this.#up();
      return;
    }
    this.#probeDelay = Math.min(this.#probeDelay * 2, MAX_PROBE_MS);
    this.#probeSoon(this.#probeDelay);
  }

  #waitUp(timeoutMs: number, patient = false): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter: UpWaiter = {
        patient,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (error: Error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        this.#upWaiters.delete(waiter);
        if (!patient && this.#state === "connecting") {
          this.#lost(`no connection within ${this.deadlineMs} ms`);
        }
        reject(
          new RedisTimeoutError(
            `infercache: Redis at ${this.driver.target} was not ready after ${timeoutMs} ms (${this.health().reason ?? "connecting"})`,
          ),
        );
      }, timeoutMs);
      this.#upWaiters.add(waiter);
    });
  }

  /** Fails the waiters for a connection; `ready()` callers (patient) keep waiting unless closed. */
  #rejectUpWaiters(error: Error, keepPatient = false): void {
    for (const waiter of this.#upWaiters) {
      if (keepPatient && waiter.patient) continue;
      this.#upWaiters.delete(waiter);
      waiter.reject(error);
    }
  }

  #failAll(error: () => Error): void {
    for (let pending = this.#head; pending !== undefined; pending = this.#head) {
      this.#unlink(pending);
      pending.fail(error());
    }
  }

  /** The error for an operation refused while the breaker is open. */
  unavailable(): RedisUnavailableError {
    return new RedisUnavailableError(this.#reason, this.#since, this.driver.target);
  }
}

function noop(): void {}
