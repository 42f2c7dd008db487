/**
 * The JSON wire format of `serve({ functions })` for binary values:
 * `{ "$binary": "<base64>", "type": "Float32Array" }` stands for a typed array (or a Buffer, the
 * default type), in arguments and in results. Everything else is plain JSON.
 */

type ViewConstructor = new (
  buffer: ArrayBufferLike,
  offset: number,
  length: number,
) => ArrayBufferView;

export const TYPED: Record<string, ViewConstructor> = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
};

/** `{ "$binary": base64, "type": "Float32Array" }` -> a typed array (or Buffer). */
export function decode(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(decode);
  if (typeof value !== "object" || value === null) return value;
  const record = value as Record<string, unknown>;
  if (typeof record.$binary === "string") {
    const bytes = Buffer.from(record.$binary, "base64");
    const type = typeof record.type === "string" ? record.type : "Buffer";
    if (type === "Buffer") return bytes;
    const View = TYPED[type];
    if (View === undefined)
      throw new TypeError(
        `unknown binary argument type \`${type}\`; use Buffer or a typed array name`,
      );
    const copy = new Uint8Array(bytes);
    const size = (View as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
    return new View(copy.buffer, 0, copy.byteLength / size);
  }
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, decode(v)]));
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
