/**
 * The `redact` and `noStore` hooks of `cache(fn)` and `Cache`.
 *
 * `noStore(...args)` sees the arguments as given; `true` makes the call a bypass: it computes and
 * returns, and nothing is read or stored (it runs through a second set of call paths, over a
 * store that keeps nothing and without coalescing, so the function keeps its kind and its
 * queue). `redact(...args)` then returns the argument list to use instead — for the key *and*
 * for the function: `fn` runs on the redacted arguments, so a cached result is only ever served
 * for the input that produced it. Calls whose arguments redact the same share
 * one result; that is the point, and the risk.
 *
 * Hooks are synchronous (a sync cached function stays sync). One that throws, or returns what it
 * may not, fails the call with `HookError` and nothing is computed or stored.
 */

import { HookError } from "../base/hook-error.js";
import type { ClearScope, Entry, Scope, SetOutcome, Store, SyncStore } from "../store/store.js";

/** A store that keeps nothing: what a bypassed call writes to. */
export class DiscardStore implements Store {
  readonly kind = "discard";
  readonly sync: SyncStore | undefined;

  constructor(synchronous: boolean) {
    this.sync = synchronous
      ? {
          getSync: () => undefined,
          setSync: () => "stored",
          deleteSync: () => false,
        }
      : undefined;
  }

  async get(_key: string, _scope: Scope): Promise<Entry | undefined> {
    return undefined;
  }
  async set(_key: string, _scope: Scope, _entry: Entry): Promise<SetOutcome> {
    return "stored";
  }
  async delete(): Promise<boolean> {
    return false;
  }
  async clear(_scope?: ClearScope): Promise<number> {
    return 0;
  }
  async size(): Promise<number> {
    return 0;
  }
  async *entries(): AsyncIterable<[key: string, entry: Entry]> {}
  async close(): Promise<void> {}
}

export interface ArgumentHooks {
  redact?: ((...args: never[]) => unknown[]) | undefined;
  noStore?: ((...args: never[]) => boolean) | undefined;
}

/** Checks the hooks once, at construction. */
export function checkArgumentHooks(hooks: ArgumentHooks, what: string): void {
  for (const name of ["redact", "noStore"] as const) {
    const hook = hooks[name];
    if (hook !== undefined && typeof hook !== "function") {
      throw new TypeError(
        `${what}: Expected \`${name}\` to be a function, got \`${String(hook)}\` (${typeof hook})`,
      );
    }
  }
}

/**
 * Runs the hooks on a call's arguments: the arguments to use, and whether the call bypasses the
 * cache. @throws HookError
 */
export function applyArgumentHooks(
  hooks: ArgumentHooks,
  thisArg: unknown,
  args: unknown[],
): { args: unknown[]; bypass: boolean } {
  let bypass = false;
  const noStore = hooks.noStore as ((...args: unknown[]) => unknown) | undefined;
  if (noStore !== undefined) {
    let verdict: unknown;
    try {
      verdict = noStore.apply(thisArg, args);
    } catch (error) {
      throw HookError.threw("noStore", error);
    }
    if (typeof verdict !== "boolean") {
      throw new HookError(
        "noStore",
        `returned ${isPromise(verdict) ? "a promise (hooks are synchronous)" : typeof verdict}, not a boolean`,
      );
    }
    bypass = verdict;
  }
  const redact = hooks.redact as ((...args: unknown[]) => unknown) | undefined;
  if (redact === undefined) return { args, bypass };
  let redacted: unknown;
  try {
    redacted = redact.apply(thisArg, args);
  } catch (error) {
    throw HookError.threw("redact", error);
  }
  if (!Array.isArray(redacted)) {
    throw new HookError(
      "redact",
      `returned ${isPromise(redacted) ? "a promise (hooks are synchronous)" : redacted === null ? "null" : typeof redacted}, not the argument list (an array)`,
    );
  }
  return { args: redacted, bypass };
}

function isPromise(value: unknown): boolean {
  return typeof (value as { then?: unknown } | null)?.then === "function";
}

/** `error` delivered the way a call of this shape delivers errors. */
export function failAs(
  shape: "sync" | "async" | "generator" | "async-generator",
  error: Error,
): unknown {
  switch (shape) {
    case "sync":
      throw error;
    case "async":
      return Promise.reject(error);
    case "generator":
      // biome-ignore lint/correctness/useYield: a generator that fails on its first pull
      return (function* () {
        throw error;
      })();
    case "async-generator":
      // biome-ignore lint/correctness/useYield: a generator that fails on its first pull
      return (async function* () {
        throw error;
      })();
  }
}
