/**
 * Wrapping the same function again with the same options returns the same cached function, so
 * `cache(helper)(...args)` written inside a request handler shares one cache across requests
 * (Gradio's runtime `gr.cache(fn)(...)`, used by its intermediate-cache demo).
 *
 * The registry is keyed weakly by the function: a function created per request takes its cache
 * with it when it is collected (Gradio keeps up to 1024 wrappers strongly instead). Options are
 * compared by value for primitives and by identity for functions and objects (a `key` lambda
 * created per call therefore gets its own cache, as in Gradio).
 */

const registry = new WeakMap<object, Map<string, unknown>>();
const identities = new WeakMap<object, number>();
let nextIdentity = 0;

function identity(value: object): number {
  let id = identities.get(value);
  if (id === undefined) {
    id = ++nextIdentity;
    identities.set(value, id);
  }
  return id;
}

/** A string that is equal for option objects that configure the same cache. */
export function optionsSignature(options: object): string {
  const parts: string[] = [];
  for (const name of Object.keys(options).sort()) {
    const value = (options as Record<string, unknown>)[name];
    if (value === undefined) continue;
    const text =
      (typeof value === "object" && value !== null) || typeof value === "function"
        ? `#${identity(value)}`
        : `${typeof value}:${String(value)}`;
    parts.push(`${name}=${text}`);
  }
  return parts.join("\u0000");
}

export function lookupWrapper(fn: object, signature: string): unknown {
  return registry.get(fn)?.get(signature);
}

export function rememberWrapper(fn: object, signature: string, wrapper: unknown): void {
  let byOptions = registry.get(fn);
  if (byOptions === undefined) {
    byOptions = new Map();
    registry.set(fn, byOptions);
  }
  byOptions.set(signature, wrapper);
}
