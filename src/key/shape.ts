/**
 * What counts as a plain object or a plain array when keying. `encode` and `shortKey` both ask
 * these questions, so they accept, and refuse, exactly the same values.
 *
 * A plain object's data is its own properties, and the function that receives it can read all of
 * them, so every own property must be an enumerable data property with a string key: a hidden
 * (non-enumerable) property would be left out of the key, a symbol key has no content, and a
 * getter runs code that may answer differently when the function reads it. A plain array's data is
 * its elements: any other own enumerable property (the `index`, `input` and `groups` of a RegExp
 * match) or symbol-keyed property would be left out of the key.
 *
 * Not checked, because it would cost a descriptor per element: accessor or non-enumerable
 * elements and non-enumerable named properties on arrays, and named properties on typed arrays.
 * Only `Object.defineProperty` makes those (KEYS.md lists them).
 */

import { types } from "node:util";

export const isProxy: (value: unknown) => boolean = types.isProxy;

const names = Object.getOwnPropertyNames;
const symbols = Object.getOwnPropertySymbols;
const descriptor = Object.getOwnPropertyDescriptor;

/**
 * The own string keys of an object, unsorted, if it has no symbol-keyed property; otherwise
 * `undefined`. Each key must then pass `dataValue`.
 */
export function stringKeys(value: object): string[] | undefined {
  return symbols(value).length === 0 ? names(value) : undefined;
}

/** What `dataValue` returns for a property that is not an enumerable data property. */
export const NOT_DATA: unique symbol = Symbol("not an enumerable data property");

/**
 * The value of the own property `key` if it is an enumerable data property, else `NOT_DATA`.
 * Read from its descriptor, so a getter never runs.
 */
export function dataValue(value: object, key: string): unknown {
  const property = descriptor(value, key);
  return property !== undefined && property.enumerable === true && "value" in property
    ? property.value
    : NOT_DATA;
}

/** Why `stringKeys` or `dataValue` refused a plain object: the first offending property and what is wrong with it. */
export function objectProblem(
  value: object,
): { key: string | symbol; kind: "symbol" | "accessor" | "hidden" } | undefined {
  for (const key of names(value)) {
    const property = descriptor(value, key);
    if (property === undefined) continue;
    if (!("value" in property)) return { key, kind: "accessor" };
    if (property.enumerable !== true) return { key, kind: "hidden" };
  }
  const symbol = symbols(value)[0];
  return symbol === undefined ? undefined : { key: symbol, kind: "symbol" };
}

/**
 * True when a plain array has own properties besides its elements and `length`. `elements` is
 * the count of indices present (the length less the holes).
 */
export function hasExtraProperties(value: readonly unknown[], elements: number): boolean {
  return Object.keys(value).length !== elements || symbols(value).length !== 0;
}

/** The first own property of an array that is not an element, for the error message. */
export function extraProperty(value: readonly unknown[]): string | symbol | undefined {
  const named = Object.keys(value).find((key) => !isIndex(key));
  return named ?? symbols(value)[0];
}

/**
 * For Date, RegExp, Map, Set, ArrayBuffer and DataView: the first own property other than
 * `allowed` (a RegExp's `lastIndex`), or `undefined`. None of these has indexed properties, so
 * listing them is cheap.
 */
export function unexpectedProperty(value: object, allowed?: string): string | symbol | undefined {
  const own = names(value);
  for (const key of own) if (key !== allowed) return key;
  return symbols(value)[0];
}

function isIndex(key: string): boolean {
  const n = Number(key);
  return Number.isInteger(n) && n >= 0 && n < 2 ** 32 - 1 && String(n) === key;
}
