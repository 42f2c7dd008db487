/**
 * Wrapping the same function again with the same options returns the same cached function, so
 * `cache(helper)(...args)` written inside a request handler shares one cache across requests
 * (Gradio's runtime `gr.cache(fn)(...)`, used by its intermediate-cache demo).
 *
 * Options are compared by value for primitives and by identity for functions and objects (a
 * `key` lambda created per call therefore gets a cache of its own: two closures with the same
 * source may capture different values, so comparing them by source would be a wrong hit).
 *
 * The registry never keeps a cache alive on its own: it is a chain of WeakMaps keyed by the
 * function and then by every object or function among the options, so a wrapper goes once its
 * function or any of its option objects (a per-call `key` lambda, a per-call store) is
 * collected — WeakMap entries are ephemerons, so the wrapper referring back to its own key lambda
 * does not pin it. What varies only by primitive options is bounded per chain (least recently
 * wrapped first), so `cache(fn, { ttl: Math.random() })` in a loop cannot grow it either.
 */

/** How many wrappers one function keeps for distinct primitive options. */
const MAX_VARIANTS = 64;

interface Level {
  /** The next level, keyed by the next option object. */
  objects: WeakMap<object, Level> | undefined;
  /** Wrappers by the signature of the primitive options, oldest first. */
  wrappers: Map<string, unknown> | undefined;
}

const roots = new WeakMap<object, Level>();

/** The identity-compared option values in a stable order, and the primitive options' signature. */
function split(options: object): { objects: object[]; signature: string } {
  const objects: object[] = [];
  const parts: string[] = [];
  for (const name of Object.keys(options).sort()) {
    const value = (options as Record<string, unknown>)[name];
    if (value === undefined) continue;
    if ((typeof value === "object" && value !== null) || typeof value === "function") {
      objects.push(value);
      parts.push(`${name}=#${objects.length}`);
    } else {
      parts.push(`${name}=${typeof value}:${String(value)}`);
    }
  }
  return { objects, signature: parts.join("\u0000") };
}

function levelOf(fn: object, objects: object[], create: boolean): Level | undefined {
  let level = roots.get(fn);
  if (level === undefined) {
    if (!create) return undefined;
    level = { objects: undefined, wrappers: undefined };
    roots.set(fn, level);
  }
  let current: Level = level;
  for (const object of objects) {
    let next: Level | undefined = current.objects?.get(object);
    if (next === undefined) {
      if (!create) return undefined;
      current.objects ??= new WeakMap();
      next = { objects: undefined, wrappers: undefined };
      current.objects.set(object, next);
    }
    current = next;
  }
  return current;
}

export function lookupWrapper(fn: object, options: object): unknown {
  const { objects, signature } = split(options);
  const wrappers = levelOf(fn, objects, false)?.wrappers;
  const wrapper = wrappers?.get(signature);
  if (wrapper !== undefined && wrappers !== undefined) {
    // Most recently wrapped last, so the bound drops the variant unused the longest.
    wrappers.delete(signature);
    wrappers.set(signature, wrapper);
  }
  return wrapper;
}

export function rememberWrapper(fn: object, options: object, wrapper: unknown): void {
  const { objects, signature } = split(options);
  const level = levelOf(fn, objects, true) as Level;
  level.wrappers ??= new Map();
  level.wrappers.set(signature, wrapper);
  if (level.wrappers.size > MAX_VARIANTS) {
    const oldest = level.wrappers.keys().next().value as string;
    level.wrappers.delete(oldest);
  }
}
