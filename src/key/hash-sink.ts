/**
 * A `Sink` that streams the canonical encoding into SHA-256.
 *
 * Small writes are gathered in a 4 KiB buffer because every `Hash.update` crosses into C++;
 * large byte ranges and long strings go straight to the hash, so a 64 MiB tensor is hashed
 * from its own memory without a copy. Buffers come from a small pool: encoding can re-enter
 * (a hash hook may call `hashKey`, Map members are digested on their own).
 */

import { createHash, type Hash } from "node:crypto";
import type { Sink } from "./encode.js";

const BUFFER_SIZE = 4096;
const pool: Uint8Array[] = [];
const le = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);

export class HashSink implements Sink {
  #hash: Hash = createHash("sha256");
  #buffer: Uint8Array = pool.pop() ?? new Uint8Array(BUFFER_SIZE);
  #length = 0;

  byte(value: number): void {
    if (this.#length === BUFFER_SIZE) this.#flush();
    this.#buffer[this.#length++] = value;
  }

  u32(value: number): void {
    if (this.#length + 4 > BUFFER_SIZE) this.#flush();
    const b = this.#buffer;
    const i = this.#length;
    b[i] = value >>> 24;
    b[i + 1] = value >>> 16;
    b[i + 2] = value >>> 8;
    b[i + 3] = value;
    this.#length = i + 4;
  }

  f64(value: number): void {
    if (this.#length + 8 > BUFFER_SIZE) this.#flush();
    // One NaN: every NaN payload encodes as 0x7ff8000000000000.
    f64[0] = Number.isNaN(value) ? Number.NaN : value;
    const b = this.#buffer;
    const i = this.#length;
    if (le) for (let j = 0; j < 8; j++) b[i + j] = f64Bytes[7 - j] as number;
    else b.set(f64Bytes, i);
    this.#length = i + 8;
  }

  utf8(value: string, byteLength: number): void {
    if (byteLength > BUFFER_SIZE / 2) {
      this.#flush();
      this.#hash.update(value, "utf8");
      return;
    }
    if (this.#length + byteLength > BUFFER_SIZE) this.#flush();
    if (byteLength === value.length) {
      // ASCII: a plain loop beats TextEncoder for short keys.
      const b = this.#buffer;
      const base = this.#length;
      for (let i = 0; i < byteLength; i++) b[base + i] = value.charCodeAt(i);
    } else {
      textEncoder.encodeInto(value, this.#buffer.subarray(this.#length));
    }
    this.#length += byteLength;
  }

  bytes(view: Uint8Array): void {
    if (view.length > BUFFER_SIZE / 2) {
      this.#flush();
      this.#hash.update(view);
      return;
    }
    if (this.#length + view.length > BUFFER_SIZE) this.#flush();
    this.#buffer.set(view, this.#length);
    this.#length += view.length;
  }

  /** Finishes the hash as 32 raw bytes. The sink cannot be used afterwards. */
  digest(): Uint8Array {
    this.#flush();
    this.#release();
    return this.#hash.digest();
  }

  /** Finishes the hash as 64 lowercase hex characters. */
  hex(): string {
    this.#flush();
    this.#release();
    return this.#hash.digest("hex");
  }

  /** Returns the buffer to the pool without finishing (after an encoding error). */
  abandon(): void {
    this.#release();
  }

  #flush(): void {
    if (this.#length === 0) return;
    this.#hash.update(this.#buffer.subarray(0, this.#length));
    this.#length = 0;
  }

  #release(): void {
    if (pool.length < 8) pool.push(this.#buffer);
    this.#buffer = EMPTY;
  }
}

const EMPTY = new Uint8Array(0);
const textEncoder = new TextEncoder();
