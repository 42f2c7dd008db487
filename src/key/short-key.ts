/**
 * Short in-memory keys: for primitives and plain JSON-shaped values (plain objects, plain arrays,
 * strings, numbers, booleans, null, undefined, bigint), an unambiguous string that a `Map` can
 * use directly, skipping the canonical encoding and SHA-256.
 *
 * It exists for speed only: a hit with a short key costs what building and looking up one string
 * costs, instead of creating and finishing a hash (~1.5 µs, plus the encoding). It is used only by
 * stores that live in this process (persistent and shared stores always get `hashKey`), and it is
 * exact: two values get the same short key if and only if they get the same `hashKey` — types are
 * tagged (`1`, `"1"`, `1n`, `true`, `[1]` and `{ "0": 1 }` differ), -0 differs from 0, a hole from
 * undefined, and a lone surrogate from U+FFFD (the string is kept as it is, code unit for code
 * unit). Object keys are sorted, so key order does not matter, as in `hashKey`. Short keys start
 * with U+0001, so they can never equal a hex digest.
 *
 * Every item is self-delimiting, so no escaping is needed: `s<length>:<code units>`, `n<number>;`
 * (String(number) is exact for doubles; every NaN is `nNaN;`), `n-0;`, `b<bigint>;`, `T`, `F`,
 * `U` (undefined), `N` (null), `H` (a hole), `[<count>` + items, `{<count>` + (key item, value
 * item) pairs. A count is followed by an item's letter, never by a digit.
 *
 * Anything else returns `undefined`, and the caller hashes: whatever `hashKey` encodes another way
 * (Dates, Maps, typed arrays, hooked instances) or refuses (functions, symbols, cycles, class
 * instances, proxies, getters, hidden properties), and values past the bounds: nested deeper than
 * MAX_DEPTH, or a key longer than MAX_LENGTH characters. The checks that decide what is plain are
 * shared with the encoder (`shape.ts`), so the two accept exactly the same values.
 */

import { dataValue, hasExtraProperties, isProxy, NOT_DATA, stringKeys } from "./shape.js";

/**
 * The longest short key. Longer keys would pin memory, and V8 stops hashing a string's content
 * past 16383 characters (it hashes the length only), which would make a Map of long keys slow.
 */
const MAX_LENGTH = 16_000;
/** The deepest JSON shape keyed here; deeper values (and cycles) are hashed, or refused there. */
const MAX_DEPTH = 32;

/** The short key of `value` in `context`, or `undefined` if it must be hashed instead. */
export function shortKey(value: unknown, context: string): string | undefined {
  const head = `\u0001${context.length}:${context}`;
  if (typeof value !== "object" || value === null) {
    const item = primitive(value);
    return item === undefined || item.length > MAX_LENGTH ? undefined : head + item;
  }
  if (Array.isArray(value) && !isProxy(value)) {
    const flat = flatList(value, head);
    if (flat !== undefined) return flat;
  }
  return jsonKey(value, head);
}

/**
 * The common case, an argument list of primitives, without recursion. It builds the same string
 * as the JSON route would; `undefined` sends anything else (an object element, a hole, an extra
 * property) there.
 */
function flatList(value: unknown[], head: string): string | undefined {
  if (Object.getPrototypeOf(value) !== Array.prototype) return undefined;
  const n = value.length;
  let key = `${head}[${n}`;
  for (let i = 0; i < n; i++) {
    const item = primitive(value[i]);
    if (item === undefined || key.length > MAX_LENGTH) return undefined;
    key += item;
  }
  // A hole read as undefined above: it shows here as one element fewer than the length.
  if (key.length > MAX_LENGTH || hasExtraProperties(value, n)) return undefined;
  return key;
}

/** A primitive's item, or `undefined` for objects (but null), functions and symbols. */
function primitive(value: unknown): string | undefined {
  switch (typeof value) {
    case "string":
      return `s${value.length}:${value}`;
    case "number":
      return Object.is(value, -0) ? "n-0;" : `n${value};`;
    case "boolean":
      return value ? "T" : "F";
    case "undefined":
      return "U";
    case "bigint":
      return `b${value};`;
    case "object":
      return value === null ? "N" : undefined;
    default:
      return undefined;
  }
}

/*
 * The JSON route collects pieces and joins them once at the end: a flat string costs the Map one
 * pass to hash, where a rope of a few hundred appended pieces costs it a flattening walk first
 * (about as much again for a chat request). The array is reused from call to call (no user code
 * runs during a walk, so nothing can re-enter). It keeps the last key's pieces until the next
 * call, at most MAX_LENGTH characters. `length` tracks the key's length for the bound.
 */
const parts: string[] = [];
let count = 0;
let length = 0;

function jsonKey(value: unknown, head: string): string | undefined {
  count = 0;
  length = 0;
  push(head);
  if (!append(value, 0) || length > MAX_LENGTH) return undefined;
  parts.length = count;
  return parts.join("");
}

function push(piece: string): void {
  parts[count++] = piece;
  length += piece.length;
}

function append(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case "string":
      if (value.length <= MAX_NAME) push(stringPiece(value));
      else {
        if (length + value.length > MAX_LENGTH) return false;
        push(`s${value.length}:`);
        push(value);
      }
      return true;
    case "number":
      push(numberPiece(value));
      return true;
    case "boolean":
      push(value ? "T" : "F");
      return true;
    case "undefined":
      push("U");
      return true;
    case "bigint":
      push(`b${value};`);
      return true;
    case "object": {
      if (value === null) {
        push("N");
        return true;
      }
      if (depth === MAX_DEPTH || length > MAX_LENGTH || isProxy(value)) return false;
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto === Array.prototype) {
        return Array.isArray(value) && appendArray(value, depth + 1);
      }
      if (proto === Object.prototype || proto === null) return appendObject(value, depth + 1);
      return false;
    }
    default:
      return false;
  }
}

function appendArray(value: unknown[], depth: number): boolean {
  const n = value.length;
  push(n < SMALL ? (arrayHeads[n] as string) : `[${n}`);
  let holes = 0;
  for (let i = 0; i < n; i++) {
    const item = value[i];
    if (item === undefined && !(i in value)) {
      holes++;
      push("H");
    } else if (!append(item, depth) || length > MAX_LENGTH) {
      return false;
    }
  }
  return !hasExtraProperties(value, n - holes);
}

function appendObject(value: object, depth: number): boolean {
  const keys = stringKeys(value);
  if (keys === undefined) return false;
  const n = keys.length;
  sortKeys(keys);
  push(n < SMALL ? (objectHeads[n] as string) : `{${n}`);
  for (let i = 0; i < n; i++) {
    const key = keys[i] as string;
    const item = dataValue(value, key);
    if (item === NOT_DATA) return false;
    push(key.length <= MAX_NAME ? stringPiece(key) : `s${key.length}:${key}`);
    if (!append(item, depth) || length > MAX_LENGTH) return false;
  }
  return true;
}

/** Pieces for small counts and small integers, built once: templates allocate on every call. */
const SMALL = 256;
const arrayHeads = Array.from({ length: SMALL }, (_, n) => `[${n}`);
const objectHeads = Array.from({ length: SMALL }, (_, n) => `{${n}`);
const integers = Array.from({ length: SMALL }, (_, n) => `n${n};`);

function numberPiece(value: number): string {
  if (value >= 0 && value < SMALL && Number.isInteger(value)) {
    return Object.is(value, -0) ? "n-0;" : (integers[value] as string);
  }
  return `n${value};`;
}

/**
 * `s<length>:<string>` for short strings, remembered: property names and short values ("role",
 * "user", "function") repeat in every request, and a lookup is cheaper than building the piece.
 * It is a pure cache (the piece depends only on the string), bounded by dropping it whole.
 */
const MAX_NAME = 32;
const MAX_PIECES = 4096;
let pieces = new Map<string, string>();

function stringPiece(value: string): string {
  let piece = pieces.get(value);
  if (piece === undefined) {
    piece = `s${value.length}:${value}`;
    if (pieces.size >= MAX_PIECES) pieces = new Map();
    pieces.set(value, piece);
  }
  return piece;
}

/** Ascending UTF-16 code-unit order, as `hashKey` sorts. Insertion sort for the usual few keys. */
function sortKeys(keys: string[]): void {
  const n = keys.length;
  if (n > 16) {
    keys.sort();
    return;
  }
  for (let i = 1; i < n; i++) {
    const key = keys[i] as string;
    let j = i - 1;
    while (j >= 0 && (keys[j] as string) > key) {
      keys[j + 1] = keys[j] as string;
      j--;
    }
    keys[j + 1] = key;
  }
}
