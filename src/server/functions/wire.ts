/**
 * The JSON wire format of `serve({ functions })` for binary values:
 * `{ "$binary": "<base64>", "type": "Float32Array" }` stands for a typed array (or a Buffer, the
 * default type), in arguments and in results. Everything else is plain JSON.
 *
 * Decoding is strict: a payload that is not base64, a type that is not a binary type or a byte
 * length that is not a whole number of elements is refused with an ArgumentError that names the
 * argument and the place inside it, never the payload. So are the keys a JSON parser leaves
 * harmless but a copy does not (`__proto__`, and `constructor` holding a `prototype`), as
 * Fastify's body parser refused them before `serve()` moved to node:http.
 */

import { ArgumentError } from "./argument-error.js";

interface ViewConstructor {
  new (buffer: ArrayBufferLike, offset: number, length: number): ArrayBufferView;
  readonly BYTES_PER_ELEMENT: number;
}

/** The typed arrays a `$binary` value may name (a Map: `type` comes from the client). */
export const TYPED = new Map<string, ViewConstructor>([
  ["Int8Array", Int8Array],
  ["Uint8Array", Uint8Array],
  ["Uint8ClampedArray", Uint8ClampedArray],
  ["Int16Array", Int16Array],
  ["Uint16Array", Uint16Array],
  ["Int32Array", Int32Array],
  ["Uint32Array", Uint32Array],
  ["Float32Array", Float32Array],
  ["Float64Array", Float64Array],
  ["BigInt64Array", BigInt64Array],
  ["BigUint64Array", BigUint64Array],
]);

/** Deeper than this, decoding and hashing would recurse past a sane stack; no real input is. */
const MAX_DEPTH = 256;

/** The arguments of a call to `name`, with `$binary` values decoded. */
export function decodeArgs(name: string, args: unknown[]): unknown[] {
  return args.map((value, index) => new Decoder(name, index).decode(value, 0));
}

class Decoder {
  /** Where the value being decoded sits inside the argument: indexes and keys. */
  readonly #path: (string | number)[] = [];
  readonly #name: string;
  readonly #index: number;

  constructor(name: string, index: number) {
    this.#name = name;
    this.#index = index;
  }

  decode(value: unknown, depth: number): unknown {
    if (typeof value !== "object" || value === null) return value;
    if (depth >= MAX_DEPTH) {
      throw new ArgumentError(
        `${this.#argument()} is nested more than ${MAX_DEPTH} levels deep; send flatter data`,
      );
    }
    const path = this.#path;
    if (Array.isArray(value)) {
      const out = new Array<unknown>(value.length);
      for (let i = 0; i < value.length; i++) {
        const item: unknown = value[i];
        if (typeof item !== "object" || item === null) {
          out[i] = item;
          continue;
        }
        path.push(i);
        out[i] = this.decode(item, depth + 1);
        path.pop();
      }
      return out;
    }
    const record = value as Record<string, unknown>;
    if (Object.hasOwn(record, "$binary")) return this.#binary(record);
    // fromEntries defines properties: a "__proto__" key stays a plain key here, but code that
    // copies the object (Object.assign, a deep merge) would set a prototype with it.
    return Object.fromEntries(
      Object.entries(record).map(([key, item]) => {
        if (key === "__proto__") {
          this.#fail(
            "the key `__proto__` is refused, as code that copies the object would set its prototype; rename it",
          );
        }
        if (key === "constructor" && typeof item === "object" && item !== null) {
          if (Object.hasOwn(item, "prototype")) {
            this.#fail(
              "the key `constructor` holding a `prototype` is refused, as code that merges the object would change a class; rename it",
            );
          }
        }
        path.push(key);
        const decoded = this.decode(item, depth + 1);
        path.pop();
        return [key, decoded];
      }),
    );
  }

  #binary(record: Record<string, unknown>): Buffer | ArrayBufferView {
    const data = record.$binary;
    if (typeof data !== "string")
      this.#fail(`$binary must be a base64 string, got ${typeName(data)}`);
    const type = record.type ?? "Buffer";
    if (typeof type !== "string") {
      this.#fail(
        `the \`type\` of a $binary value must be a string (a typed array name or Buffer), got ${typeName(type)}`,
      );
    }
    const View = type === "Buffer" ? undefined : TYPED.get(type);
    if (type !== "Buffer" && View === undefined) {
      const named = /^\w{1,40}$/.test(type) ? `\`${type}\`` : `(${type.length} characters)`;
      this.#fail(
        `$binary type ${named} is not a binary type; use Buffer or one of ${[...TYPED.keys()].join(", ")}`,
      );
    }
    const bytes = base64Bytes(data);
    if (bytes === undefined) {
      this.#fail(
        "$binary is not valid base64; encode the bytes as base64 (A-Z a-z 0-9 + / or - _, with = padding or none)",
      );
    }
    if (View === undefined) return bytes;
    const size = View.BYTES_PER_ELEMENT;
    if (bytes.byteLength % size !== 0) {
      this.#fail(
        `$binary has ${bytes.byteLength} bytes, not a multiple of ${size} (${type}); send whole elements, ${size} bytes each`,
      );
    }
    // A copy in a buffer of its own: a small Buffer is a slice of a shared, unaligned pool.
    const copy = new Uint8Array(bytes);
    return new View(copy.buffer, 0, copy.byteLength / size);
  }

  #argument(): string {
    return `argument ${this.#index + 1} of \`${this.#name}\``;
  }

  #fail(problem: string): never {
    const at = this.#path.length === 0 ? "" : `, at ${this.#path.map(segment).join("")}`;
    throw new ArgumentError(`${this.#argument()}${at}: ${problem}`);
  }
}

function segment(part: string | number): string {
  if (typeof part === "number") return `[${part}]`;
  if (/^[A-Za-z_$][\w$]{0,63}$/.test(part)) return `.${part}`;
  return part.length <= 64 ? `[${JSON.stringify(part)}]` : `[(a ${part.length}-character key)]`;
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

/**
 * The bytes of standard or URL-safe base64 (padded or not), or `undefined` when `text` is not
 * base64. `Buffer.from` skips ASCII characters outside the alphabet and stops at an inner "=",
 * so an ASCII payload is valid exactly when it decodes to the floor(3n/4) bytes its n characters
 * imply: that count grows with every character, except at n ≡ 1 (mod 4), which is never valid.
 * (It reads a character beyond Latin-1 by its low byte, hence the ASCII check.) Both checks
 * together cost a tenth of the decode; a validating regex cost twice the decode for 10 MB.
 */
function base64Bytes(text: string): Buffer | undefined {
  const padding = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  const length = text.length - padding;
  if (padding > 0 && text.length % 4 !== 0) return undefined;
  if (length % 4 === 1) return undefined;
  if (Buffer.byteLength(text, "utf8") !== text.length) return undefined;
  const bytes = Buffer.from(text, "base64");
  return bytes.byteLength === Math.floor((length * 3) / 4) ? bytes : undefined;
}

/** A result as JSON: typed arrays and Buffers become `$binary` objects. */
export function encode(value: unknown): unknown {
  if (ArrayBuffer.isView(value)) {
    const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    return {
      $binary: bytes.toString("base64"),
      type: Buffer.isBuffer(value) ? "Buffer" : value.constructor.name,
    };
  }
  if (Array.isArray(value)) return value.map(encode);
  if (
    typeof value === "object" &&
    value !== null &&
    Object.getPrototypeOf(value) === Object.prototype
  ) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, encode(v)]));
  }
  return value;
}
