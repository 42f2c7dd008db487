/**
 * The envelope that carries an entry outside the process (SQLite rows, Redis values, Keyv):
 * a versioned header, a checksum and the entry serialized with V8's structured serialization.
 *
 * Layout: "ICE" (3 bytes), format version (1 byte), payload length (u32 BE), an 8-byte checksum
 * of the payload (see `checksum`), payload. A truncated or bit-flipped envelope fails the length or checksum
 * test and reads as corrupt (`CorruptEntryError`); it is never returned as a value.
 *
 * V8 serialization keeps what the cache needs (undefined vs null, -0, NaN, bigint, Date, RegExp,
 * Map, Set, every typed array, DataView, Buffer, shared references) but silently turns class
 * instances into plain objects, so values are walked first and such instances refused with
 * `NotSerializableError`: a cache must not hand back a different type than it was given.
 */

import { createHash } from "node:crypto";
import { deserialize, serialize } from "node:v8";
import type { Entry } from "./store.js";

const MAGIC = [0x49, 0x43, 0x45]; // "ICE"
export const ENVELOPE_VERSION = 1;
const HEADER = 3 + 1 + 4 + 8;

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

interface Payload {
  v: unknown;
  c: number;
  e?: number;
  m?: number;
  k?: unknown;
}

/** Serializes an entry. @throws NotSerializableError */
export function encodeEntry(entry: Entry): Buffer {
  checkSerializable(entry.value, "value", new Set());
  if (entry.rawKey !== undefined) checkSerializable(entry.rawKey, "rawKey", new Set());
  const payload: Payload = { v: entry.value, c: entry.createdAt };
  if (entry.expiresAt !== undefined) payload.e = entry.expiresAt;
  if (entry.computeMs !== undefined) payload.m = entry.computeMs;
  if (entry.rawKey !== undefined) payload.k = entry.rawKey;
  const body = serialize(payload);
  const out = Buffer.allocUnsafe(HEADER + body.length);
  out[0] = MAGIC[0] as number;
  out[1] = MAGIC[1] as number;
  out[2] = MAGIC[2] as number;
  out[3] = ENVELOPE_VERSION;
  out.writeUInt32BE(body.length, 4);
  checksum(body).copy(out, 8);
  body.copy(out, HEADER);
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
  if (buffer[3] !== ENVELOPE_VERSION) {
    throw new CorruptEntryError(
      `infercache: stored entry has envelope version ${buffer[3]}, expected ${ENVELOPE_VERSION}`,
    );
  }
  const length = buffer.readUInt32BE(4);
  if (buffer.length !== HEADER + length) {
    throw new CorruptEntryError(
      `infercache: stored entry is ${buffer.length - HEADER} bytes, its header says ${length}`,
    );
  }
  const body = buffer.subarray(HEADER);
  if (!checksum(body).equals(buffer.subarray(8, HEADER))) {
    throw new CorruptEntryError("infercache: stored entry fails its checksum");
  }
  let payload: Payload;
  try {
    payload = deserialize(body) as Payload;
  } catch (error) {
    throw new CorruptEntryError(
      `infercache: stored entry cannot be read: ${(error as Error).message}`,
    );
  }
  const entry: Entry = { value: payload.v, createdAt: payload.c };
  if (payload.e !== undefined) entry.expiresAt = payload.e;
  if (payload.m !== undefined) entry.computeMs = payload.m;
  if (payload.k !== undefined) entry.rawKey = payload.k;
  return entry;
}

/**
 * The payload's checksum, 8 bytes. Up to 16 KiB: CRC-32 (IEEE) computed here, twice — over the
 * payload and over the payload reversed — which allocates nothing (a Hash object per read was a
 * fifth of a Redis hit's CPU). Larger: the first 8 bytes of SHA-256, which node:crypto computes
 * faster per byte. The payload length in the header decides, so no flag is needed.
 */
function checksum(body: Uint8Array): Buffer {
  if (body.length > SMALL_PAYLOAD) return createHash("sha256").update(body).digest().subarray(0, 8);
  const out = Buffer.allocUnsafe(8);
  out.writeUInt32BE(crc32(body, false), 0);
  out.writeUInt32BE(crc32(body, true), 4);
  return out;
}

const SMALL_PAYLOAD = 16 * 1024;
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes: Uint8Array, reversed: boolean): number {
  let crc = 0xffffffff;
  const n = bytes.length;
  for (let i = 0; i < n; i++) {
    const byte = bytes[reversed ? n - 1 - i : i] as number;
    crc = (CRC_TABLE[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** Refuses what V8 serialization would change or reject, naming where it is. */
function checkSerializable(value: unknown, path: string, seen: Set<object>): void {
  switch (typeof value) {
    case "function":
    case "symbol":
      throw new NotSerializableError(path, typeof value);
    case "object":
      break;
    default:
      return;
  }
  if (value === null || seen.has(value)) return;
  seen.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) checkSerializable(value[i], `${path}[${i}]`, seen);
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
      checkSerializable(k, `${path}.<map key>`, seen);
      checkSerializable(v, `${path}.get(…)`, seen);
    }
    return;
  }
  if (value instanceof Set) {
    for (const item of value) checkSerializable(item, `${path}.<set item>`, seen);
    return;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) {
    const name = (value as { constructor?: { name?: string } }).constructor?.name;
    throw new NotSerializableError(path, `instance of ${name || "anonymous class"}`);
  }
  for (const key of Object.keys(value)) {
    checkSerializable((value as Record<string, unknown>)[key], `${path}.${key}`, seen);
  }
}
