/**
 * `unpin(value)`: what a long-lived cache should hold instead of `value`, so that it keeps alive
 * what the value weighs and not what the value happens to point into.
 *
 * Two things pin more than they weigh, and no JavaScript API tells when:
 * - Strings. V8 makes `big.slice(a, b)` (also `substring`, regex groups, `trim`, `split` parts)
 *   of 13 characters or more a SlicedString that keeps `big` alive, and `a + b` a ConsString
 *   that keeps both parts. Every string of that length is therefore replaced by a fresh copy,
 *   once, at set time. Strings are values: writing an equal copy into a writable data property,
 *   an array element or a Map value is invisible. Where no write is possible (Map keys, Set
 *   members, frozen objects, accessors, proxies) the string is internalized instead, which turns
 *   the string object itself into a pointer to a flat copy (slower: it hashes the string into
 *   V8's string table). Private class fields cannot be reached at all.
 * - Typed-array views. `big.subarray(0, 16)` keeps all of `big`'s buffer (small `Buffer`s share
 *   an 8 KiB pool). A view whose buffer is more than twice its size (and over 4 KiB larger) is
 *   replaced by a copy of its window. That is visible (another object, another buffer), so the
 *   user's objects are left alone: the containers that lead to such a view are copied instead
 *   (copy-on-write, only plain objects, arrays and Maps; Map keys and Set members keep their
 *   identity), so the cache stores an equal value and the caller keeps exactly what it returned.
 *   A view reachable only through something that cannot be copied faithfully (a class
 *   instance, a Map key, a cycle back to a copied container) stays as it is, and
 *   `estimateBytes` counts its whole buffer. Views of a SharedArrayBuffer are shared on purpose
 *   and never copied.
 *
 * O(size of the value) work, done once per stored value; reads pay nothing.
 */

import { types } from "node:util";
import { sparse } from "./estimate-bytes.js";

/** V8 makes sliced and cons strings only from this length (SlicedString::kMinLength). */
const MIN_PINNING_LENGTH = 13;
/** A view is copied when its buffer holds more than this beyond the view... */
const MIN_WASTE = 4096;

/**
 * `value`, or an equal value to store in its place that pins nothing beyond itself (see the
 * module comment). Strings inside `value` may be replaced by equal copies in place.
 */
export function unpin<T>(value: T): T {
  if (typeof value === "string") return unpinString(value) as T;
  if (typeof value !== "object" || value === null) return value;
  return new Unpinner().visit(value) as T;
}

/**
 * Whether `value` may pin more than it weighs: an object (which `unpin` walks) or a string long
 * enough to be a slice or a concatenation. Numbers, booleans and short strings never do.
 */
export function mayPin(value: unknown): boolean {
  return typeof value === "object"
    ? value !== null
    : typeof value === "string" && value.length >= MIN_PINNING_LENGTH;
}

/** An equal string that pins no other string: a fresh copy when `value` could be a slice. */
export function unpinString(value: string): string {
  const length = value.length;
  if (length < MIN_PINNING_LENGTH) return value;
  // Two halves make a cons string of exactly these characters; flattening it copies them into
  // a new sequential string and drops the halves (and with them whatever they pointed into).
  const half = length >> 1;
  const copy = value.slice(0, half) + value.slice(half);
  flatten(copy);
  return copy;
}

/**
 * Makes `value` itself stop pinning another string, keeping its identity: for strings whose
 * identity matters (Map keys that lookups compare by pointer first). It internalizes the string:
 * V8 hashes it into its string table and turns the string object into a pointer to a flat copy.
 * Costs about a microsecond for short strings, more for long ones; use `unpinString` where an
 * equal copy will do.
 */
export function unpinInPlace(value: string): void {
  if (value.length < MIN_PINNING_LENGTH) return;
  // A keyed store with a string that is not yet a property name internalizes it.
  internTable[value] = 0;
  delete internTable[value];
}

/**
 * Flattens a cons string (`a + b`) in place so it no longer holds its parts, keeping its
 * identity: a few nanoseconds for a flat string. A slice (`big.slice(…)`) is not reached by
 * this: see `unpinString` and `unpinInPlace`.
 */
export function flattenInPlace(value: string): void {
  if (value.length >= MIN_PINNING_LENGTH) flatten(value);
}

/** Where flattening reads go, so that an optimizing compiler cannot drop them as unused. */
const sink = { last: 0 };

/** Reading a character of a cons string flattens it (V8 replaces its parts by one copy). */
function flatten(value: string): void {
  sink.last = value.charCodeAt(0);
}

const internTable: Record<string, number> = Object.create(null);

/** Whether a view keeps much more buffer alive than it shows. */
function pins(view: ArrayBufferView): boolean {
  const buffer = view.buffer;
  if (!(buffer instanceof ArrayBuffer)) return false; // SharedArrayBuffer: shared on purpose
  const waste = buffer.byteLength - view.byteLength;
  return waste > MIN_WASTE && waste > view.byteLength;
}

function copyView(view: ArrayBufferView): ArrayBufferView {
  const start = view.byteOffset;
  const end = start + view.byteLength;
  if (Buffer.isBuffer(view)) {
    // Not Buffer.from: small Buffers come from the shared pool, which would pin it again.
    const out = Buffer.allocUnsafeSlow(view.byteLength);
    view.copy(out);
    return out;
  }
  if (view instanceof DataView) return new DataView(view.buffer.slice(start, end));
  return (view as unknown as { slice(): ArrayBufferView }).slice();
}

class Unpinner {
  /** Each object visited and what to store in its place: itself, or its copy. */
  readonly #done = new Map<object, unknown>();
  /** Copies made, so that a string used many times is copied once. */
  readonly #strings = new Map<string, string>();

  visit(value: object): unknown {
    const done = this.#done.get(value);
    if (done !== undefined) return done;
    // Until it is finished, a cycle back to this object finds the object itself.
    this.#done.set(value, value);
    let out: unknown = value;
    if (ArrayBuffer.isView(value)) {
      if (pins(value)) out = copyView(value);
    } else if (types.isProxy(value)) {
      this.#intern(value);
    } else if (Object.getPrototypeOf(value) === Object.prototype) {
      out = this.#object(value); // the common case first
    } else if (Array.isArray(value)) {
      out = this.#array(value);
    } else if (value instanceof Map) {
      out = this.#map(value);
    } else if (value instanceof Set) {
      for (const item of value) this.#keep(item);
    } else if (!isOpaque(value)) {
      out = this.#object(value);
    }
    if (out !== value) this.#done.set(value, out);
    return out;
  }

  #string(value: string): string {
    let copy = this.#strings.get(value);
    if (copy === undefined) {
      copy = unpinString(value);
      this.#strings.set(value, copy);
    }
    return copy;
  }

  /** Unpins what can be unpinned in place inside something whose identity must stay. */
  #keep(item: unknown): void {
    if (typeof item === "string") unpinInPlace(item);
    else if (typeof item === "object" && item !== null) {
      // Strings inside are fixed in place, but a copy cannot stand for the object itself (it is
      // found by identity), here or anywhere else it appears after this.
      this.visit(item);
      this.#done.set(item, item);
    }
  }

  #array(value: unknown[]): unknown[] {
    let copy: unknown[] | undefined;
    const writable = !Object.isFrozen(value);
    const plain = Object.getPrototypeOf(value) === Array.prototype;
    const visitItem = (i: number): void => {
      const item = value[i];
      if (typeof item === "string") {
        if (item.length < MIN_PINNING_LENGTH) return;
        if (writable && writableData(value, i)) (copy ?? value)[i] = this.#string(item);
        else unpinInPlace(item);
      } else if (typeof item === "object" && item !== null) {
        const replaced = this.visit(item);
        if (replaced !== item && plain) {
          copy ??= value.slice();
          copy[i] = replaced;
        }
      }
    };
    forEachIndex(value, visitItem);
    if (copy === undefined) return value;
    if (Object.isFrozen(value)) Object.freeze(copy);
    return copy;
  }

  #map(value: Map<unknown, unknown>): Map<unknown, unknown> {
    let copy: Map<unknown, unknown> | undefined;
    const plain = Object.getPrototypeOf(value) === Map.prototype;
    for (const [key, item] of value) {
      this.#keep(key);
      if (typeof item === "string") {
        if (item.length >= MIN_PINNING_LENGTH) {
          // Setting an existing key keeps its place in the order.
          Map.prototype.set.call(copy ?? value, key, this.#string(item));
        }
      } else if (typeof item === "object" && item !== null) {
        const replaced = this.visit(item);
        if (replaced !== item && plain) {
          copy ??= new Map(value);
          copy.set(key, replaced);
        }
      }
    }
    return copy ?? value;
  }

  #object(value: object): object {
    const record = value as Record<string, unknown>;
    const proto = Object.getPrototypeOf(value) as unknown;
    const plain = proto === Object.prototype || proto === null;
    let replacements: [string, unknown][] | undefined;
    for (const key of Object.keys(value)) {
      const item = record[key];
      if (typeof item === "string") {
        if (item.length < MIN_PINNING_LENGTH) continue;
        if (!(writableData(value, key) && write(record, key, this.#string(item)))) {
          unpinInPlace(item);
        }
      } else if (typeof item === "object" && item !== null) {
        const replaced = this.visit(item);
        if (replaced !== item && plain && dataProperty(value, key)) {
          replacements ??= [];
          replacements.push([key, replaced]);
        }
      }
    }
    if (replacements === undefined) return value;
    // An exact shallow copy: same prototype, descriptors, order and integrity level.
    const descriptors = Object.getOwnPropertyDescriptors(value);
    for (const [key, item] of replacements) (descriptors[key] as PropertyDescriptor).value = item;
    const copy = Object.create(proto as object | null, descriptors) as object;
    if (Object.isFrozen(value)) Object.freeze(copy);
    else if (Object.isSealed(value)) Object.seal(copy);
    else if (!Object.isExtensible(value)) Object.preventExtensions(copy);
    return copy;
  }

  /** Strings inside a proxy, reached without writing through its traps. */
  #intern(value: object): void {
    for (const key of Object.keys(value)) this.#keep((value as Record<string, unknown>)[key]);
  }
}

/** Objects whose contents are not walked: nothing in them is a cached string or view. */
function isOpaque(value: object): boolean {
  return (
    value instanceof Date ||
    value instanceof RegExp ||
    value instanceof ArrayBuffer ||
    (typeof SharedArrayBuffer !== "undefined" && value instanceof SharedArrayBuffer) ||
    value instanceof Promise ||
    value instanceof String ||
    value instanceof Number ||
    value instanceof Boolean ||
    value instanceof WeakMap ||
    value instanceof WeakSet
  );
}

/** Writes an equal string back; false where an exotic object refuses (a module namespace). */
function write(record: Record<string, unknown>, key: string, item: string): boolean {
  try {
    record[key] = item;
    return true;
  } catch {
    return false;
  }
}

function writableData(value: object, key: string | number): boolean {
  return Reflect.getOwnPropertyDescriptor(value, key)?.writable === true;
}

function dataProperty(value: object, key: string): boolean {
  const descriptor = Reflect.getOwnPropertyDescriptor(value, key);
  return descriptor !== undefined && "value" in descriptor;
}

function forEachIndex(value: unknown[], visit: (i: number) => void): void {
  const n = value.length;
  if (sparse(value)) {
    for (const key of Object.keys(value)) {
      const index = Number(key);
      if (Number.isInteger(index)) visit(index);
    }
    return;
  }
  for (let i = 0; i < n; i++) visit(i);
}
