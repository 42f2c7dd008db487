/**
 * Short in-memory keys: for a primitive, or a flat array of primitives (the usual argument
 * list), a collision-free string that a `Map` can use directly, skipping SHA-256.
 *
 * It exists for speed only: a hit with a short key costs tens of nanoseconds instead of the
 * ~1.5 µs of creating and finishing a hash. It is used only by stores that live in this process
 * (persistent and shared stores always get `hashKey`), and it is exact: two values get the same
 * short key if and only if they get the same `hashKey` — including -0 vs 0, `1` vs `"1"` vs
 * `1n` vs `true` vs `[1]`, and lone surrogates. Short keys start with U+0001, so they can
 * never equal a hex digest.
 */

import { hasExtraProperties, isProxy } from "./shape.js";

/** Strings longer than this are hashed: a long key would pin memory and slow the Map's hash. */
const MAX_STRING_LENGTH = 256;
const MAX_ARRAY_LENGTH = 8;

/** The short key of `value` in `context`, or `undefined` if it must be hashed instead. */
export function shortKey(value: unknown, context: string): string | undefined {
  const head = `\u0001${context.length}:${context}`;
  if (Array.isArray(value)) {
    const n = value.length;
    // Only a plain array: hashKey refuses subclasses, proxies and extra properties.
    if (n > MAX_ARRAY_LENGTH || isProxy(value) || Object.getPrototypeOf(value) !== Array.prototype)
      return undefined;
    let out = `${head}[${n}`;
    for (let i = 0; i < n; i++) {
      const item = i in value ? primitive(value[i]) : undefined;
      if (item === undefined) return undefined;
      out += item;
    }
    return hasExtraProperties(value, n) ? undefined : out;
  }
  const item = primitive(value);
  return item === undefined ? undefined : head + item;
}

function primitive(value: unknown): string | undefined {
  switch (typeof value) {
    case "string":
      return value.length <= MAX_STRING_LENGTH ? `s${value.length}:${value}` : undefined;
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
