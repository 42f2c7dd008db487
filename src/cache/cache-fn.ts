/**
 * `cache(fn, options)`: automatic, content-hashed caching of a function, like Gradio's
 * `@gr.cache`, for sync, async, sync-generator and async-generator functions.
 *
 * The wrapper keeps the kind of `fn`. With an in-process store (the default MemoryStore) a sync
 * function stays sync and a sync generator stays a sync generator, so a hit is a key build, a Map
 * lookup and an LRU touch. With an asynchronous store (SQLite, Redis) they become async, and the
 * types say so. Identical concurrent calls share one computation (single-flight), streams
 * included; errors, early-closed and failing streams are never cached. The call paths are in
 * `call-value.ts` and `call-stream.ts`; this file holds the public shape.
 */

import type { Listener } from "../base/emitter.js";
import { parseMode } from "../base/mode.js";
import { activeTracer, storeKind } from "../base/tracing.js";
import type { Store } from "../store/store.js";
import { type CallOptions, CallPaths } from "./call-paths.js";
import { type CallSpanInfo, type Invoke, tracedCall } from "./call-span.js";
import { callStream, callStreamSync } from "./call-stream.js";
import { callAsync, callSync } from "./call-value.js";
import { CacheCore } from "./core.js";
import type { Flight } from "./flight.js";
import { type AnyFunction, kindOf } from "./function-kind.js";
import { applyArgumentHooks, checkArgumentHooks, DiscardStore, failAs } from "./hooks.js";
import type { CacheOptions } from "./options.js";
import { type PurgeOptions, purgeFilter, resolveTagsOption, type TagsOption } from "./purge.js";
import { lookupWrapper, rememberWrapper } from "./registry.js";
import type { QueueLike } from "./scheduling.js";
import type { StreamFlight } from "./stream-flight.js";
import type { CacheEvents, CacheStats } from "./telemetry.js";

/** Options of `cache(fn)` only (beyond the ones it shares with `Cache`). */
export interface FunctionCacheOptions<A extends unknown[] = unknown[], R = unknown> {
  /**
   * Receives the call's arguments (and its `this`) and returns what to hash instead of all of
   * them, e.g. `(prompt, temperature) => prompt` to ignore temperature. Its result is the whole
   * key: a method's receiver is then only in the key if `key` puts it there.
   * @default all arguments, and the receiver of a method call
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
   * Returns the argument list to use instead of the call's, for the key *and* for `fn`: `fn`
   * runs on what `redact` returns (e.g. an email replaced by `[EMAIL]`), so a cached result is
   * only ever served for the input that produced it. Calls that redact alike share one result.
   * Synchronous; runs after `noStore`. A hook that throws fails the call (`HookError`).
   */
  redact?: (...args: A) => unknown[];
  /**
   * Return `true` to run this call without the cache: it computes and returns, nothing is read
   * or stored. Sees the arguments as given (before `redact`). Synchronous.
   */
  noStore?: (...args: A) => boolean;
  /**
   * Tags for every entry this function stores, to `fn.cache.purge({ tag })` them later: a list,
   * or a function of the call's arguments (called with its `this`, on a miss, once the result
   * is in), e.g. `(doc) => [\`doc:${doc.id}\`]`. Tags are 1 to 200 characters without
   * whitespace, commas or control characters, at most 32 an entry; not for prompt text.
   * @default none
   */
  tags?: TagsOption<A>;
}

/** Misses wait in a queue (`createQueue()`); the cached function is then asynchronous. */
export interface QueuedOptions {
  /**
   * A queue that misses wait in; hits and coalesced calls never enter it and are never rejected
   * by it.
   */
  queue: QueueLike;
  /** This function's concurrency in `queue`. @default the queue's (1 unless set) */
  concurrency?: number;
}

/** No queue: misses run at once. */
export interface UnqueuedOptions {
  queue?: undefined;
  /** `concurrency` is a function's limit in a `queue`: give the queue too. */
  concurrency?: never;
}

export type CacheFunctionOptions<A extends unknown[] = unknown[], R = unknown> = CacheOptions &
  FunctionCacheOptions<A, R> &
  (QueuedOptions | UnqueuedOptions);

/** What `shouldCache` sees: the resolved value, or the yields of a generator. */
export type CachedValue<R> =
  R extends AsyncGenerator<infer T, unknown, unknown>
    ? T[]
    : R extends Generator<infer T, unknown, unknown>
      ? T[]
      : Awaited<R>;

export type { CallOptions } from "./call-paths.js";

/** The `fn.cache` handle. */
export interface CacheHandle<A extends unknown[], F> {
  /** The namespace of this function's entries in its store. */
  readonly namespace: string;
  readonly store: Store;
  /** Drops every entry of this function, in every session. Resolves to how many. */
  clear(): Promise<number>;
  /**
   * Drops this function's entries (every session) carrying a tag, or written before an age or
   * a `Date`: `purge({ tag: "doc:1" })`, `purge({ olderThan: "7d" })`. Resolves to how many.
   * Rejects on an empty filter and when the store cannot purge.
   */
  purge(options: PurgeOptions): Promise<number>;
  /** Entries visible to the current scope: the current session's when `perSession`. */
  size(): Promise<number>;
  /** Drops the entry for these arguments (of a call without a receiver). */
  delete(...args: A): Promise<boolean>;
  /** Whether these arguments (of a call without a receiver) have an entry. */
  has(...args: A): Promise<boolean>;
  /**
   * The key of a call with these arguments: the canonical SHA-256 (64 hex characters) that
   * `status.key` and the events show for it, the same in every process.
   */
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

/**
 * A store that can answer synchronously: a cached sync function stays sync on it. The overload
 * is chosen by the store's static type, so keep a `new MemoryStore()` typed as itself (not as
 * `Store`) to get the synchronous signature.
 */
export type InProcessStore = Store & { readonly sync: NonNullable<Store["sync"]> };

/**
 * Caches `fn` by the content of its arguments (or of what `key` returns).
 * @throws TypeError when `fn` is not a function or an option is invalid.
 */
export function cache<F extends AnyFunction>(
  fn: F,
  options?: CacheFunctionOptions<Parameters<F>, ReturnType<F>> & {
    store?: InProcessStore | undefined;
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
  const given = options as CacheFunctionOptions & {
    queue?: QueueLike;
    concurrency?: number;
  };
  if (given.key !== undefined && typeof given.key !== "function") {
    throw new TypeError(
      `Expected \`key\` to be a function that receives the arguments, got ${typeof given.key}`,
    );
  }
  if (given.concurrency !== undefined && given.queue === undefined) {
    throw new TypeError(
      "cache(fn): `concurrency` is this function's limit in a queue; pass `queue: createQueue()` with it",
    );
  }
  if (given.shouldCache !== undefined && typeof given.shouldCache !== "function") {
    throw new TypeError(
      `Expected \`shouldCache\` to be a function, got ${typeof given.shouldCache}`,
    );
  }
  checkArgumentHooks(given, "cache(fn)");
  const existing = lookupWrapper(fn, given);
  if (existing !== undefined) return existing as CachedFunction<F>;
  const kind = kindOf(fn);
  const namespace = fn.name === "" ? undefined : `fn:${fn.name}`;
  const pathOptions = {
    key: given.key,
    shouldCache: given.shouldCache,
    coalesce: given.coalesce,
    lane: given.queue?.lane({ concurrency: given.concurrency, name: fn.name || undefined }),
    tags: resolveTagsOption(given.tags),
  };
  let paths: CallPaths<Flight<unknown>> | CallPaths<StreamFlight<unknown, unknown>>;
  let invoke: Invoke;
  if (kind === "generator" || kind === "async-generator") {
    const streams = new CallPaths(
      fn,
      kind,
      new CacheCore<StreamFlight<unknown, unknown>>(given, "cache(fn)", namespace),
      pathOptions,
    );
    // A queue makes calls wait, so it makes them asynchronous.
    invoke =
      kind === "generator" && streams.core.sync !== undefined && streams.lane === undefined
        ? (t, a, o) => callStreamSync(streams, t, a, o)
        : (t, a, o) => callStream(streams, t, a, o);
    paths = streams;
  } else {
    const values = new CallPaths(
      fn,
      kind,
      new CacheCore<Flight<unknown>>(given, "cache(fn)", namespace),
      pathOptions,
    );
    invoke =
      kind === "sync" && values.core.sync !== undefined && values.lane === undefined
        ? (t, a, o) => callSync(values, t, a, o)
        : (t, a, o) => callAsync(values, t, a, o);
    paths = values;
  }
  const core = paths.core;
  if (given.redact !== undefined || given.noStore !== undefined) {
    invoke = hooked(invoke, given, fn, kind, core, pathOptions);
  }
  // Generators are looked up when first pulled, after the call returned: no call span for them.
  const spanInfo: CallSpanInfo | undefined =
    kind === "generator" || kind === "async-generator"
      ? undefined
      : { function: fn.name, namespace: core.namespace, store: storeKind(core.store) };
  const wrapper = function (this: unknown, ...args: unknown[]) {
    const tracer = activeTracer();
    return tracer === undefined || spanInfo === undefined
      ? invoke(this, args, undefined)
      : tracedCall(tracer, spanInfo, invoke, this, args, undefined);
  };
  Object.defineProperty(wrapper, "name", { value: fn.name, configurable: true });
  Object.defineProperty(wrapper, "length", { value: fn.length, configurable: true });
  const handle: CacheHandle<unknown[], AnyFunction> = {
    namespace: core.namespace,
    store: core.store,
    clear: () => core.clear(),
    purge: async (options) => core.purge(purgeFilter(core.namespace, options, core.clock)),
    size: () => core.size(),
    delete: async (...args) => core.remove(paths.keyOf(undefined, args), core.scope()),
    has: async (...args) =>
      (await core.read(paths.keyOf(undefined, args), core.scope())) !== undefined,
    key: (...args) => paths.hashOf(undefined, args),
    stats: () => core.stats(),
    on: (type, listener) => core.telemetry.events.on(type, listener),
    with: (callOptions) => {
      if (callOptions.mode !== undefined) parseMode(callOptions.mode, "mode");
      return function (this: unknown, ...args: unknown[]) {
        const tracer = activeTracer();
        return tracer === undefined || spanInfo === undefined
          ? invoke(this, args, callOptions)
          : tracedCall(tracer, spanInfo, invoke, this, args, callOptions);
      };
    },
  };
  Object.defineProperty(wrapper, "cache", { value: handle, enumerable: true });
  rememberWrapper(fn, given, wrapper);
  return wrapper as unknown as CachedFunction<F>;
}

/**
 * `invoke` behind the `redact` and `noStore` hooks: bypassed calls go through call paths of
 * their own over a store that keeps nothing, with the same kind, queue lane and namespace.
 */
function hooked(
  invoke: Invoke,
  hooks: FunctionCacheOptions,
  fn: AnyFunction,
  kind: ReturnType<typeof kindOf>,
  core: CacheCore<object>,
  pathOptions: ConstructorParameters<typeof CallPaths>[3],
): Invoke {
  const synchronous = core.sync !== undefined;
  const shape =
    kind === "generator" || kind === "async-generator"
      ? kind === "generator" && synchronous && pathOptions.lane === undefined
        ? "generator"
        : "async-generator"
      : kind === "sync" && synchronous && pathOptions.lane === undefined
        ? "sync"
        : "async";
  let bypass: Invoke = invoke;
  if (hooks.noStore !== undefined) {
    const discard = { store: new DiscardStore(synchronous), namespace: core.namespace };
    // Not coalesced: a bypassed call computes every time (a flight stays joinable for a tick
    // after it settles, which would hand a sequential call the previous result).
    const options = { ...pathOptions, key: undefined, shouldCache: undefined, coalesce: false };
    if (kind === "generator" || kind === "async-generator") {
      const streams = new CallPaths(
        fn,
        kind,
        new CacheCore<StreamFlight<unknown, unknown>>(discard, "cache(fn)", undefined),
        options,
      );
      bypass =
        shape === "generator"
          ? (t, a, o) => callStreamSync(streams, t, a, o)
          : (t, a, o) => callStream(streams, t, a, o);
    } else {
      const values = new CallPaths(
        fn,
        kind,
        new CacheCore<Flight<unknown>>(discard, "cache(fn)", undefined),
        options,
      );
      bypass =
        shape === "sync"
          ? (t, a, o) => callSync(values, t, a, o)
          : (t, a, o) => callAsync(values, t, a, o);
    }
  }
  return (thisArg, args, options) => {
    let use: { args: unknown[]; bypass: boolean };
    try {
      use = applyArgumentHooks(hooks, thisArg, args);
    } catch (error) {
      return failAs(shape, error as Error);
    }
    return (use.bypass ? bypass : invoke)(thisArg, use.args, options);
  };
}
