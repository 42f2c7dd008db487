/**
 * What kind of function `cache(fn)` wraps, and the small value tests the call paths share.
 * The kind decides the wrapper's shape: sync and sync-generator functions stay synchronous on an
 * in-process store; everything else is asynchronous.
 */

// biome-ignore lint/suspicious/noExplicitAny: a wrapper must accept every function type.
export type AnyFunction = (this: any, ...args: any[]) => any;

export type FunctionKind = "sync" | "async" | "generator" | "async-generator";

export function kindOf(fn: AnyFunction): FunctionKind {
  switch (Object.prototype.toString.call(fn)) {
    case "[object AsyncFunction]":
      return "async";
    case "[object GeneratorFunction]":
      return "generator";
    case "[object AsyncGeneratorFunction]":
      return "async-generator";
    default:
      return "sync";
  }
}

/** Not an object and not a function: hashed and compared by value. */
export function isPrimitive(value: unknown): boolean {
  return (typeof value !== "object" || value === null) && typeof value !== "function";
}

export function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === "object" || typeof value === "function") &&
    value !== null &&
    typeof (value as { then?: unknown }).then === "function"
  );
}

/** A sync or async iterator (what a generator function returns). */
export function isIterator(value: unknown): boolean {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { next?: unknown }).next === "function" &&
    (Symbol.asyncIterator in value || Symbol.iterator in value)
  );
}
