/**
 * The context a cached function's body runs in: `currentSignal()` gives it the AbortSignal that
 * fires when every caller waiting for this computation has gone (single-flight shares one
 * computation among callers, so no single caller's signal may stop it).
 */

import { AsyncLocalStorage } from "node:async_hooks";

const computationStorage = new AsyncLocalStorage<AbortSignal>();

/**
 * Inside a cached function: the signal that aborts when no caller is left waiting for this
 * computation. `undefined` outside a cached computation.
 */
export function currentSignal(): AbortSignal | undefined {
  return computationStorage.getStore();
}

export function runComputation<T>(signal: AbortSignal, fn: () => T): T {
  return computationStorage.run(signal, fn);
}
