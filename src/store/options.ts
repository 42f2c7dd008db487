/** Checks shared by the stores' constructors and writes. */

import type { Entry } from "./store.js";

export function nonNegativeInteger(value: number, option: string): number {
  if (Number.isSafeInteger(value) && value >= 0) return value;
  throw new TypeError(
    `Expected \`${option}\` to be a non-negative integer (0 = unlimited), got \`${String(value)}\` (${typeof value})`,
  );
}

/** The entry with the store's default lifetime when it was written without its own. */
export function withDefaultTtl(entry: Entry, ttl: number): Entry {
  return entry.expiresAt === undefined && ttl > 0
    ? { ...entry, expiresAt: entry.createdAt + ttl }
    : entry;
}
