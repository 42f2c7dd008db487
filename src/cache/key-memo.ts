/**
 * Remembers which store key a tuple of primitive arguments maps to, so a repeated call skips
 * building and hashing a key string.
 *
 * Building a short key for `("64-char prompt", 0.7)` costs ~250 ns, most of it V8 flattening and
 * hashing a fresh 80-character string, and formatting the double. A walk down nested Maps keyed
 * by the argument values themselves costs a few Map lookups: V8 caches a string's hash in the
 * string, and hashes numbers directly. Map compares keys with SameValueZero, which agrees with
 * `hashKey` equality for primitives (1, "1", true, 1n, null and undefined all differ; every NaN
 * is one key) except that it merges -0 into 0, so -0 gets a sentinel. Only primitives are
 * memoised, strings up to 256 characters (a long prompt would pin memory), and the memo is
 * dropped whole when it reaches its limit, which bounds it without per-entry bookkeeping.
 */

import { unpinInPlace } from "../base/unpin.js";

const NEGATIVE_ZERO = Symbol("-0");
const MAX_STRING_LENGTH = 256;
const MAX_ARITY = 8;

type Level = Map<unknown, unknown>;

export class KeyMemo {
  readonly #limit: number;
  #roots: (Level | undefined)[] = [];
  #empty: string | undefined;
  #size = 0;

  constructor(limit = 4096) {
    this.#limit = limit;
  }

  /** The remembered key of these arguments, or `undefined`. */
  get(args: readonly unknown[]): string | undefined {
    const n = args.length;
    if (n === 0) return this.#empty;
    let level = this.#roots[n];
    for (let i = 0; i < n - 1; i++) {
      if (level === undefined) return undefined;
      level = level.get(slot(args[i])) as Level | undefined;
    }
    return level?.get(slot(args[n - 1])) as string | undefined;
  }

  /** Remembers `key` for `args` when every argument is a short primitive. */
  set(args: readonly unknown[], key: string): void {
    const n = args.length;
    if (n > MAX_ARITY) return;
    for (let i = 0; i < n; i++) if (!memoisable(args[i])) return;
    // A string sliced from a big one would keep its parent alive in the memo's Maps: make it
    // its own flat string (in place, so lookups with the caller's string still compare fast).
    for (let i = 0; i < n; i++) {
      const arg = args[i];
      if (typeof arg === "string") unpinInPlace(arg);
    }
    if (this.#size >= this.#limit) this.clear();
    this.#size++;
    if (n === 0) {
      this.#empty = key;
      return;
    }
    let level = this.#roots[n];
    if (level === undefined) {
      level = new Map();
      this.#roots[n] = level;
    }
    for (let i = 0; i < n - 1; i++) {
      const k = slot(args[i]);
      let next = level.get(k) as Level | undefined;
      if (next === undefined) {
        next = new Map();
        level.set(k, next);
      }
      level = next;
    }
    level.set(slot(args[n - 1]), key);
  }

  clear(): void {
    this.#roots = [];
    this.#empty = undefined;
    this.#size = 0;
  }
}

function slot(value: unknown): unknown {
  return value === 0 && Object.is(value, -0) ? NEGATIVE_ZERO : value;
}

function memoisable(value: unknown): boolean {
  switch (typeof value) {
    case "string":
      return value.length <= MAX_STRING_LENGTH;
    case "number":
    case "boolean":
    case "undefined":
    case "bigint":
      return true;
    case "object":
      return value === null;
    default:
      return false;
  }
}
