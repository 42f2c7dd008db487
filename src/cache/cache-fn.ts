/**
 * `cache(fn, options)`: automatic, content-hashed caching of a function, like Gradio's
 * `@gr.cache`, for sync, async, sync-generator and async-generator functions.
 *
 * The wrapper keeps the kind of `fn`. With an in-process store (the default MemoryStore) a sync
 * function stays sync and a sync generator stays a sync generator, so a hit is a key build, a Map
 * lookup and an LRU touch. With an asynchronous store (SQLite, Redis) they become async, and the
 * types say so. Identical concurrent calls share one computation (single-flight), streams
 * included; errors, early-closed and failing streams are never cached.
 */

import type { Listener } from "../base/emitter.js";
import type { Entry, FlightLease, Scope, Store } from "../store/store.js";
import { runComputation } from "./computation.js";
import type { CacheCore, CacheEvents, CacheOptions, CallStatus } from "./core.js";
import { CacheCore as Core } from "./core.js";
import { Flight } from "./flight.js";
import { lookupWrapper, optionsSignature, rememberWrapper } from "./registry.js";
import type { QueueLane, QueueLike, QueuePosition } from "./scheduling.js";
import { NotSnapshotableError, snapshot } from "./snapshot.js";
import type { CacheStats } from "./stats.js";
import {
  type StreamFlight,
  StreamFlight as StreamFlightClass,
  type StreamRecord,
} from "./stream-flight.js";
import { reportLookup } from "./usage.js";

// biome-ignore lint/suspicious/noExplicitAny: a wrapper must accept every function type.
type AnyFunction = (this: any, ...args: any[]) => any;

export interface CacheFunctionOptions<A extends unknown[] = unknown[], R = unknown>
  extends CacheOptions {
  /**
   * Receives the call's arguments and returns what to hash instead of all of them, e.g.
   * `(prompt, temperature) => prompt` to ignore temperature.
   * @default all arguments
   */
  key?: (...args: A) => unknown;
  /**
   * Vetoes caching a result: return `false` to return it without storing it. For generators it
   * receives the array of yielded values.
   */
  shouldCache?: (result: CachedValue<R>) => boolean;
  /** Share one computation among identical concurrent calls. @default true */
  coalesce?: boolean;
  /**
   * A queue (`createQueue()`) that misses wait in; hits and coalesced calls never enter it and
   * are never rejected by it. The cached function is then asynchronous.
   */
  queue?: QueueLike;
  /** This function's concurrency in `queue`. @default the queue's (1 unless set) */
  concurrency?: number;
}

/** What `shouldCache` sees: the resolved value, or the yields of a generator. */
export type CachedValue<R> =
  R extends AsyncGenerator<infer T, unknown, unknown>
    ? T[]
    : R extends Generator<infer T, unknown, unknown>
      ? T[]
      : Awaited<R>;

/** Per-call options, through `fn.cache.with(options)`. */
export interface CallOptions {
  /** Stops this caller waiting; the computation is aborted when no caller is left. */
  signal?: AbortSignal;
  /** Filled in with what the call did: hit, miss or coalesced, age and compute time. */
  status?: CallStatus;
  /** Skip the lookup, compute afresh and store the new result. */
  refresh?: boolean;
  /** With a `queue`: called with the call's position and ETA while a miss waits. */
  onPosition?: (update: QueuePosition) => void;
}

/** The `fn.cache` handle. */
export interface CacheHandle<A extends unknown[], F> {
  /** The namespace of this function's entries in its store. */
  readonly namespace: string;
  readonly store: Store;
  /** Drops every entry of this function, in every session. Resolves to how many. */
  clear(): Promise<number>;
  /** Entries visible to the current scope: the current session's when `perSession`. */
  size(): Promise<number>;
  /** Drops the entry for these arguments. */
  delete(...args: A): Promise<boolean>;
  /** Whether these arguments have an entry. */
  has(...args: A): Promise<boolean>;
  /** The canonical key (64 hex characters) these arguments are hashed to. */
  key(...args: A): string;
  stats(): CacheStats;
  on<K extends keyof CacheEvents>(type: K, listener: Listener<CacheEvents[K]>): () => void;
  /** The same function with per-call options: `fn.cache.with({ signal })(...args)`. */
  with(options: CallOptions): F;
}

type Asyncify<R> =
  R extends AsyncGenerator<infer T, infer TR, infer TN>
    ? AsyncGenerator<T, TR, TN>
    : R extends Generator<infer T, infer TR, infer TN>
      ? AsyncGenerator<T, TR, TN>
      : Promise<Awaited<R>>;

/** `fn` as it is, plus its `cache` handle (kinds kept: an in-process store answers synchronously). */
export type CachedFunction<F extends AnyFunction> = F & {
  readonly cache: CacheHandle<Parameters<F>, F>;
};

type AsyncFunctionOf<F extends AnyFunction> = (
  this: ThisParameterType<F>,
  ...args: Parameters<F>
) => Asyncify<ReturnType<F>>;

/** `fn` made asynchronous (an asynchronous store), plus its `cache` handle. */
export type AsyncCachedFunction<F extends AnyFunction> = AsyncFunctionOf<F> & {
  readonly cache: CacheHandle<Parameters<F>, AsyncFunctionOf<F>>;
};

/** A store that can answer synchronously: a cached sync function stays sync on it. */
export type InProcessStore = Store & { readonly sync: NonNullable<Store["sync"]> };

type Kind = "sync" | "async" | "generator" | "async-generator";

/**
 * Caches `fn` by the content of its arguments (or of what `key` returns).
 * @throws TypeError when `fn` is not a function or an option is invalid.
 */
export function cache<F extends AnyFunction>(
  fn: F,
  options?: CacheFunctionOptions<Parameters<F>, ReturnType<F>> & {
    store?: InProcessStore;
    queue?: undefined;
  },
): CachedFunction<F>;
export function cache<F extends AnyFunction>(
  fn: F,
  options: CacheFunctionOptions<Parameters<F>, ReturnType<F>> &
    ({ store: Store } | { queue: QueueLike }),
): AsyncCachedFunction<F>;
export function cache<F extends AnyFunction>(
  fn: F,
  options: CacheFunctionOptions<Parameters<F>, ReturnType<F>> = {},
): CachedFunction<F> | AsyncCachedFunction<F> {
  if (typeof fn !== "function") {
    throw new TypeError(
      `cache(fn) expected a function, got \`${String(fn)}\` (${typeof fn}); write cache(fn)(...args), not cache(fn(...args))`,
    );
  }
  if (options.key !== undefined && typeof options.key !== "function") {
    throw new TypeError(
      `Expected \`key\` to be a function that receives the arguments, got ${typeof options.key}`,
    );
  }
  if (options.concurrency !== undefined && options.queue === undefined) {
    throw new TypeError(
      "cache(fn): `concurrency` is this function's limit in a queue; pass `queue: createQueue()` with it",
    );
  }
  if (options.shouldCache !== undefined && typeof options.shouldCache !== "function") {
    throw new TypeError(
      `Expected \`shouldCache\` to be a function, got ${typeof options.shouldCache}`,
    );
  }
  const signature = optionsSignature(options);
  const existing = lookupWrapper(fn, signature);
  if (existing !== undefined) return existing as CachedFunction<F>;
  const core = new Core(options, "cache(fn)", fn.name === "" ? undefined : `fn:${fn.name}`);
  const engine = new Engine(fn, kindOf(fn), core, options as CacheFunctionOptions);
  const invoke = engine.invoker();
  const wrapper = function (this: unknown, ...args: unknown[]) {
    return invoke(this, args, undefined);
  };
  Object.defineProperty(wrapper, "name", { value: fn.name, configurable: true });
  Object.defineProperty(wrapper, "length", { value: fn.length, configurable: true });
  const handle: CacheHandle<unknown[], AnyFunction> = {
    namespace: core.namespace,
    store: core.store,
    clear: () => core.clear(),
    size: () => core.size(),
    delete: async (...args) => core.remove(engine.keyOf(args), core.scope()),
    has: async (...args) => (await core.read(engine.keyOf(args), core.scope())) !== undefined,
    key: (...args) => engine.hashOf(args),
    stats: () => core.stats(),
    on: (type, listener) => core.events.on(type, listener),
    with: (callOptions) =>
      function (this: unknown, ...args: unknown[]) {
        return invoke(this, args, callOptions);
      },
  };
  Object.defineProperty(wrapper, "cache", { value: handle, enumerable: true });
  rememberWrapper(fn, signature, wrapper);
  return wrapper as unknown as CachedFunction<F>;
}

function kindOf(fn: AnyFunction): Kind {
  switch (Object.prototype.toString.call(fn)) {
    case "[object AsyncFunction]":
      return "async";
    case "[object GeneratorFunction]":
      return "generator";
    case "[object AsyncGeneratorFunction]":
      return "async-generator";
    default:
      return "sync";
  }
}

type Invoke = (thisArg: unknown, args: unknown[], options: CallOptions | undefined) => unknown;

/** The per-kind call paths of one cached function. */
class Engine {
  readonly #fn: AnyFunction;
  readonly #kind: Kind;
  readonly #core: CacheCore;
  readonly #key: ((...args: unknown[]) => unknown) | undefined;
  readonly #shouldCache: ((result: never) => boolean) | undefined;
  readonly #coalesce: boolean;
  /** Where misses wait for a slot, with a queue. */
  readonly #lane: QueueLane | undefined;

  constructor(fn: AnyFunction, kind: Kind, core: CacheCore, options: CacheFunctionOptions) {
    this.#fn = fn;
    this.#kind = kind;
    this.#core = core;
    this.#key = options.key as ((...args: unknown[]) => unknown) | undefined;
    this.#shouldCache = options.shouldCache as ((result: never) => boolean) | undefined;
    this.#coalesce = options.coalesce ?? true;
    this.#lane = options.queue?.lane({
      concurrency: options.concurrency,
      name: fn.name || undefined,
    });
  }

  invoker(): Invoke {
    // A queue makes calls wait, so it makes them asynchronous.
    const inProcess = this.#core.sync !== undefined && this.#lane === undefined;
    switch (this.#kind) {
      case "sync":
        return inProcess
          ? (t, a, o) => this.#callSync(t, a, o)
          : (t, a, o) => this.#callAsync(t, a, o);
      case "async":
        return (t, a, o) => this.#callAsync(t, a, o);
      case "generator":
        return inProcess
          ? (t, a, o) => this.#callStreamSync(t, a, o)
          : (t, a, o) => this.#callStream(t, a, o);
      case "async-generator":
        return (t, a, o) => this.#callStream(t, a, o);
    }
  }

  keyOf(args: unknown[]): string {
    const key = this.#key;
    if (key === undefined) return this.#core.keyOfTuple(args, args, "args");
    const value = key(...args);
    // A key function usually returns one primitive (a prompt): memoise it as a 1-tuple.
    return isPrimitive(value)
      ? this.#core.keyOfTuple([value], value, "key(...args)")
      : this.#core.keyOf(value, "key(...args)");
  }

  hashOf(args: unknown[]): string {
    const key = this.#key;
    return key === undefined
      ? this.#core.hashOf(args, "args")
      : this.#core.hashOf(key(...args), "key(...args)");
  }

  #out<T>(value: T): T {
    return this.#core.clone ? snapshot(value) : value;
  }

  #hit(key: string, scope: Scope, entry: Entry, status: CallStatus | undefined): void {
    this.#core.hit(key, scope, entry);
    reportLookup("hit", entry.computeMs ?? 0);
    if (status !== undefined) {
      status.source = "hit";
      status.key = key;
      status.ageMs = this.#core.clock.now() - entry.createdAt;
      if (entry.computeMs !== undefined) status.computeMs = entry.computeMs;
    }
  }

  #miss(key: string, scope: Scope, status: CallStatus | undefined): void {
    this.#core.miss(key, scope);
    reportLookup("miss", 0);
    if (status !== undefined) {
      status.source = "miss";
      status.key = key;
    }
  }

  #joined(key: string, scope: Scope, status: CallStatus | undefined): void {
    this.#core.coalesced(key, scope);
    reportLookup("coalesced", 0);
    if (status !== undefined) {
      status.source = "coalesced";
      status.key = key;
    }
  }

  /** Prepares a computed value for storing; `undefined` when it must not be stored. */
  #storable(key: string, scope: Scope, value: unknown): { value: unknown } | undefined {
    if (this.#shouldCache !== undefined && !this.#shouldCache(value as never)) return undefined;
    if (isIterator(value)) {
      this.#core.warn(
        key,
        scope,
        "not-snapshotable",
        "the function returned an iterator; declare it as a generator function (function* or async function*) to cache what it yields",
      );
      return undefined;
    }
    if (!this.#core.clone) return { value };
    try {
      return { value: snapshot(value, "result") };
    } catch (error) {
      if (!(error instanceof NotSnapshotableError)) throw error;
      this.#core.warn(key, scope, "not-snapshotable", error.message);
      return undefined;
    }
  }

  /** Sync function, in-process store: stays synchronous. */
  #callSync(thisArg: unknown, args: unknown[], options: CallOptions | undefined): unknown {
    const core = this.#core;
    const scope = core.scope();
    const key = this.keyOf(args);
    const status = options?.status;
    if (options?.refresh !== true) {
      const entry = core.readSync(core.sync!, key, scope);
      if (entry !== undefined) {
        this.#hit(key, scope, entry, status);
        return this.#out(entry.value);
      }
    }
    if (this.#coalesce && options?.refresh !== true) {
      // Only a plain function that returned a promise leaves a flight: join it.
      const flight = core.flights.get(core.flightId(key, scope));
      if (flight instanceof Flight) {
        this.#joined(key, scope, status);
        return flight.join(options?.signal);
      }
    }
    this.#miss(key, scope, status);
    const started = performance.now();
    const result = this.#fn.apply(thisArg, args);
    if (isPromiseLike(result)) {
      // A plain function that returned a promise: cache what it resolves to.
      return this.#settle(key, scope, started, Promise.resolve(result), options);
    }
    const computeMs = performance.now() - started;
    if (status !== undefined) status.computeMs = computeMs;
    const storable = this.#storable(key, scope, result);
    // In-process store: the write is synchronous and never rejects.
    if (storable !== undefined) void core.write(key, scope, core.entry(storable.value, computeMs));
    return result;
  }

  /** Registers a flight for a promise that is already running (sync function returned it). */
  #settle(
    key: string,
    scope: Scope,
    started: number,
    promise: Promise<unknown>,
    options: CallOptions | undefined,
  ): Promise<unknown> {
    return this.#fly(key, scope, options, async (signal) => {
      const result = await promise;
      return this.#finish(key, scope, started, result, options?.status, signal);
    });
  }

  /** Stores a computed result (in the background for asynchronous stores). */
  #finish(
    key: string,
    scope: Scope,
    started: number,
    result: unknown,
    status: CallStatus | undefined,
    signal: AbortSignal,
  ): { result: unknown; written: Promise<void> | undefined } {
    const computeMs = performance.now() - started;
    if (status !== undefined) status.computeMs = computeMs;
    // Every caller left and the computation was aborted: its result is not kept.
    if (signal.aborted) return { result, written: undefined };
    const storable = this.#storable(key, scope, result);
    const core = this.#core;
    const written =
      storable === undefined
        ? undefined
        : pending(core.write(key, scope, core.entry(storable.value, computeMs)));
    return { result, written };
  }

  /** Starts a flight running `compute` and joins it. */
  #fly(
    key: string,
    scope: Scope,
    options: CallOptions | undefined,
    compute: (
      signal: AbortSignal,
    ) => Promise<{ result: unknown; written: Promise<void> | undefined }>,
  ): Promise<unknown> {
    const core = this.#core;
    const id = core.flightId(key, scope);
    let written: Promise<void> | undefined;
    const flight: Flight<unknown> = new Flight(
      async (signal) => {
        const outcome = await compute(signal);
        written = outcome.written;
        return outcome.result;
      },
      () => {
        if (core.flights.get(id) === flight) core.flights.delete(id);
      },
    );
    if (this.#coalesce) {
      core.flights.set(id, flight);
      // Stay joinable until the entry is written, so a call in between does not run again.
      const done = () => {
        const finished = () => {
          if (core.flights.get(id) === flight) core.flights.delete(id);
        };
        if (written === undefined) finished();
        else written.then(finished, finished);
      };
      flight.promise.then(done, done);
    }
    return flight.join(options?.signal);
  }

  /** Async function (or any function over an asynchronous store). */
  #callAsync(
    thisArg: unknown,
    args: unknown[],
    options: CallOptions | undefined,
  ): Promise<unknown> {
    const core = this.#core;
    let key: string;
    let scope: Scope;
    try {
      scope = core.scope();
      key = this.keyOf(args);
    } catch (error) {
      return Promise.reject(error);
    }
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const status = options?.status;
    const refresh = options?.refresh === true;
    const sync = core.sync;
    if (sync !== undefined && !refresh) {
      const entry = core.readSync(sync, key, scope);
      if (entry !== undefined) {
        this.#hit(key, scope, entry, status);
        try {
          return Promise.resolve(this.#out(entry.value));
        } catch (error) {
          return Promise.reject(error);
        }
      }
    }
    if (this.#coalesce && !refresh) {
      const flight = core.flights.get(core.flightId(key, scope));
      if (flight instanceof Flight) {
        this.#joined(key, scope, status);
        const joined = flight.join(signal);
        // The shared result was not stored if it could not be copied: hand it over as it is.
        return core.clone ? joined.then((value) => copyIfPossible(value)) : joined;
      }
    }
    return this.#fly(key, scope, options, async (flightSignal) => {
      let lease: FlightLease | undefined;
      if (sync === undefined && !refresh) {
        const found = await core.lookupShared(key, scope);
        if (found.entry !== undefined) {
          if (found.waited) this.#joined(key, scope, status);
          else this.#hit(key, scope, found.entry, status);
          return { result: this.#out(found.entry.value), written: undefined };
        }
        lease = found.lease;
      }
      this.#miss(key, scope, status);
      try {
        const started = performance.now();
        const task = () => this.#fn.apply(thisArg, args);
        const lane = this.#lane;
        const result: unknown =
          lane === undefined
            ? await runComputation(flightSignal, task)
            : await lane.run(task, { signal: flightSignal, onPosition: options?.onPosition });
        const outcome = this.#finish(key, scope, started, result, status, flightSignal);
        if (lease !== undefined) core.releaseAfter(lease, outcome.written);
        return outcome;
      } catch (error) {
        if (lease !== undefined) core.releaseAfter(lease, undefined);
        throw error;
      }
    });
  }

  #streamFlight(
    thisArg: unknown,
    args: unknown[],
    key: string,
    scope: Scope,
  ): StreamFlight<unknown, unknown> {
    const core = this.#core;
    const id = core.flightId(key, scope);
    const started = performance.now();
    const flight: StreamFlight<unknown, unknown> = new StreamFlightClass({
      start: (signal) => {
        const lane = this.#lane;
        if (lane === undefined) return runComputation(signal, () => this.#fn.apply(thisArg, args));
        // With a queue the stream holds a slot from its first pull until it ends.
        const fn = this.#fn;
        return (async function* () {
          const release = await lane.acquire({ signal });
          try {
            return yield* runComputation(signal, () => fn.apply(thisArg, args)) as AsyncGenerator;
          } finally {
            release();
          }
        })();
      },
      step: (signal, step) => runComputation(signal, step),
      complete: (record) => {
        const computeMs = performance.now() - started;
        const vetoed =
          this.#shouldCache !== undefined && !this.#shouldCache(record.yields as never);
        const written = vetoed
          ? undefined
          : pending(core.write(key, scope, core.entry(record, computeMs)));
        const finished = () => {
          if (core.flights.get(id) === flight) core.flights.delete(id);
        };
        if (written === undefined) finished();
        else written.then(finished, finished);
      },
      discard: () => {
        if (core.flights.get(id) === flight) core.flights.delete(id);
      },
      notSnapshotable: (error) => core.warn(key, scope, "not-snapshotable", error.message),
    });
    if (this.#coalesce) core.flights.set(id, flight);
    return flight;
  }

  /** The flight to follow for a stream miss: an identical one in flight, or a new one. */
  #joinStream(
    thisArg: unknown,
    args: unknown[],
    key: string,
    scope: Scope,
    options: CallOptions | undefined,
  ): StreamFlight<unknown, unknown> {
    const status = options?.status;
    if (this.#coalesce && options?.refresh !== true) {
      const existing = this.#core.flights.get(this.#core.flightId(key, scope));
      if (existing instanceof StreamFlightClass) {
        this.#joined(key, scope, status);
        return existing;
      }
    }
    this.#miss(key, scope, status);
    return this.#streamFlight(thisArg, args, key, scope);
  }

  /** Generator function, in-process store: stays a sync generator. */
  #callStreamSync(thisArg: unknown, args: unknown[], options: CallOptions | undefined): Generator {
    const engine = this;
    const core = this.#core;
    return (function* () {
      const scope = core.scope();
      const key = engine.keyOf(args);
      if (options?.refresh !== true) {
        const entry = core.readSync(core.sync!, key, scope);
        if (entry !== undefined) {
          engine.#hit(key, scope, entry, options?.status);
          return yield* engine.#replaySync(entry.value as StreamRecord<unknown, unknown>);
        }
      }
      const flight = engine.#joinStream(thisArg, args, key, scope, options);
      return yield* engine.#followSync(flight);
    })();
  }

  *#replaySync(record: StreamRecord<unknown, unknown>): Generator<unknown, unknown> {
    for (const value of record.yields) yield this.#out(value);
    return this.#out(record.returnValue);
  }

  *#followSync(flight: StreamFlight<unknown, unknown>): Generator<unknown, unknown> {
    const me = {};
    flight.enter();
    try {
      for (let i = 0; ; ) {
        if (i < flight.items.length) {
          yield this.#shared(flight, i++, me);
          continue;
        }
        if (flight.state === "done") return flight.returnValue;
        if (flight.state === "error") throw flight.error;
        flight.pullSync(me);
      }
    } finally {
      flight.leave();
    }
  }

  #shared(flight: StreamFlight<unknown, unknown>, index: number, me: object): unknown {
    const value = flight.valueFor(index, me);
    return this.#core.clone && (flight.items[index] as { puller: object }).puller !== me
      ? snapshot(value)
      : value;
  }

  /** Async generator (or any generator over an asynchronous store). */
  #callStream(thisArg: unknown, args: unknown[], options: CallOptions | undefined): AsyncGenerator {
    const engine = this;
    const core = this.#core;
    return (async function* () {
      const scope = core.scope();
      const key = engine.keyOf(args);
      const signal = options?.signal;
      signal?.throwIfAborted();
      if (options?.refresh !== true) {
        const sync = core.sync;
        const entry =
          sync !== undefined ? core.readSync(sync, key, scope) : await core.read(key, scope);
        if (entry !== undefined) {
          engine.#hit(key, scope, entry, options?.status);
          const record = entry.value as StreamRecord<unknown, unknown>;
          for (const value of record.yields) {
            signal?.throwIfAborted();
            yield engine.#out(value);
          }
          return engine.#out(record.returnValue);
        }
      }
      const flight = engine.#joinStream(thisArg, args, key, scope, options);
      return yield* engine.#follow(flight, signal);
    })();
  }

  async *#follow(
    flight: StreamFlight<unknown, unknown>,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<unknown, unknown> {
    const me = {};
    flight.enter();
    try {
      for (let i = 0; ; ) {
        signal?.throwIfAborted();
        if (i < flight.items.length) {
          yield this.#shared(flight, i++, me);
          continue;
        }
        if (flight.state === "done") return flight.returnValue;
        if (flight.state === "error") throw flight.error;
        await (signal === undefined ? flight.pull(me) : untilAborted(flight.pull(me), signal));
      }
    } finally {
      flight.leave();
    }
  }
}

function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

/** A write still under way (asynchronous stores), for callers that wait for it to land. */
function pending(write: boolean | Promise<boolean>): Promise<void> | undefined {
  return write instanceof Promise ? write.then(() => undefined) : undefined;
}

function copyIfPossible<T>(value: T): T {
  try {
    return snapshot(value);
  } catch (error) {
    if (error instanceof NotSnapshotableError) return value;
    throw error;
  }
}

function isPrimitive(value: unknown): boolean {
  return (typeof value !== "object" || value === null) && typeof value !== "function";
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === "object" || typeof value === "function") &&
    value !== null &&
    typeof (value as { then?: unknown }).then === "function"
  );
}

/** A sync or async iterator (what a generator function returns). */
export function isIterator(value: unknown): boolean {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { next?: unknown }).next === "function" &&
    (Symbol.asyncIterator in value || Symbol.iterator in value)
  );
}
