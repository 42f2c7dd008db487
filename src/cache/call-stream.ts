/**
 * The call paths of generator functions: a sync generator on an in-process store stays a sync
 * generator; async generators (and any generator over an asynchronous store or a queue) are
 * async generators.
 *
 * A hit replays the recorded yields. A miss starts a `StreamFlight` in the cache's flight table:
 * consumers that join late replay what was produced and then follow live, and the flight's
 * record is stored once the source finished (never when it threw or every consumer left).
 */

import { type CacheMode, modeWrites } from "../base/mode.js";
import type { Scope } from "../store/store.js";
import type { CallOptions, CallPaths } from "./call-paths.js";
import { runComputation } from "./computation.js";
import { FlightTable } from "./flight-table.js";
import { snapshot } from "./snapshot.js";
import { StreamFlight, type StreamRecord } from "./stream-flight.js";

type Stream = StreamFlight<unknown, unknown>;
type StreamPaths = CallPaths<Stream>;

/** Generator function, in-process store: stays a sync generator. */
export function callStreamSync(
  paths: StreamPaths,
  thisArg: unknown,
  args: unknown[],
  options: CallOptions | undefined,
): Generator {
  const core = paths.core;
  return (function* () {
    const scope = core.scope();
    const key = paths.keyOf(thisArg, args);
    const mode = paths.modeOf(options);
    if (mode !== "refresh") {
      // This path is chosen only for in-process stores: `sync` is there.
      const entry = core.readSync(core.sync!, key, scope);
      if (entry !== undefined) {
        paths.report("hit", key, scope, entry, options?.status, thisArg, args);
        const record = entry.value as StreamRecord<unknown, unknown>;
        for (const value of record.yields) yield paths.out(value);
        return paths.out(record.returnValue);
      }
      if (mode === "replay") throw paths.replayMiss(key, scope, options?.status, thisArg, args);
    }
    return yield* followSync(paths, joinStream(paths, thisArg, args, key, scope, options, mode));
  })();
}

/** Async generator (or any generator over an asynchronous store). */
export function callStream(
  paths: StreamPaths,
  thisArg: unknown,
  args: unknown[],
  options: CallOptions | undefined,
): AsyncGenerator {
  const core = paths.core;
  return (async function* () {
    const scope = core.scope();
    const key = paths.keyOf(thisArg, args);
    const signal = options?.signal;
    signal?.throwIfAborted();
    const mode = paths.modeOf(options);
    if (mode !== "refresh") {
      const entry = await core.readAny(key, scope);
      if (entry !== undefined) {
        paths.report("hit", key, scope, entry, options?.status, thisArg, args);
        const record = entry.value as StreamRecord<unknown, unknown>;
        for (const value of record.yields) {
          signal?.throwIfAborted();
          yield paths.out(value);
        }
        return paths.out(record.returnValue);
      }
      // Replay answers from stored records only: never from a computation, not even another's.
      if (mode === "replay") throw paths.replayMiss(key, scope, options?.status, thisArg, args);
    }
    return yield* follow(
      paths,
      joinStream(paths, thisArg, args, key, scope, options, mode),
      signal,
    );
  })();
}

/** The flight to follow for a stream miss: an identical one in flight, or a new one. */
function joinStream(
  paths: StreamPaths,
  thisArg: unknown,
  args: unknown[],
  key: string,
  scope: Scope,
  options: CallOptions | undefined,
  mode: CacheMode,
): Stream {
  const status = options?.status;
  if (paths.coalesce && mode !== "refresh") {
    const existing = paths.core.flights.get(FlightTable.id(scope, key));
    if (existing !== undefined) {
      paths.report("coalesced", key, scope, undefined, status, thisArg, args);
      return existing;
    }
  }
  paths.report("miss", key, scope, undefined, status, thisArg, args);
  return startStream(paths, thisArg, args, key, scope, modeWrites(mode));
}

function startStream(
  paths: StreamPaths,
  thisArg: unknown,
  args: unknown[],
  key: string,
  scope: Scope,
  store: boolean,
): Stream {
  const core = paths.core;
  const flights = core.flights;
  const id = FlightTable.id(scope, key);
  const started = core.clock.now();
  const shown = () => paths.hashOf(thisArg, args);
  const fn = paths.fn;
  const flight: Stream = new StreamFlight({
    start: (signal) => {
      const lane = paths.lane;
      if (lane === undefined) return runComputation(signal, () => fn.apply(thisArg, args));
      // With a queue the stream holds a slot from its first pull until it ends.
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
      const written =
        store && paths.allows(record.yields)
          ? core.write(
              key,
              scope,
              paths.entry(record, core.clock.now() - started, thisArg, args),
              shown,
            )
          : undefined;
      flights.releaseAfter(id, flight, written instanceof Promise ? written : undefined);
    },
    discard: () => flights.release(id, flight),
    notSnapshotable: (error) =>
      core.warn(core.publicKey(key, shown), scope, "not-snapshotable", error.message),
  });
  if (paths.coalesce) flights.start(id, flight);
  return flight;
}

function* followSync(paths: StreamPaths, flight: Stream): Generator<unknown, unknown> {
  const me = {};
  flight.enter();
  try {
    for (let i = 0; ; ) {
      if (i < flight.items.length) {
        yield shared(paths, flight, i++, me);
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

async function* follow(
  paths: StreamPaths,
  flight: Stream,
  signal: AbortSignal | undefined,
): AsyncGenerator<unknown, unknown> {
  const me = {};
  flight.enter();
  try {
    for (let i = 0; ; ) {
      signal?.throwIfAborted();
      if (i < flight.items.length) {
        yield shared(paths, flight, i++, me);
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

/** The value consumer `me` sees: live for the one that pulled it, a copy for the others with `clone`. */
function shared(paths: StreamPaths, flight: Stream, index: number, me: object): unknown {
  const value = flight.valueFor(index, me);
  return paths.core.clone && (flight.items[index] as { puller: object }).puller !== me
    ? snapshot(value)
    : value;
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
