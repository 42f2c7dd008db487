/**
 * What every call path of one cached function shares: the function, its options, how a call
 * (receiver and arguments) becomes a key, and how a result is prepared for storing and handed
 * out. The paths themselves are in `call-value.ts` (sync, async, promise-returning) and
 * `call-stream.ts` (generators).
 *
 * The receiver is part of the key. A method shared by two objects must not hand one object's
 * result to the other, so a call's `this`, when it is not `undefined`, goes into the key's
 * context: a primitive by value, an object with a `[Symbol.for("infercache.hash")]()` hook by
 * content, any other object by identity — a number from a WeakMap, never reused while the object
 * lives, and gone with it. An identity cannot be found again in another process or after a
 * restart, so with a persistent or shared store such a call is refused unless a `key` option says
 * what of the call matters (`key` is called with the same `this`, and its result is the whole key).
 */

import { anyModeScope, CacheMissError, type CacheMode } from "../base/mode.js";
import { HASH_HOOK, UnhashableError } from "../key/index.js";
import type { Entry, Scope } from "../store/store.js";
import type { CacheCore } from "./core.js";
import { type AnyFunction, type FunctionKind, isIterator, isPrimitive } from "./function-kind.js";
import type { QueueLane, QueuePosition } from "./scheduling.js";
import { NotSnapshotableError, snapshot } from "./snapshot.js";
import type { CallStatus, Outcome, StaleReason } from "./telemetry.js";

/** Per-call options, through `fn.cache.with(options)`. */
export interface CallOptions {
  /** Stops this caller waiting; the computation is aborted when no caller is left. */
  signal?: AbortSignal;
  /** Filled in with what the call did: hit, miss or coalesced, its key, age and compute time. */
  status?: CallStatus;
  /** Skip the lookup, compute afresh and store the new result (the same as `mode: "refresh"`). */
  refresh?: boolean;
  /**
   * This call's mode, before `withCacheMode` and the cache's `mode` (see `CommonCacheOptions`).
   * @default the current `withCacheMode`'s, else the cache's
   */
  mode?: CacheMode;
  /** With a `queue`: called with the call's position and ETA while a miss waits. */
  onPosition?: (update: QueuePosition) => void;
}

export interface CallPathsOptions {
  key?: ((...args: never[]) => unknown) | undefined;
  shouldCache?: ((result: never) => boolean) | undefined;
  coalesce?: boolean | undefined;
  lane?: QueueLane | undefined;
  /** The `tags` option, checked (`purge.ts`). */
  tags?:
    | readonly string[]
    | ((thisArg: unknown, args: unknown[]) => readonly string[] | undefined)
    | undefined;
}

const identities = new WeakMap<object, number>();
let nextIdentity = 0;

function identityOf(value: object): number {
  let id = identities.get(value);
  if (id === undefined) {
    id = ++nextIdentity;
    identities.set(value, id);
  }
  return id;
}

export class CallPaths<F extends object> {
  readonly fn: AnyFunction;
  readonly kind: FunctionKind;
  readonly core: CacheCore<F>;
  readonly coalesce: boolean;
  /** Where misses wait for a slot, with a queue. */
  readonly lane: QueueLane | undefined;
  readonly #key: ((...args: unknown[]) => unknown) | undefined;
  readonly #shouldCache: ((result: unknown) => boolean) | undefined;
  readonly #tags: CallPathsOptions["tags"];

  constructor(fn: AnyFunction, kind: FunctionKind, core: CacheCore<F>, options: CallPathsOptions) {
    this.fn = fn;
    this.kind = kind;
    this.core = core;
    this.#key = options.key as ((...args: unknown[]) => unknown) | undefined;
    this.#shouldCache = options.shouldCache as ((result: unknown) => boolean) | undefined;
    this.coalesce = options.coalesce ?? true;
    this.lane = options.lane;
    this.#tags = options.tags;
  }

  /** The entry for a computed value of this call, with its tags. @throws TypeError (bad tags) */
  entry(value: unknown, computeMs: number, thisArg: unknown, args: unknown[]): Entry {
    const entry = this.core.entry(value, computeMs);
    const tags = this.#tags;
    if (tags === undefined) return entry;
    const list = typeof tags === "function" ? tags(thisArg, args) : tags;
    if (list !== undefined) entry.tags = list;
    return entry;
  }

  /** The mode a call runs in. */
  modeOf(options: CallOptions | undefined): CacheMode {
    // A plain call outside any `withCacheMode` has its cache's mode: no lookup on the hit path.
    if (options === undefined) return anyModeScope() ? this.core.modeOf(undefined) : this.core.mode;
    return options.refresh === true ? "refresh" : this.core.modeOf(options.mode);
  }

  /** A replay call found nothing: reported as a miss, and the error that names its key. */
  replayMiss(
    key: string,
    scope: Scope,
    status: CallStatus | undefined,
    thisArg: unknown,
    args: unknown[],
  ): CacheMissError {
    this.report("miss", key, scope, undefined, status, thisArg, args);
    return new CacheMissError(this.core.publicKey(key, () => this.hashOf(thisArg, args)));
  }

  /** The store key of a call. @throws UnhashableError, TypeError (an identity on a shared store) */
  keyOf(thisArg: unknown, args: unknown[]): string {
    const core = this.core;
    const key = this.#key;
    if (key !== undefined) {
      const value = key.apply(thisArg, args);
      // A key function usually returns one primitive (a prompt): memoise it as a 1-tuple.
      return isPrimitive(value)
        ? core.keyOfTuple([value], value, "key(...args)")
        : core.keyOf(value, "key(...args)");
    }
    if (thisArg === undefined) return core.keyOfTuple(args, args, "args");
    return core.keyOf(args, "args", this.#receiverContext(thisArg));
  }

  /** The canonical key of a call: what `status.key`, events and `fn.cache.key()` show. */
  hashOf(thisArg: unknown, args: unknown[]): string {
    const key = this.#key;
    if (key !== undefined) return this.core.hashOf(key.apply(thisArg, args), "key(...args)");
    return this.core.hashOf(
      args,
      "args",
      thisArg === undefined ? "" : this.#receiverContext(thisArg),
    );
  }

  /** The public key of a call whose store key is `key`, when someone will see it. */
  shownKey(
    outcome: Outcome,
    status: CallStatus | undefined,
    key: string,
    thisArg: unknown,
    args: unknown[],
  ): string | undefined {
    if (!this.core.telemetry.wantsKey(outcome, status)) return undefined;
    return this.core.publicKey(key, () => this.hashOf(thisArg, args));
  }

  report(
    outcome: Outcome,
    key: string,
    scope: Scope,
    entry: Entry | undefined,
    status: CallStatus | undefined,
    thisArg: unknown,
    args: unknown[],
    reason?: StaleReason,
  ): void {
    this.core.telemetry.report(
      outcome,
      this.shownKey(outcome, status, key, thisArg, args),
      scope,
      entry,
      status,
      reason,
    );
  }

  /** The value handed to a caller: a copy with `clone`, else the stored value itself. */
  out<T>(value: T): T {
    return this.core.clone ? snapshot(value) : value;
  }

  /** Whether `shouldCache` lets `result` be stored (for generators: the yields). */
  allows(result: unknown): boolean {
    return this.#shouldCache === undefined || this.#shouldCache(result);
  }

  /** Prepares a computed value for storing; `undefined` when it must not be stored. */
  storable(
    key: string,
    scope: Scope,
    value: unknown,
    shown: () => string,
  ): { value: unknown } | undefined {
    if (!this.allows(value)) return undefined;
    const core = this.core;
    if (isIterator(value)) {
      core.warn(
        core.publicKey(key, shown),
        scope,
        "not-snapshotable",
        "the function returned an iterator; declare it as a generator function (function* or async function*) to cache what it yields",
      );
      return undefined;
    }
    if (!core.clone) return { value };
    try {
      return { value: snapshot(value, "result") };
    } catch (error) {
      if (!(error instanceof NotSnapshotableError)) throw error;
      core.warn(core.publicKey(key, shown), scope, "not-snapshotable", error.message);
      return undefined;
    }
  }

  /** The key context a receiver adds. */
  #receiverContext(thisArg: unknown): string {
    switch (typeof thisArg) {
      case "object":
      case "function": {
        if (thisArg === null) return "\u0000this=null";
        if (typeof (thisArg as { [HASH_HOOK]?: unknown })[HASH_HOOK] === "function") {
          // By content: the receiver's own hash goes into the context.
          return `\u0000this=h${this.core.hashOf(thisArg, "this")}`;
        }
        if (!this.core.identityKeys) {
          throw new TypeError(
            `cache(fn): ${this.fn.name || "the function"} was called as a method of an object (\`this\` is ${describe(thisArg)}); with a persistent or shared store an object's identity cannot be found again in another process or after a restart, so pass a \`key\` option (it is called with the same \`this\`) that returns what of the call matters, or give the class a [Symbol.for("infercache.hash")]() method`,
          );
        }
        return `\u0000this=#${identityOf(thisArg)}`;
      }
      case "number":
        return `\u0000this=n${Object.is(thisArg, -0) ? "-0" : String(thisArg)}`;
      case "string":
        return `\u0000this=s${thisArg}`;
      case "boolean":
        return thisArg ? "\u0000this=T" : "\u0000this=F";
      case "bigint":
        return `\u0000this=b${thisArg}`;
      default:
        throw new UnhashableError("this", typeof thisArg, "a symbol has no content to hash");
    }
  }
}

function describe(value: object): string {
  if (typeof value === "function") return "a function";
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === "string" && name !== "" && name !== "Object"
    ? `an instance of ${name}`
    : "an object";
}
