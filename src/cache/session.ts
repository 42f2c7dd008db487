/**
 * Sessions: `runInSession(id, fn)` scopes per-session caches through AsyncLocalStorage, and
 * `endSession(id)` drops that session's entries in every per-session cache of the process.
 *
 * Sessions are matched exactly (Gradio clears by string prefix, so ending "a" also drops
 * "a:b"). Caches register weakly: a cache that is no longer referenced is not kept alive here.
 */

import { AsyncLocalStorage } from "node:async_hooks";

const sessionStorage = new AsyncLocalStorage<string>();

/** Something holding per-session entries: every `Cache` and `cache(fn)` with `perSession`. */
export interface SessionHolder {
  clearSession(id: string): Promise<number>;
}

const holders = new Set<WeakRef<SessionHolder>>();
const registry = new FinalizationRegistry<WeakRef<SessionHolder>>((ref) => holders.delete(ref));

/** Runs `fn` with `id` as the current session; per-session caches used inside see it. */
export function runInSession<T>(id: string, fn: () => T): T {
  if (typeof id !== "string" || id === "") {
    throw new TypeError(
      `Expected the session id to be a non-empty string, got \`${String(id)}\` (${typeof id})`,
    );
  }
  return sessionStorage.run(id, fn);
}

/** The session of the current async context, or `undefined` outside `runInSession`. */
export function currentSession(): string | undefined {
  return sessionStorage.getStore();
}

/**
 * Drops every entry of session `id` in every per-session cache of this process, and returns
 * how many were removed. Entries of other sessions and shared entries are untouched.
 */
export async function endSession(id: string): Promise<number> {
  let removed = 0;
  const pending: Promise<number>[] = [];
  for (const ref of holders) {
    const holder = ref.deref();
    if (holder === undefined) holders.delete(ref);
    else pending.push(holder.clearSession(id));
  }
  for (const count of await Promise.all(pending)) removed += count;
  return removed;
}

export function registerSessionHolder(holder: SessionHolder): void {
  const ref = new WeakRef(holder);
  holders.add(ref);
  registry.register(holder, ref);
}
