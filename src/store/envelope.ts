/**
 * The envelope that carries an entry outside the process (SQLite rows, Redis values, Keyv,
 * `infercache export`): a versioned header, a checksum and the entry serialized with V8's
 * structured serialization.
 *
 * Layout (version 2): "ICE" (3 bytes), format version (1 byte), payload length (u32 BE), CRC-32
 * of the payload (u32 BE), payload. The payload's first byte names its codec: V8 (the entry,
 * V8-serialized) or JSON (flags, `createdAt` and the optional times as float64 LE, then the value
 * as JSON text), which small JSON-exact values use because it reads back several times faster.
 * A truncated or bit-flipped envelope fails the length or checksum test and reads as corrupt
 * (`CorruptEntryError`); it is never returned as a value. Version 1 envelopes (a 16-byte header,
 * another checksum, see `decodeV1`) are still read.
 *
 * V8 serialization keeps what the cache needs (undefined vs null, -0, NaN, bigint, Date, RegExp,
 * Map, Set, every typed array, DataView, Buffer, shared references) but silently turns class
 * instances into plain objects, so values are walked first and such instances refused with
 * `NotSerializableError`: a cache must not hand back a different type than it was given.
 */

import { createHash } from "node:crypto";
import { DefaultSerializer, deserialize } from "node:v8";
import zlib from "node:zlib";
import type { Entry } from "./store.js";

const MAGIC = [0x49, 0x43, 0x45]; // "ICE"
export const ENVELOPE_VERSION = 2;
/** "ICE", version, payload length (u32 BE), CRC-32 of the payload (u32 BE). */
const HEADER = 3 + 1 + 4 + 4;
/** Version 1's header: the same, with an 8-byte checksum. */
const HEADER_V1 = 16;
/** The header's room, written ahead of a V8 payload so that encoding copies nothing. */
const V8_ROOM = new Uint8Array(HEADER + 1);
/** The payload's first byte: how the rest is encoded. */
const CODEC_V8 = 0;
const CODEC_JSON = 1;
/** JSON payload flags: which of the entry's optional fields follow `createdAt`. */
const HAS_EXPIRES = 1;
const HAS_COMPUTE = 2;
const HAS_RAW_KEY = 4;
const HAS_TAGS = 8;
const HAS_STALE = 16;
const KNOWN_FLAGS = HAS_EXPIRES | HAS_COMPUTE | HAS_RAW_KEY | HAS_TAGS | HAS_STALE;
/**
 * Values whose JSON would be longer than this (roughly, in characters) go through V8 even when
 * JSON carries them exactly: V8 is faster per byte, JSON only saves V8's fixed cost per value.
 */
const JSON_BUDGET = 1024;
/** Arrays longer than this go through V8: proving them JSON-exact (no extra keys) costs more. */
const JSON_ARRAY_LIMIT = 64;

/** Thrown when a value has a part that cannot go into an envelope. A TypeError. */
export class NotSerializableError extends TypeError {
  override readonly name = "NotSerializableError";
  constructor(
    readonly path: string,
    readonly valueType: string,
  ) {
    super(
      `infercache: cannot serialize ${path} (${valueType}) for a persistent or shared store; the result is returned but not cached`,
    );
  }
}

/** Thrown when stored bytes fail the envelope's checks. */
export class CorruptEntryError extends Error {
  override readonly name = "CorruptEntryError";
}

/** Serializes an entry. @throws NotSerializableError */
export function encodeEntry(entry: Entry): Buffer {
  let json = inspectValue(entry.value, "value");
  if (entry.rawKey !== undefined) json = inspectValue(entry.rawKey, "rawKey") && json;
  if (entry.tags !== undefined) json = inspectValue(entry.tags, "tags") && json;
  return json ? encodeJson(entry) : encodeV8(entry);
}

/**
 * Small values that JSON carries exactly (see `inspectValue`): metadata as numbers, the value as
 * JSON text. Reading one back is a JSON.parse, several times cheaper than V8's deserializer for
 * a value of a few hundred bytes.
 */
function encodeJson(entry: Entry): Buffer {
  // The value alone, or [value, rawKey?, tags?] when either is set (the flags say which).
  const text = JSON.stringify(
    entry.rawKey === undefined && entry.tags === undefined
      ? entry.value
      : entry.rawKey === undefined
        ? [entry.value, entry.tags]
        : entry.tags === undefined
          ? [entry.value, entry.rawKey]
          : [entry.value, entry.rawKey, entry.tags],
  );
  let flags = 0;
  let meta = 2 + 8;
  if (entry.expiresAt !== undefined) {
    flags |= HAS_EXPIRES;
    meta += 8;
  }
  if (entry.computeMs !== undefined) {
    flags |= HAS_COMPUTE;
    meta += 8;
  }
  if (entry.staleAt !== undefined) {
    flags |= HAS_STALE;
    meta += 8;
  }
  if (entry.rawKey !== undefined) flags |= HAS_RAW_KEY;
  if (entry.tags !== undefined) flags |= HAS_TAGS;
  const length = meta + Buffer.byteLength(text);
  const out = Buffer.allocUnsafe(HEADER + length);
  let at = HEADER;
  out[at++] = CODEC_JSON;
  out[at++] = flags;
  at = out.writeDoubleLE(entry.createdAt, at);
  if (entry.expiresAt !== undefined) at = out.writeDoubleLE(entry.expiresAt, at);
  if (entry.computeMs !== undefined) at = out.writeDoubleLE(entry.computeMs, at);
  if (entry.staleAt !== undefined) at = out.writeDoubleLE(entry.staleAt, at);
  out.write(text, at);
  return seal(out, length);
}

/** Everything else: the entry, V8-serialized after the header's room (one buffer, no copy). */
function encodeV8(entry: Entry): Buffer {
  // Only the entry's own fields, and only those that are set: an explicit `undefined` would
  // come back as a present key.
  const payload: Entry = { value: entry.value, createdAt: entry.createdAt };
  if (entry.expiresAt !== undefined) payload.expiresAt = entry.expiresAt;
  if (entry.computeMs !== undefined) payload.computeMs = entry.computeMs;
  if (entry.rawKey !== undefined) payload.rawKey = entry.rawKey;
  if (entry.tags !== undefined) payload.tags = entry.tags;
  if (entry.staleAt !== undefined) payload.staleAt = entry.staleAt;
  const serializer = new DefaultSerializer();
  serializer.writeRawBytes(V8_ROOM);
  serializer.writeHeader();
  serializer.writeValue(payload);
  const out = serializer.releaseBuffer();
  out[HEADER] = CODEC_V8;
  return seal(out, out.length - HEADER);
}

/** Writes the header in front of a payload of `length` bytes. */
function seal(out: Buffer, length: number): Buffer {
  out[0] = MAGIC[0] as number;
  out[1] = MAGIC[1] as number;
  out[2] = MAGIC[2] as number;
  out[3] = ENVELOPE_VERSION;
  out.writeUInt32BE(length, 4);
  out.writeUInt32BE(crc32(out.subarray(HEADER)), 8);
  return out;
}

/** `encodeEntry`, or `"not-serializable"` for a value that cannot leave the process. */
export function encodeOrRefuse(entry: Entry): Buffer | "not-serializable" {
  try {
    return encodeEntry(entry);
  } catch (error) {
    if (error instanceof NotSerializableError) return "not-serializable";
    throw error;
  }
}

/** Reads an entry back. @throws CorruptEntryError */
export function decodeEntry(bytes: Uint8Array): Entry {
  const buffer = Buffer.isBuffer(bytes)
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (
    buffer.length < HEADER + 1 ||
    buffer[0] !== MAGIC[0] ||
    buffer[1] !== MAGIC[1] ||
    buffer[2] !== MAGIC[2]
  ) {
    throw new CorruptEntryError("infercache: stored entry has no envelope header");
  }
  const version = buffer[3];
  if (version === 1) return decodeV1(buffer);
  if (version !== ENVELOPE_VERSION) {
    throw new CorruptEntryError(
      `infercache: stored entry has envelope version ${version}, this version reads 1 and ${ENVELOPE_VERSION}`,
    );
  }
  const length = buffer.readUInt32BE(4);
  if (buffer.length !== HEADER + length) {
    throw new CorruptEntryError(
      `infercache: stored entry is ${buffer.length - HEADER} bytes, its header says ${length}`,
    );
  }
  const payload = buffer.subarray(HEADER);
  if (buffer.readUInt32BE(8) !== crc32(payload)) {
    throw new CorruptEntryError("infercache: stored entry fails its checksum");
  }
  const codec = payload[0];
  if (codec === CODEC_JSON) return decodeJson(buffer);
  if (codec === CODEC_V8) return asEntry(readV8(payload.subarray(1)));
  throw new CorruptEntryError(`infercache: stored entry has an unknown codec ${codec}`);
}

function decodeJson(buffer: Buffer): Entry {
  const flags = buffer[HEADER + 1] as number;
  let at = HEADER + 2;
  if (flags & ~KNOWN_FLAGS || buffer.length < at + 8) {
    throw new CorruptEntryError("infercache: stored entry has a damaged JSON header");
  }
  const createdAt = buffer.readDoubleLE(at);
  at += 8;
  let expiresAt: number | undefined;
  let computeMs: number | undefined;
  let staleAt: number | undefined;
  try {
    if (flags & HAS_EXPIRES) {
      expiresAt = buffer.readDoubleLE(at);
      at += 8;
    }
    if (flags & HAS_COMPUTE) {
      computeMs = buffer.readDoubleLE(at);
      at += 8;
    }
    if (flags & HAS_STALE) {
      staleAt = buffer.readDoubleLE(at);
      at += 8;
    }
    const parsed: unknown = JSON.parse(buffer.toString("utf8", at));
    let entry: Entry;
    if (flags & (HAS_RAW_KEY | HAS_TAGS)) {
      const parts = parsed as unknown[];
      entry = { value: parts[0], createdAt };
      if (flags & HAS_RAW_KEY) entry.rawKey = parts[1];
      if (flags & HAS_TAGS) entry.tags = parts[flags & HAS_RAW_KEY ? 2 : 1] as string[];
    } else {
      entry = { value: parsed, createdAt };
    }
    if (expiresAt !== undefined) entry.expiresAt = expiresAt;
    if (computeMs !== undefined) entry.computeMs = computeMs;
    if (staleAt !== undefined) entry.staleAt = staleAt;
    return entry;
  } catch (error) {
    throw new CorruptEntryError(
      `infercache: stored entry cannot be read: ${(error as Error).message}`,
    );
  }
}

function readV8(body: Uint8Array): unknown {
  try {
    return deserialize(body);
  } catch (error) {
    throw new CorruptEntryError(
      `infercache: stored entry cannot be read: ${(error as Error).message}`,
    );
  }
}

function asEntry(payload: unknown): Entry {
  if (typeof payload !== "object" || payload === null) {
    throw new CorruptEntryError("infercache: stored entry is not an entry");
  }
  return payload as Entry;
}

/**
 * Version 1: a 16-byte header whose 8-byte checksum is, up to 16 KiB, CRC-32 forward and over
 * the payload reversed, beyond, the first 8 bytes of SHA-256; payload `{ v, c, e?, m?, k? }`.
 */
function decodeV1(buffer: Buffer): Entry {
  const length = buffer.length >= HEADER_V1 ? buffer.readUInt32BE(4) : -1;
  if (buffer.length !== HEADER_V1 + length) {
    throw new CorruptEntryError(
      `infercache: stored entry is ${buffer.length - HEADER_V1} bytes, its header says ${length}`,
    );
  }
  const body = buffer.subarray(HEADER_V1);
  const stored = buffer.subarray(8, HEADER_V1);
  const intact =
    body.length > 16 * 1024
      ? createHash("sha256").update(body).digest().subarray(0, 8).equals(stored)
      : stored.readUInt32BE(0) === crc32(body) && stored.readUInt32BE(4) === crc32InJs(body, true);
  if (!intact) throw new CorruptEntryError("infercache: stored entry fails its checksum");
  const p = asEntry(readV8(body)) as unknown as {
    v: unknown;
    c: number;
    e?: number;
    m?: number;
    k?: unknown;
  };
  const entry: Entry = { value: p.v, createdAt: p.c };
  if (p.e !== undefined) entry.expiresAt = p.e;
  if (p.m !== undefined) entry.computeMs = p.m;
  if (p.k !== undefined) entry.rawKey = p.k;
  return entry;
}

/** `decodeEntry`, or `undefined` for bytes that fail the envelope's checks. */
export function decodeOrUndefined(bytes: Uint8Array): Entry | undefined {
  try {
    return decodeEntry(bytes);
  } catch (error) {
    if (error instanceof CorruptEntryError) return undefined;
    throw error;
  }
}

/**
 * CRC-32 (IEEE, zlib's) of the whole payload: `zlib.crc32` where Node has it (20.15+, 22.2+),
 * natively and without allocating; computed here on older Node 20 releases. It catches every
 * single-bit flip, every burst up to 32 bits and every 2- or 3-bit error within 11 KiB; the
 * exact length in the header catches truncation. Random damage passes it once in 2^32, and must
 * then still pass the magic, version, codec and a parse. One native call per read: a second
 * CRC (over half the payload each) cost as much again for odds nobody needs.
 */
const crc32: (bytes: Uint8Array) => number =
  typeof zlib.crc32 === "function" ? (bytes) => zlib.crc32(bytes) : crc32InJs;

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** The same CRC-32 as `zlib.crc32`, in JavaScript; `reversed` reads the bytes back to front. */
export function crc32InJs(bytes: Uint8Array, reversed = false): number {
  let crc = 0xffffffff;
  const n = bytes.length;
  for (let i = 0; i < n; i++) {
    const byte = bytes[reversed ? n - 1 - i : i] as number;
    crc = (CRC_TABLE[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** A step of a value's path that is not a property name or an index. */
interface PathStep {
  raw: string;
}
const MAP_KEY: PathStep = { raw: ".<map key>" };
const MAP_VALUE: PathStep = { raw: ".get(…)" };
const SET_ITEM: PathStep = { raw: ".<set item>" };

/**
 * Walks a value before it is serialized. Refuses, naming where, what V8 serialization would
 * change or reject (class instances, functions, symbols), and says whether JSON carries the value
 * exactly and it is small (`JSON_BUDGET`): strings, finite numbers other than -0, booleans and
 * null, in plain objects and short arrays, with no `undefined`, no hole and no object twice.
 */
function inspectValue(root: unknown, rootName: string): boolean {
  switch (typeof root) {
    case "string":
      return root.length <= JSON_BUDGET;
    case "number":
      return Number.isFinite(root) && !Object.is(root, -0);
    case "boolean":
      return true;
    case "function":
    case "symbol":
      throw new NotSerializableError(rootName, typeof root);
    case "object":
      if (root === null) return true;
      break;
    default:
      return false; // undefined, bigint
  }
  const walk = new Walk(rootName);
  walk.visit(root);
  return walk.json && walk.budget >= 0;
}

/**
 * One walk of `inspectValue`. The path is a stack of steps, joined only for an error: building
 * a string per element would cost more than the walk.
 */
class Walk {
  readonly #steps: (string | number | PathStep)[] = [];
  readonly #seen = new Set<object>();
  readonly #root: string;
  json = true;
  budget = JSON_BUDGET;

  constructor(root: string) {
    this.#root = root;
  }

  visit(value: unknown): void {
    switch (typeof value) {
      case "string":
        this.budget -= value.length + 2;
        return;
      case "number":
        if (!Number.isFinite(value) || Object.is(value, -0)) this.json = false;
        this.budget -= 8;
        return;
      case "boolean":
        this.budget -= 5;
        return;
      case "function":
      case "symbol":
        throw new NotSerializableError(this.#path(), typeof value);
      case "object":
        break;
      default:
        this.json = false; // undefined, bigint
        return;
    }
    if (value === null) {
      this.budget -= 4;
      return;
    }
    // Twice (shared or circular): V8 keeps the identity, JSON would copy it or throw.
    if (this.#seen.has(value)) {
      this.json = false;
      return;
    }
    this.#seen.add(value);
    if (Array.isArray(value)) {
      this.#array(value);
      return;
    }
    if (
      ArrayBuffer.isView(value) ||
      value instanceof ArrayBuffer ||
      value instanceof Date ||
      value instanceof RegExp
    ) {
      this.json = false;
      return;
    }
    if (value instanceof Map) {
      this.json = false;
      for (const [k, v] of value) {
        this.#child(MAP_KEY, k);
        this.#child(MAP_VALUE, v);
      }
      return;
    }
    if (value instanceof Set) {
      this.json = false;
      for (const item of value) this.#child(SET_ITEM, item);
      return;
    }
    // A null prototype is let through and comes back as Object.prototype (V8 does the same).
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto !== Object.prototype && proto !== null) {
      const name = (value as { constructor?: { name?: string } }).constructor?.name;
      throw new NotSerializableError(this.#path(), `instance of ${name || "anonymous class"}`);
    }
    this.budget -= 2;
    for (const key of Object.keys(value)) {
      const item = (value as Record<string, unknown>)[key];
      // JSON drops a key whose value is undefined.
      if (item === undefined) this.json = false;
      this.budget -= key.length + 3;
      this.#child(key, item);
    }
  }

  #array(value: unknown[]): void {
    const length = value.length;
    // Holes and extra keys (which V8 keeps and JSON drops) are looked for in short arrays only.
    if (length > JSON_ARRAY_LIMIT || Object.keys(value).length !== length) this.json = false;
    this.budget -= 2 + length;
    for (let i = 0; i < length; i++) this.#child(i, value[i]);
  }

  #child(step: string | number | PathStep, value: unknown): void {
    if (typeof value !== "object" && typeof value !== "function" && typeof value !== "symbol") {
      this.visit(value); // a primitive that cannot fail: no step to record
      return;
    }
    this.#steps.push(step);
    this.visit(value);
    this.#steps.pop();
  }

  #path(): string {
    let path = this.#root;
    for (const step of this.#steps) {
      path +=
        typeof step === "number" ? `[${step}]` : typeof step === "string" ? `.${step}` : step.raw;
    }
    return path;
  }
}
