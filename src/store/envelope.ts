/**
 * The envelope that carries an entry outside the process (SQLite rows, Redis values, Keyv,
 * `infercache export`): a versioned header, a checksum and the entry serialized with V8's
 * structured serialization.
 *
 * Layout (version 2): "ICE" (3 bytes), format version (1 byte), payload length (u32 BE), two
 * CRC-32s (u32 BE each: the payload's first half, then its second half), payload. The payload is
 * the entry itself, V8-serialized. A truncated or bit-flipped envelope fails the length or
 * checksum test and reads as corrupt (`CorruptEntryError`); it is never returned as a value.
 * Version 1 envelopes (another checksum, see `legacyChecksumMatches`) are still read.
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
const HEADER = 3 + 1 + 4 + 8;
/** The header's room, written ahead of the payload so that encoding copies nothing. */
const HEADER_ROOM = new Uint8Array(HEADER);

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
  checkSerializable(entry.value, "value");
  if (entry.rawKey !== undefined) checkSerializable(entry.rawKey, "rawKey");
  // Only the entry's own fields, and only those that are set: an explicit `undefined` would
  // come back as a present key.
  const payload: Entry = { value: entry.value, createdAt: entry.createdAt };
  if (entry.expiresAt !== undefined) payload.expiresAt = entry.expiresAt;
  if (entry.computeMs !== undefined) payload.computeMs = entry.computeMs;
  if (entry.rawKey !== undefined) payload.rawKey = entry.rawKey;
  // What `v8.serialize` does, with the header's room written first: one buffer, no copy.
  const serializer = new DefaultSerializer();
  serializer.writeRawBytes(HEADER_ROOM);
  serializer.writeHeader();
  serializer.writeValue(payload);
  const out = serializer.releaseBuffer();
  const length = out.length - HEADER;
  out[0] = MAGIC[0] as number;
  out[1] = MAGIC[1] as number;
  out[2] = MAGIC[2] as number;
  out[3] = ENVELOPE_VERSION;
  out.writeUInt32BE(length, 4);
  const half = HEADER + (length >>> 1);
  out.writeUInt32BE(crc32(out.subarray(HEADER, half)), 8);
  out.writeUInt32BE(crc32(out.subarray(half)), 12);
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
    buffer.length < HEADER ||
    buffer[0] !== MAGIC[0] ||
    buffer[1] !== MAGIC[1] ||
    buffer[2] !== MAGIC[2]
  ) {
    throw new CorruptEntryError("infercache: stored entry has no envelope header");
  }
  const version = buffer[3];
  if (version !== ENVELOPE_VERSION && version !== 1) {
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
  const body = buffer.subarray(HEADER);
  const intact =
    version === ENVELOPE_VERSION
      ? buffer.readUInt32BE(8) === crc32(body.subarray(0, length >>> 1)) &&
        buffer.readUInt32BE(12) === crc32(body.subarray(length >>> 1))
      : legacyChecksumMatches(body, buffer.subarray(8, HEADER));
  if (!intact) throw new CorruptEntryError("infercache: stored entry fails its checksum");
  let payload: unknown;
  try {
    payload = deserialize(body);
  } catch (error) {
    throw new CorruptEntryError(
      `infercache: stored entry cannot be read: ${(error as Error).message}`,
    );
  }
  if (typeof payload !== "object" || payload === null) {
    throw new CorruptEntryError("infercache: stored entry is not an entry");
  }
  return version === ENVELOPE_VERSION ? (payload as Entry) : fromLegacyPayload(payload);
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
 * CRC-32 (IEEE, zlib's): `zlib.crc32` where Node has it (20.15+, 22.2+), natively and without
 * allocating; computed here on older Node 20 releases. Each half of the payload gets its own,
 * so the envelope keeps 64 check bits in one pass over the bytes: every single-bit flip and
 * every burst up to 32 bits is caught in either half, and random damage passes with odds of
 * 2^-64 rather than 2^-32.
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

/**
 * Version 1's checksum, for envelopes written before version 2: up to 16 KiB, CRC-32 forward and
 * over the payload reversed; beyond, the first 8 bytes of SHA-256.
 */
function legacyChecksumMatches(body: Buffer, stored: Buffer): boolean {
  if (body.length > 16 * 1024) {
    return createHash("sha256").update(body).digest().subarray(0, 8).equals(stored);
  }
  return stored.readUInt32BE(0) === crc32(body) && stored.readUInt32BE(4) === crc32InJs(body, true);
}

/** Version 1's payload: `{ v, c, e?, m?, k? }`. */
function fromLegacyPayload(payload: unknown): Entry {
  const p = payload as { v: unknown; c: number; e?: number; m?: number; k?: unknown };
  const entry: Entry = { value: p.v, createdAt: p.c };
  if (p.e !== undefined) entry.expiresAt = p.e;
  if (p.m !== undefined) entry.computeMs = p.m;
  if (p.k !== undefined) entry.rawKey = p.k;
  return entry;
}

/**
 * Refuses what V8 serialization would change or reject, naming where it is. The path is kept as
 * a stack of steps and joined only for the error: most values are fine, and building a string
 * per element would cost more than the walk.
 */
function checkSerializable(root: unknown, rootName: string): void {
  if (typeof root !== "object" || root === null) {
    if (typeof root === "function" || typeof root === "symbol") {
      throw new NotSerializableError(rootName, typeof root);
    }
    return;
  }
  const steps: string[] = [rootName];
  walk(root, steps, new Set());
}

function walk(value: unknown, steps: string[], seen: Set<object>): void {
  switch (typeof value) {
    case "function":
    case "symbol":
      throw new NotSerializableError(steps.join(""), typeof value);
    case "object":
      break;
    default:
      return;
  }
  if (value === null || seen.has(value)) return;
  seen.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (typeof item !== "object" && typeof item !== "function" && typeof item !== "symbol") {
        continue;
      }
      steps.push(`[${i}]`);
      walk(item, steps, seen);
      steps.pop();
    }
    return;
  }
  if (
    ArrayBuffer.isView(value) ||
    value instanceof ArrayBuffer ||
    value instanceof Date ||
    value instanceof RegExp
  ) {
    return;
  }
  if (value instanceof Map) {
    for (const [k, v] of value) {
      steps.push(".<map key>");
      walk(k, steps, seen);
      steps.pop();
      steps.push(".get(…)");
      walk(v, steps, seen);
      steps.pop();
    }
    return;
  }
  if (value instanceof Set) {
    steps.push(".<set item>");
    for (const item of value) walk(item, steps, seen);
    steps.pop();
    return;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) {
    const name = (value as { constructor?: { name?: string } }).constructor?.name;
    throw new NotSerializableError(steps.join(""), `instance of ${name || "anonymous class"}`);
  }
  for (const key of Object.keys(value)) {
    steps.push(`.${key}`);
    walk((value as Record<string, unknown>)[key], steps, seen);
    steps.pop();
  }
}
