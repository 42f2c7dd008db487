/**
 * The call paths of functions that return a value: a sync function on an in-process store
 * (stays synchronous: a hit is a key, a Map lookup and an LRU touch), and async functions,
 * promise-returning functions and any function over an asynchronous store or a queue.
 *
 * A miss starts a `Flight` in the cache's flight table; identical calls join it until its entry
 * is written. With a store that coordinates processes (Redis) a miss first takes the store's
 * lock, or waits for the process that holds it.
 *
 * Serving stale: an entry past its ttl but within `staleWhileRevalidate` answers at once and
 * starts one background refresh (`revalidate`, through `CacheCore.refreshInBackground`); one within
 * `staleIfError` is kept as the fallback of the computation, and answers instead of its error.
 * Neither writes anything: only a computation that succeeds stores a new entry.
 */

import { type CacheMode, modeWrites } from "../base/mode.js";
import { traceCompute } from "../base/tracing.js";
import type { Entry, FlightLease, Scope } from "../store/store.js";
import type { CallOptions, CallPaths } from "./call-paths.js";
import { runComputation } from "./computation.js";
import { Flight } from "./flight.js";
import { FlightTable } from "./flight-table.js";
import { isPromiseLike } from "./function-kind.js";
import { NotSnapshotableError, snapshot } from "./snapshot.js";

type ValuePaths = CallPaths<Flight<unknown>>;

interface Computed {
  result: unknown;
  /** The entry's write, while an asynchronous store is still taking it. */
  written: Promise<unknown> | undefined;
}

/** Sync function, in-process store: stays synchronous. */
export function callSync(
  paths: ValuePaths,
  thisArg: unknown,
  args: unknown[],
  options: CallOptions | undefined,
): unknown {
  const core = paths.core;
  const scope = core.scope();
  const key = paths.keyOf(thisArg, args);
  const status = options?.status;
  const mode = paths.modeOf(options);
  let fallback: Entry | undefined;
  if (mode !== "refresh") {
    // This path is chosen only for in-process stores: `sync` is there.
    const entry = core.readEntrySync(core.sync!, key, scope);
    if (entry !== undefined) {
      const staleMs = entry.staleAt === undefined ? undefined : core.staleMs(entry);
      if (staleMs === undefined) {
        paths.report("hit", key, scope, entry, status, thisArg, args);
        return paths.out(entry.value);
      }
      // Replay serves fresh entries only; read-only serves stale ones but refreshes nothing.
      if (mode !== "replay" && staleMs < core.stale.whileRevalidateMs) {
        paths.report("stale", key, scope, entry, status, thisArg, args, "revalidate");
        if (modeWrites(mode)) revalidate(paths, thisArg, args, key, scope);
        return paths.out(entry.value);
      }
      if (mode !== "replay" && staleMs < core.stale.ifErrorMs) fallback = entry;
    }
    // Replay answers from stored entries only: never from a computation, not even another's.
    if (mode === "replay") throw paths.replayMiss(key, scope, status, thisArg, args);
    if (paths.coalesce) {
      // Only a plain function that returned a promise leaves a flight: join it.
      const flight = core.flights.get(FlightTable.id(scope, key));
      if (flight !== undefined) {
        paths.report("coalesced", key, scope, undefined, status, thisArg, args);
        return flight.join(options?.signal);
      }
    }
  }
  paths.report("miss", key, scope, undefined, status, thisArg, args);
  const started = core.clock.now();
  let result: unknown;
  try {
    result = traceCompute(paths.fn, thisArg, args);
  } catch (error) {
    if (fallback === undefined) throw error;
    return serveFallback(paths, thisArg, args, key, scope, fallback, status);
  }
  if (isPromiseLike(result)) {
    // A plain function that returned a promise: cache what it resolves to.
    const pending = result;
    return fly(paths, key, scope, options, async (signal) => {
      let value: unknown;
      try {
        value = await pending;
      } catch (error) {
        if (fallback === undefined || signal.aborted) throw error;
        return {
          result: serveFallback(paths, thisArg, args, key, scope, fallback, status),
          written: undefined,
        };
      }
      return finish(paths, thisArg, args, key, scope, started, value, options, signal, mode);
    });
  }
  const computeMs = core.clock.now() - started;
  if (status !== undefined) status.computeMs = computeMs;
  if (!modeWrites(mode)) return result;
  const shown = () => paths.hashOf(thisArg, args);
  const storable = paths.storable(key, scope, result, shown);
  // In-process store: the write is synchronous and never rejects.
  if (storable !== undefined) {
    void core.write(key, scope, paths.entry(storable.value, computeMs, thisArg, args), shown);
  }
  return result;
}

/** Async function (or any function over an asynchronous store or a queue). */
export function callAsync(
  paths: ValuePaths,
  thisArg: unknown,
  args: unknown[],
  options: CallOptions | undefined,
): Promise<unknown> {
  const core = paths.core;
  let key: string;
  let scope: Scope;
  try {
    scope = core.scope();
    key = paths.keyOf(thisArg, args);
  } catch (error) {
    return Promise.reject(error);
  }
  const signal = options?.signal;
  if (signal?.aborted) return Promise.reject(signal.reason);
  const status = options?.status;
  // Never throws: per-call modes are checked by `with()`, scoped ones by `withCacheMode`.
  const mode = paths.modeOf(options);
  const refresh = mode === "refresh";
  const sync = core.sync;
  let fallback: Entry | undefined;
  if (mode === "replay") return replay(paths, thisArg, args, key, scope, status);
  if (!refresh) {
    if (sync !== undefined) {
      const entry = core.readEntrySync(sync, key, scope);
      if (entry !== undefined) {
        const use = staleUse(paths, entry);
        if (use !== "fallback" && use !== "none") {
          paths.report(use, key, scope, entry, status, thisArg, args, "revalidate");
          if (use === "stale" && modeWrites(mode)) revalidate(paths, thisArg, args, key, scope);
          try {
            return Promise.resolve(paths.out(entry.value));
          } catch (error) {
            return Promise.reject(error);
          }
        }
        if (use === "fallback") fallback = entry;
      }
    }
    if (paths.coalesce) {
      const flight = core.flights.get(FlightTable.id(scope, key));
      if (flight !== undefined) {
        paths.report("coalesced", key, scope, undefined, status, thisArg, args);
        const joined = flight.join(signal);
        // The shared result was not stored if it could not be copied: hand it over as it is.
        return core.clone ? joined.then((value) => copyIfPossible(value)) : joined;
      }
    }
  }
  return fly(paths, key, scope, options, async (flightSignal) => {
    let lease: FlightLease | undefined;
    if (sync === undefined && !refresh) {
      const entry = await core.readEntry(key, scope);
      const use = entry === undefined ? "none" : staleUse(paths, entry);
      if (use === "hit" || use === "stale") {
        paths.report(use, key, scope, entry, status, thisArg, args, "revalidate");
        if (use === "stale" && modeWrites(mode)) revalidate(paths, thisArg, args, key, scope);
        return { result: paths.out((entry as Entry).value), written: undefined };
      }
      if (use === "fallback") fallback = entry;
      const found = await core.lookupShared(key, scope, false);
      if (found.entry !== undefined) {
        paths.report(
          found.waited ? "coalesced" : "hit",
          key,
          scope,
          found.entry,
          status,
          thisArg,
          args,
        );
        return { result: paths.out(found.entry.value), written: undefined };
      }
      lease = found.lease;
    }
    paths.report("miss", key, scope, undefined, status, thisArg, args);
    try {
      const started = core.clock.now();
      const task = () => traceCompute(paths.fn, thisArg, args);
      const lane = paths.lane;
      const result: unknown =
        lane === undefined
          ? await runComputation(flightSignal, task)
          : await lane.run(task, { signal: flightSignal, onPosition: options?.onPosition });
      const outcome = finish(
        paths,
        thisArg,
        args,
        key,
        scope,
        started,
        result,
        options,
        flightSignal,
        mode,
      );
      if (lease !== undefined) core.releaseAfter(lease, outcome.written);
      return outcome;
    } catch (error) {
      if (lease !== undefined) core.releaseAfter(lease, undefined);
      if (fallback === undefined || flightSignal.aborted) throw error;
      return {
        result: serveFallback(paths, thisArg, args, key, scope, fallback, status),
        written: undefined,
      };
    }
  });
}

/**
 * What an entry read from the store may do for a call: answer as a `hit` (fresh), answer
 * `stale` (within `staleWhileRevalidate`), stand by as the `fallback` of a computation that
 * fails (within `staleIfError`), or nothing (`none`: stale past every window).
 */
function staleUse(paths: ValuePaths, entry: Entry): "hit" | "stale" | "fallback" | "none" {
  const core = paths.core;
  const staleMs = entry.staleAt === undefined ? undefined : core.staleMs(entry);
  if (staleMs === undefined) return "hit";
  if (staleMs < core.stale.whileRevalidateMs) return "stale";
  return staleMs < core.stale.ifErrorMs ? "fallback" : "none";
}

/** A computation failed within `staleIfError`: the stale value answers instead (nothing is written). */
function serveFallback(
  paths: ValuePaths,
  thisArg: unknown,
  args: unknown[],
  key: string,
  scope: Scope,
  fallback: Entry,
  status: CallOptions["status"],
): unknown {
  paths.report("stale", key, scope, fallback, status, thisArg, args, "error");
  return paths.out(fallback.value);
}

/**
 * Refreshes an entry served stale, once, in the background: a stale read while it runs starts no
 * other. On a store shared by processes it takes the cross-process lock as a miss does, and
 * leaves the refresh to the process that holds it. Its failure is reported (an `error` event
 * with `operation: "refresh"`, `stats().errors`) and never reaches a caller; the stale entry
 * stays as it was.
 */
function revalidate(
  paths: ValuePaths,
  thisArg: unknown,
  args: unknown[],
  key: string,
  scope: Scope,
): void {
  const core = paths.core;
  core.refreshInBackground(scope, key, async () => {
    // Runs after the caller has its answer: a sync function runs here, not inside the stale call.
    let lease: FlightLease | undefined;
    const coordinator = core.sync === undefined ? core.store.flights : undefined;
    if (coordinator !== undefined) {
      lease = await coordinator.acquire(key, scope);
      // Another process holds the lock: it is computing this entry already.
      if (lease === undefined) return;
    }
    try {
      // No caller waits for a refresh, so nothing aborts it.
      const signal = new AbortController().signal;
      const started = core.clock.now();
      const task = () => traceCompute(paths.fn, thisArg, args);
      const lane = paths.lane;
      const result: unknown =
        lane === undefined ? await runComputation(signal, task) : await lane.run(task, { signal });
      const outcome = finish(
        paths,
        thisArg,
        args,
        key,
        scope,
        started,
        result,
        undefined,
        signal,
        "read-write",
      );
      // Still refreshing until the entry is written, so no stale read starts another.
      await outcome.written;
    } finally {
      // Released before the refresh settles, so the next stale read may take the lock again.
      if (lease !== undefined) {
        await lease.release().catch((error: unknown) => core.telemetry.fail("unlock", error));
      }
    }
  });
}

/** Stores a computed result (in the background for asynchronous stores). */
function finish(
  paths: ValuePaths,
  thisArg: unknown,
  args: unknown[],
  key: string,
  scope: Scope,
  started: number,
  result: unknown,
  options: CallOptions | undefined,
  signal: AbortSignal,
  mode: CacheMode,
): Computed {
  const core = paths.core;
  const computeMs = core.clock.now() - started;
  const status = options?.status;
  if (status !== undefined) status.computeMs = computeMs;
  // Every caller left and the computation was aborted: its result is not kept.
  if (signal.aborted || !modeWrites(mode)) return { result, written: undefined };
  const shown = () => paths.hashOf(thisArg, args);
  const storable = paths.storable(key, scope, result, shown);
  if (storable === undefined) return { result, written: undefined };
  const write = core.write(
    key,
    scope,
    paths.entry(storable.value, computeMs, thisArg, args),
    shown,
  );
  return { result, written: write instanceof Promise ? write : undefined };
}

/**
 * A call in replay mode: the stored entry, or `CacheMissError` — no flight, no cross-process
 * lock, no computation. A read that fails (a store down) is a miss like any other.
 */
async function replay(
  paths: ValuePaths,
  thisArg: unknown,
  args: unknown[],
  key: string,
  scope: Scope,
  status: CallOptions["status"],
): Promise<unknown> {
  const core = paths.core;
  const entry = await core.readAny(key, scope);
  if (entry === undefined) throw paths.replayMiss(key, scope, status, thisArg, args);
  paths.report("hit", key, scope, entry, status, thisArg, args);
  return paths.out(entry.value);
}

/** Starts a flight running `compute` and joins it. */
function fly(
  paths: ValuePaths,
  key: string,
  scope: Scope,
  options: CallOptions | undefined,
  compute: (signal: AbortSignal) => Promise<Computed>,
): Promise<unknown> {
  const flights = paths.core.flights;
  const id = FlightTable.id(scope, key);
  let written: Promise<unknown> | undefined;
  const flight: Flight<unknown> = new Flight(
    async (signal) => {
      const outcome = await compute(signal);
      written = outcome.written;
      return outcome.result;
    },
    () => flights.release(id, flight),
  );
  if (paths.coalesce) {
    flights.start(id, flight);
    // Stay joinable until the entry is written, so a call in between does not run again.
    const done = () => flights.releaseAfter(id, flight, written);
    flight.promise.then(done, done);
  }
  return flight.join(options?.signal);
}

function copyIfPossible<T>(value: T): T {
  try {
    return snapshot(value);
  } catch (error) {
    if (error instanceof NotSnapshotableError) return value;
    throw error;
  }
}
