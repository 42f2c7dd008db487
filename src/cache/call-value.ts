/**
 * The call paths of functions that return a value: a sync function on an in-process store
 * (stays synchronous: a hit is a key, a Map lookup and an LRU touch), and async functions,
 * promise-returning functions and any function over an asynchronous store or a queue.
 *
 * A miss starts a `Flight` in the cache's flight table; identical calls join it until its entry
 * is written. With a store that coordinates processes (Redis) a miss first takes the store's
 * lock, or waits for the process that holds it.
 */

import type { FlightLease, Scope } from "../store/store.js";
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
  const refresh = options?.refresh === true;
  if (!refresh) {
    // This path is chosen only for in-process stores: `sync` is there.
    const entry = core.readSync(core.sync!, key, scope);
    if (entry !== undefined) {
      paths.report("hit", key, scope, entry, status, thisArg, args);
      return paths.out(entry.value);
    }
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
  const result = paths.fn.apply(thisArg, args);
  if (isPromiseLike(result)) {
    // A plain function that returned a promise: cache what it resolves to.
    return fly(paths, key, scope, options, async (signal) =>
      finish(paths, thisArg, args, key, scope, started, await result, options, signal),
    );
  }
  const computeMs = core.clock.now() - started;
  if (status !== undefined) status.computeMs = computeMs;
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
  const refresh = options?.refresh === true;
  const sync = core.sync;
  if (!refresh) {
    if (sync !== undefined) {
      const entry = core.readSync(sync, key, scope);
      if (entry !== undefined) {
        paths.report("hit", key, scope, entry, status, thisArg, args);
        try {
          return Promise.resolve(paths.out(entry.value));
        } catch (error) {
          return Promise.reject(error);
        }
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
      const found = await core.lookupShared(key, scope);
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
      const task = () => paths.fn.apply(thisArg, args);
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
      );
      if (lease !== undefined) core.releaseAfter(lease, outcome.written);
      return outcome;
    } catch (error) {
      if (lease !== undefined) core.releaseAfter(lease, undefined);
      throw error;
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
): Computed {
  const core = paths.core;
  const computeMs = core.clock.now() - started;
  const status = options?.status;
  if (status !== undefined) status.computeMs = computeMs;
  // Every caller left and the computation was aborted: its result is not kept.
  if (signal.aborted) return { result, written: undefined };
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
