/**
 * `snapshot(value)`: a deep copy that later mutation of the original cannot reach, for the
 * yields of a generator being recorded (a generator that appends to one array and re-yields it
 * must replay every state) and for `clone: true` caches.
 *
 * It copies exactly the kinds of value a cache can also serialize: primitives, plain objects,
 * arrays, Map, Set, Date, RegExp, ArrayBuffer, typed arrays, DataView and Buffer. Anything else
 * (class instances, functions, sockets, model handles) throws `NotSnapshotableError`, and the
 * caller then yields the live value and skips caching — unlike structuredClone, which would
 * silently turn a class instance into a plain object and replay the wrong type.
 */

import { MAX_DEPTH } from "../key/index.js";

export class NotSnapshotableError extends TypeError {
  override readonly name = "NotSnapshotableError";
  constructor(
    readonly path: string,
    readonly valueType: string,
  ) {
    super(
      `infercache: cannot snapshot ${path} (${valueType}); the result is returned but not cached`,
    );
  }
}

export function snapshot<T>(value: T, root = "value"): T {
  if (typeof value !== "object" || value === null) {
    if (typeof value === "function" || typeof value === "symbol") {
      throw new NotSnapshotableError(root, typeof value);
    }
    return value;
  }
  return copy(value, root, new Map(), 1) as T;
}

/** `depth` counts the objects on the path, as hashKey does: deeper values are refused. */
function copy(value: unknown, path: string, seen: Map<object, unknown>, depth: number): unknown {
  if (typeof value !== "object" || value === null) {
    if (typeof value === "function" || typeof value === "symbol") {
      throw new NotSnapshotableError(path, typeof value);
    }
    return value;
  }
  const done = seen.get(value);
  if (done !== undefined) return done;
  if (depth > MAX_DEPTH) {
    throw new NotSnapshotableError(shorten(path), `nested deeper than ${MAX_DEPTH} levels`);
  }
  const next = depth + 1;
  if (Array.isArray(value)) {
    const out: unknown[] = new Array(value.length);
    seen.set(value, out);
    for (let i = 0; i < value.length; i++) out[i] = copy(value[i], `${path}[${i}]`, seen, next);
    return out;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto === Object.prototype || proto === null) {
    const out: Record<string, unknown> = proto === null ? Object.create(null) : {};
    seen.set(value, out);
    for (const key of Object.keys(value)) {
      const item = copy((value as Record<string, unknown>)[key], `${path}.${key}`, seen, next);
      // `out.__proto__ = item` would call the inherited setter, not make an own property.
      if (key === "__proto__") define(out, key, item);
      else out[key] = item;
    }
    return out;
  }
  if (ArrayBuffer.isView(value)) {
    let out: unknown;
    if (Buffer.isBuffer(value)) out = Buffer.from(value);
    else if (value instanceof DataView) {
      out = new DataView(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength));
    } else out = (value as unknown as { slice(): unknown }).slice();
    seen.set(value, out);
    return out;
  }
  if (value instanceof ArrayBuffer) return remember(seen, value, value.slice(0));
  if (value instanceof Date) return remember(seen, value, new Date(value.getTime()));
  if (value instanceof RegExp) return remember(seen, value, new RegExp(value.source, value.flags));
  if (value instanceof Map) {
    const out = new Map<unknown, unknown>();
    seen.set(value, out);
    for (const [k, v] of value) {
      out.set(copy(k, `${path}.<map key>`, seen, next), copy(v, `${path}.get(…)`, seen, next));
    }
    return out;
  }
  if (value instanceof Set) {
    const out = new Set<unknown>();
    seen.set(value, out);
    for (const item of value) out.add(copy(item, `${path}.<set item>`, seen, next));
    return out;
  }
  const ctor = (value as { constructor?: { name?: string } }).constructor?.name;
  throw new NotSnapshotableError(path, `instance of ${ctor || "anonymous class"}`);
}

/** A path of a thousand segments would make a thousand-segment message: keep its ends. */
function shorten(path: string): string {
  return path.length <= 80 ? path : `${path.slice(0, 60)}…${path.slice(-16)}`;
}

function define(target: object, key: string, value: unknown): void {
  Object.defineProperty(target, key, {
    value,
    writable: true,
    enumerable: true,
    configurable: true,
  });
}

function remember<T>(seen: Map<object, unknown>, from: object, to: T): T {
  seen.set(from, to);
  return to;
}
