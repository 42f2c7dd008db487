/**
 * The canonical, type-tagged binary encoding of a value (format v1, specified in KEYS.md).
 *
 * It is what `hashKey` feeds to SHA-256. The encoding is written into a `Sink` in small pieces;
 * large binary values are handed to the sink as views over their own memory so they are hashed
 * without being copied. It never falls back to identity: a value it cannot encode by content
 * throws `UnhashableError` naming the path, the type and the fix.
 */

import { types } from "node:util";
import { HashSink } from "./hash-sink.js";
import {
  dataValue,
  extraProperty,
  hasExtraProperties,
  isProxy,
  NOT_DATA,
  objectProblem,
  stringKeys,
  unexpectedProperty,
} from "./shape.js";

/** Where encoded bytes go. `bytes` may receive views over caller memory: do not keep them. */
export interface Sink {
  byte(value: number): void;
  u32(value: number): void;
  f64(value: number): void;
  /** UTF-8 bytes of a well-formed string (the caller writes the length first). */
  utf8(value: string, byteLength: number): void;
  bytes(view: Uint8Array): void;
}

/** The hook a class implements to be hashed by content. It returns any hashable value. */
export const HASH_HOOK: unique symbol = Symbol.for("infercache.hash") as never;

export const Tag = {
  undefined: 0x00,
  null: 0x01,
  false: 0x02,
  true: 0x03,
  number: 0x04,
  bigint: 0x05,
  string: 0x06,
  illFormedString: 0x07,
  date: 0x08,
  regexp: 0x09,
  /** An array element that is absent (`0 in array` is false), apart from one holding undefined. */
  hole: 0x0a,
  /** A RegExp whose `lastIndex` is not 0: a /g or /y regex's `exec` starts there. */
  regexpWithLastIndex: 0x0b,
  array: 0x10,
  object: 0x11,
  map: 0x12,
  set: 0x13,
  arrayBuffer: 0x20,
  sharedArrayBuffer: 0x21,
  typedArray: 0x22,
  hooked: 0x30,
} as const;

/** Element-type codes for Tag.typedArray. DataView and Buffer are kinds of their own. */
const viewCodes = new Map<unknown, number>([
  [DataView.prototype, 0],
  [Int8Array.prototype, 1],
  [Uint8Array.prototype, 2],
  [Uint8ClampedArray.prototype, 3],
  [Int16Array.prototype, 4],
  [Uint16Array.prototype, 5],
  [Int32Array.prototype, 6],
  [Uint32Array.prototype, 7],
  [Float32Array.prototype, 8],
  [Float64Array.prototype, 9],
  [BigInt64Array.prototype, 10],
  [BigUint64Array.prototype, 11],
  [Buffer.prototype, 13],
]);
// Float16Array exists from Node 24 on; give it its code where the runtime has it.
const float16 = (globalThis as { Float16Array?: { prototype: unknown } }).Float16Array;
if (float16 !== undefined) viewCodes.set(float16.prototype, 12);

/**
 * The built-in kinds encoded by content, by their exact prototype. An instance of a subclass has
 * another prototype and is refused (unless it has a hash hook): a subclass may carry fields and
 * behaviour that the base type's encoding does not see.
 */
enum Builtin {
  Date,
  RegExp,
  Map,
  Set,
  ArrayBuffer,
  SharedArrayBuffer,
}
const builtins = new Map<unknown, Builtin>([
  [Date.prototype, Builtin.Date],
  [RegExp.prototype, Builtin.RegExp],
  [Map.prototype, Builtin.Map],
  [Set.prototype, Builtin.Set],
  [ArrayBuffer.prototype, Builtin.ArrayBuffer],
]);
if (typeof SharedArrayBuffer !== "undefined") {
  builtins.set(SharedArrayBuffer.prototype, Builtin.SharedArrayBuffer);
}

/** Base types named when refusing a subclass, by prototype. */
const baseNames = new Map<unknown, string>([
  [Array.prototype, "Array"],
  [Date.prototype, "Date"],
  [RegExp.prototype, "RegExp"],
  [Map.prototype, "Map"],
  [Set.prototype, "Set"],
  [ArrayBuffer.prototype, "ArrayBuffer"],
  [Buffer.prototype, "Buffer"],
]);
for (const proto of viewCodes.keys()) {
  const name = (proto as { constructor: { name: string } }).constructor.name;
  if (!baseNames.has(proto)) baseNames.set(proto, name);
}
if (typeof SharedArrayBuffer !== "undefined") {
  baseNames.set(SharedArrayBuffer.prototype, "SharedArrayBuffer");
}

const DEFAULT_FIX =
  'pass a `key` option that returns only hashable data, or give the class a [Symbol.for("infercache.hash")]() method';

/** Thrown for a value that cannot be hashed by content. A `TypeError`, so callers may catch that. */
export class UnhashableError extends TypeError {
  override readonly name = "UnhashableError";
  /** Where the value sits, e.g. `args[1].model`. */
  readonly path: string;
  /** What it is, e.g. `instance of LlamaModel`, `function`, `cycle`. */
  readonly valueType: string;

  constructor(path: string, valueType: string, reason: string, fix: string = DEFAULT_FIX) {
    super(`infercache: cannot hash ${path} (${valueType}): ${reason}; ${fix}`);
    this.path = path;
    this.valueType = valueType;
  }
}

/**
 * How deep values may nest (objects, arrays, Maps, Sets, hook results: every object on the path
 * counts). Deeper values are refused with `UnhashableError` instead of overflowing the stack;
 * the encoder uses two or three frames a level, so 1000 levels leave room for the caller's stack.
 */
export const MAX_DEPTH = 1000;

/**
 * Objects on the path being encoded. Module-wide rather than per call, so a hash hook that calls
 * `hashKey` itself keeps counting instead of starting again at 0 (`encode` restores it on exit).
 */
let depth = 0;

/** Internal: collects path segments while an unhashable value unwinds the recursion. */
class Unhashable {
  /** Innermost first: each level pushes its own segment as the error passes through it. */
  readonly segments: string[] = [];
  constructor(
    readonly valueType: string,
    readonly reason: string,
    readonly fix: string = DEFAULT_FIX,
  ) {}
}

/** Adds `segment` to an `Unhashable` passing through; segments are built only on this path. */
function at(error: unknown, segment: string): unknown {
  if (error instanceof Unhashable) error.segments.push(segment);
  return error;
}

/** A long path keeps its first ~48 characters and its last two segments: `args[0].a.a.a….a.a`. */
const PATH_HEAD_CHARS = 48;
const PATH_TAIL = 2;

function formatPath(root: string, innermostFirst: readonly string[]): string {
  const segments = [...innermostFirst].reverse();
  let head = root;
  let i = 0;
  while (i < segments.length && (i === 0 || head.length < PATH_HEAD_CHARS)) head += segments[i++];
  if (segments.length - i <= PATH_TAIL) return head + segments.slice(i).join("");
  return `${head}…${segments.slice(segments.length - PATH_TAIL).join("")}`;
}

const le = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Encodes `value` into `sink`. `root` names the value in error paths (`args`, `key`, `value`).
 * Throws `UnhashableError`.
 */
export function encode(value: unknown, sink: Sink, root = "value"): void {
  const outer = depth;
  try {
    encodeValue(value, sink, new Set());
  } catch (error) {
    if (error instanceof Unhashable) {
      const path = formatPath(root, error.segments);
      throw new UnhashableError(path, error.valueType, error.reason, error.fix);
    }
    throw error;
  } finally {
    depth = outer;
  }
}

function encodeValue(value: unknown, sink: Sink, ancestors: Set<object>): void {
  switch (typeof value) {
    case "string":
      encodeString(value, sink);
      return;
    case "number":
      sink.byte(Tag.number);
      sink.f64(value);
      return;
    case "boolean":
      sink.byte(value ? Tag.true : Tag.false);
      return;
    case "undefined":
      sink.byte(Tag.undefined);
      return;
    case "bigint":
      encodeBigInt(value, sink);
      return;
    case "object":
      if (value === null) {
        sink.byte(Tag.null);
        return;
      }
      if (depth === MAX_DEPTH) {
        throw new Unhashable(
          kindOf(value),
          `nested deeper than ${MAX_DEPTH} levels`,
          "pass a `key` option that returns a flatter value",
        );
      }
      depth++;
      encodeObject(value, sink, ancestors);
      depth--;
      return;
    case "function":
      throw new Unhashable("function", "functions have no content to hash");
    case "symbol":
      throw new Unhashable("symbol", "symbols have no content to hash");
  }
}

export function encodeString(value: string, sink: Sink): void {
  if (value.isWellFormed()) {
    sink.byte(Tag.string);
    const length = Buffer.byteLength(value, "utf8");
    sink.u32(length);
    sink.utf8(value, length);
    return;
  }
  // Lone surrogates would be replaced by U+FFFD in UTF-8 and collide with it: keep code units.
  sink.byte(Tag.illFormedString);
  sink.u32(value.length);
  const units = new Uint16Array(value.length);
  for (let i = 0; i < value.length; i++) units[i] = value.charCodeAt(i);
  sink.bytes(littleEndian(units));
}

function encodeBigInt(value: bigint, sink: Sink): void {
  sink.byte(Tag.bigint);
  const negative = value < 0n;
  let magnitude = negative ? -value : value;
  const bytes: number[] = [];
  while (magnitude > 0n) {
    bytes.push(Number(magnitude & 0xffn));
    magnitude >>= 8n;
  }
  bytes.reverse();
  sink.byte(negative ? 1 : 0);
  sink.u32(bytes.length);
  sink.bytes(Uint8Array.from(bytes));
}

/**
 * Dispatches on the kind of object, by its exact prototype. The recursion goes encodeValue →
 * encodeObject → the kind's function → encodeValue, and each keeps few locals, so a level costs
 * little stack.
 */
function encodeObject(value: object, sink: Sink, ancestors: Set<object>): void {
  if (ancestors.has(value)) throw new Unhashable("cycle", "the value refers to itself");
  // A proxy's traps run while it is read and can answer anything, its prototype included.
  if (isProxy(value)) {
    throw new Unhashable(
      "proxy",
      "its traps run code while it is read",
      "pass the object it wraps (Vue's toRaw(), MobX's toJS()) or a plain copy, or pass a `key` option",
    );
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto === Array.prototype && Array.isArray(value)) {
    encodeArray(value, sink, ancestors);
    return;
  }
  if (proto === Object.prototype || proto === null) {
    encodePlainObject(value as Record<string, unknown>, sink, ancestors);
    return;
  }
  const code = viewCodes.get(proto);
  if (code !== undefined && ArrayBuffer.isView(value)) {
    encodeView(value, code, sink);
    return;
  }
  const builtin = builtins.get(proto);
  if (builtin !== undefined && encodeBuiltin(builtin, value, sink, ancestors)) return;
  const hook = (value as { [HASH_HOOK]?: unknown })[HASH_HOOK];
  if (typeof hook === "function") {
    encodeHooked(value, hook as Hook, sink, ancestors);
    return;
  }
  throw refuseInstance(value);
}

/** Encodes a Date, RegExp, Map, Set or buffer; `false` if it only has the prototype of one. */
function encodeBuiltin(kind: Builtin, value: object, sink: Sink, ancestors: Set<object>): boolean {
  switch (kind) {
    case Builtin.Date:
      if (!types.isDate(value)) return false;
      noOtherProperties(value);
      sink.byte(Tag.date);
      sink.f64((value as Date).getTime());
      return true;
    case Builtin.RegExp:
      if (!types.isRegExp(value)) return false;
      noOtherProperties(value, "lastIndex");
      encodeRegExp(value as RegExp, sink, ancestors);
      return true;
    case Builtin.Map:
      if (!types.isMap(value)) return false;
      noOtherProperties(value);
      encodeMap(value as Map<unknown, unknown>, sink, ancestors);
      return true;
    case Builtin.Set:
      if (!types.isSet(value)) return false;
      noOtherProperties(value);
      encodeSet(value as Set<unknown>, sink, ancestors);
      return true;
    case Builtin.ArrayBuffer:
      if (!types.isArrayBuffer(value)) return false;
      noOtherProperties(value);
      encodeBuffer(Tag.arrayBuffer, value as ArrayBuffer, sink);
      return true;
    case Builtin.SharedArrayBuffer:
      if (!types.isSharedArrayBuffer(value)) return false;
      noOtherProperties(value);
      encodeBuffer(Tag.sharedArrayBuffer, value as SharedArrayBuffer, sink);
      return true;
  }
}

function noOtherProperties(value: object, allowed?: string): void {
  const extra = unexpectedProperty(value, allowed);
  if (extra === undefined) return;
  throw new Unhashable(
    describe(value),
    `own property ${quote(extra)} is not part of its ${className(value)} content`,
    "pass a copy without it, or pass a `key` option",
  );
}

function encodeArray(value: unknown[], sink: Sink, ancestors: Set<object>): void {
  ancestors.add(value);
  const n = value.length;
  sink.byte(Tag.array);
  sink.u32(n);
  let holes = 0;
  for (let i = 0; i < n; i++) {
    const item = value[i];
    if (item === undefined && !(i in value)) {
      holes++;
      sink.byte(Tag.hole);
      continue;
    }
    try {
      encodeValue(item, sink, ancestors);
    } catch (error) {
      throw at(error, `[${i}]`);
    }
  }
  if (hasExtraProperties(value, n - holes)) {
    const extra = extraProperty(value);
    throw new Unhashable(
      "array with extra properties",
      extra === undefined
        ? "an element is not enumerable"
        : `own property ${quote(extra)} is not an element`,
      "copy the elements with [...array] (a RegExp match result also carries index, input and groups), or pass a `key` option",
    );
  }
  ancestors.delete(value);
}

function encodeRegExp(value: RegExp, sink: Sink, ancestors: Set<object>): void {
  const lastIndex = (value as { lastIndex: unknown }).lastIndex;
  const at0 = Object.is(lastIndex, 0);
  sink.byte(at0 ? Tag.regexp : Tag.regexpWithLastIndex);
  encodeString(value.source, sink);
  encodeString(value.flags, sink);
  if (at0) return;
  try {
    encodeValue(lastIndex, sink, ancestors);
  } catch (error) {
    throw at(error, ".lastIndex");
  }
}

function encodeView(value: ArrayBufferView, code: number, sink: Sink): void {
  sink.byte(Tag.typedArray);
  sink.byte(code);
  const bytesPerElement = (value as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1;
  u64(sink, value.byteLength / bytesPerElement);
  const view = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  sink.bytes(bytesPerElement === 1 || le ? view : swapToLittleEndian(view, bytesPerElement));
}

function encodeBuffer(tag: number, value: ArrayBufferLike, sink: Sink): void {
  sink.byte(tag);
  u64(sink, value.byteLength);
  sink.bytes(new Uint8Array(value));
}

/**
 * Map and Set: each member is encoded on its own and digested, and the digests are sorted, so
 * the order of insertion does not matter whatever the members are.
 */
function encodeMap(value: Map<unknown, unknown>, sink: Sink, ancestors: Set<object>): void {
  ancestors.add(value);
  const digests: Uint8Array[] = [];
  for (const [key, item] of value) {
    const inner = new HashSink();
    try {
      encodeValue(key, inner, ancestors);
    } catch (error) {
      throw at(error, ".<map key>");
    }
    try {
      encodeValue(item, inner, ancestors);
    } catch (error) {
      throw at(error, `.get(${preview(key)})`);
    }
    digests.push(inner.digest());
  }
  writeDigests(Tag.map, digests, sink);
  ancestors.delete(value);
}

function encodeSet(value: Set<unknown>, sink: Sink, ancestors: Set<object>): void {
  ancestors.add(value);
  const digests: Uint8Array[] = [];
  for (const item of value) {
    const inner = new HashSink();
    try {
      encodeValue(item, inner, ancestors);
    } catch (error) {
      throw at(error, ".<set item>");
    }
    digests.push(inner.digest());
  }
  writeDigests(Tag.set, digests, sink);
  ancestors.delete(value);
}

function writeDigests(tag: number, digests: Uint8Array[], sink: Sink): void {
  digests.sort(compareBytes);
  sink.byte(tag);
  sink.u32(digests.length);
  for (const digest of digests) sink.bytes(digest);
}

type Hook = (this: object) => unknown;

function encodeHooked(value: object, hook: Hook, sink: Sink, ancestors: Set<object>): void {
  ancestors.add(value);
  sink.byte(Tag.hooked);
  encodeString(className(value), sink);
  try {
    encodeValue(hook.call(value), sink, ancestors);
  } catch (error) {
    throw at(error, HOOK_SEGMENT);
  }
  ancestors.delete(value);
}

function encodePlainObject(
  value: Record<string, unknown>,
  sink: Sink,
  ancestors: Set<object>,
): void {
  const keys = stringKeys(value);
  if (keys === undefined) throw refusePlainObject(value);
  keys.sort();
  ancestors.add(value);
  sink.byte(Tag.object);
  sink.u32(keys.length);
  for (const key of keys) {
    const item = dataValue(value, key);
    if (item === NOT_DATA) throw refusePlainObject(value);
    encodeString(key, sink);
    try {
      encodeValue(item, sink, ancestors);
    } catch (error) {
      throw at(error, propertySegment(key));
    }
  }
  ancestors.delete(value);
}

function refusePlainObject(value: object): Unhashable {
  const problem = objectProblem(value);
  if (problem === undefined || typeof problem.key === "symbol") {
    return new Unhashable(
      "object with symbol keys",
      `symbol key ${String(problem?.key)} has no content`,
      "pass a copy without symbol keys, or a `key` option that returns only hashable data",
    );
  }
  const refusal =
    problem.kind === "accessor"
      ? new Unhashable(
          "accessor property",
          "a getter runs code and may answer differently when the function reads it",
          "copy the data with { ...value } (which reads each getter once), or pass a `key` option",
        )
      : new Unhashable(
          "non-enumerable property",
          "it would be left out of the key, yet the function can read it",
          "copy the data with { ...value } (which keeps only enumerable properties), or pass a `key` option",
        );
  refusal.segments.push(propertySegment(problem.key));
  return refusal;
}

/** The refusal of an object that is neither plain, nor a built-in kind, nor hooked. */
function refuseInstance(value: object): Unhashable {
  if (types.isBoxedPrimitive(value)) {
    const kind = boxedKind(value);
    return new Unhashable(
      `boxed ${kind}`,
      `a ${kind} object is not its primitive value`,
      "pass the primitive (value.valueOf()) instead, or pass a `key` option",
    );
  }
  if (value instanceof Promise || typeof (value as { then?: unknown }).then === "function") {
    return new Unhashable("promise", "await it first and pass the result");
  }
  if (value instanceof WeakMap || value instanceof WeakSet || value instanceof WeakRef) {
    return new Unhashable(describe(value), "weak collections cannot be read");
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  const base = builtinBase(value);
  if (base !== undefined && baseNames.get(proto) === base) {
    return new Unhashable(
      describe(value),
      `its prototype is ${base}.prototype, but it is not a real ${base}`,
    );
  }
  if (base !== undefined) {
    return new Unhashable(
      describe(value),
      `a subclass of ${base} may hold state that the ${base}'s encoding does not see`,
    );
  }
  if (Array.isArray(value)) {
    return new Unhashable(
      describe(value),
      "a subclass of Array (or an array from another realm) may hold state its elements do not show",
    );
  }
  return new Unhashable(describe(value), "class instances are not hashed by identity");
}

/** The built-in type `value` derives from (its nearest built-in prototype), if any. */
function builtinBase(value: object): string | undefined {
  let proto = Object.getPrototypeOf(value) as object | null;
  while (proto !== null && proto !== Object.prototype) {
    const name = baseNames.get(proto);
    if (name !== undefined) return name;
    proto = Object.getPrototypeOf(proto) as object | null;
  }
  return undefined;
}

function boxedKind(value: object): string {
  if (types.isStringObject(value)) return "String";
  if (types.isNumberObject(value)) return "Number";
  if (types.isBooleanObject(value)) return "Boolean";
  if (types.isBigIntObject(value)) return "BigInt";
  return "Symbol";
}

function quote(key: string | symbol): string {
  return typeof key === "symbol" ? String(key) : JSON.stringify(key);
}

function u64(sink: Sink, value: number): void {
  sink.u32(Math.floor(value / 0x1_0000_0000));
  sink.u32(value >>> 0);
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

const HOOK_SEGMENT = `[Symbol.for("infercache.hash")]()`;

const identifier = /^[A-Za-z_$][\w$]*$/;
function propertySegment(key: string | symbol): string {
  if (typeof key === "symbol") return `[${String(key)}]`;
  return identifier.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

function preview(key: unknown): string {
  if (typeof key === "string")
    return JSON.stringify(key.length > 20 ? `${key.slice(0, 20)}…` : key);
  if (typeof key === "number" || typeof key === "boolean" || typeof key === "bigint") {
    return String(key);
  }
  return "…";
}

function className(value: object): string {
  const ctor = (value as { constructor?: { name?: unknown } }).constructor;
  return typeof ctor?.name === "string" && ctor.name !== "" ? ctor.name : "anonymous class";
}

function describe(value: object): string {
  return `instance of ${className(value)}`;
}

/** What a value is, for a path's type: `array`, `object`, `instance of Map`. */
function kindOf(value: object): string {
  if (Array.isArray(value)) return "array";
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null ? "object" : describe(value);
}

function littleEndian(units: Uint16Array): Uint8Array {
  const bytes = new Uint8Array(units.buffer, units.byteOffset, units.byteLength);
  return le ? bytes : swapToLittleEndian(bytes, 2);
}

function swapToLittleEndian(view: Uint8Array, width: number): Uint8Array {
  const out = new Uint8Array(view.length);
  for (let i = 0; i < view.length; i += width) {
    for (let j = 0; j < width; j++) out[i + j] = view[i + width - 1 - j] as number;
  }
  return out;
}
