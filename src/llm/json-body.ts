/**
 * Reading a JSON request body the pipeline can key safely: valid UTF-8 (never mangled into
 * U+FFFD and forwarded), an object at the top, no deeper than the key encoder walks, not more
 * values than a request could need, and no own `__proto__` property (copying such an object
 * with `o[name] = value` would drop it or change its prototype, and two different bodies could
 * share a key). Each refusal is a `RequestError` that says what is wrong, for a 400.
 *
 * A scan of the bytes comes first: it bounds depth and size before `JSON.parse` builds anything
 * (a 10 MB body nested five million deep is refused in milliseconds, not seconds), and it finds
 * number literals that `JSON.parse` cannot keep apart — `1.0` and `1`, or integers past 2^53 —
 * whose text then goes into the key, so two bodies the upstream reads differently never share one.
 */

import { isUtf8 } from "node:buffer";
import { RequestError } from "./protocol.js";

export type Json = Record<string, unknown>;

/** How deep a request body may nest (OpenAI's JSON schemas nest ~20 deep; attacks, thousands). */
export const MAX_BODY_DEPTH = 128;
/** How many values (objects, arrays, strings, numbers, literals) a request body may hold. */
export const MAX_BODY_VALUES = 1_000_000;

export interface ParsedBody {
  json: Json;
  /**
   * The body's number literals as written, in order, when one of them does not survive
   * `JSON.parse` as written (`1.0`, `1e2`, `9007199254740993`); otherwise `undefined`.
   */
  numbers: string[] | undefined;
}

export function utf8Text(body: Uint8Array): string {
  if (!isUtf8(body)) {
    throw new RequestError(400, "the request body is not valid UTF-8; send JSON encoded as UTF-8");
  }
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8");
}

/** Parses and checks a JSON object body. @throws RequestError */
export function parseJsonObject(body: Uint8Array): Json {
  return parseJsonBody(body).json;
}

/** Parses and checks a JSON object body, with what its numbers need. @throws RequestError */
export function parseJsonBody(body: Uint8Array): ParsedBody {
  const numbers = scan(body);
  const text = utf8Text(body);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new RequestError(400, "the request body is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new RequestError(
      400,
      `the request body must be a JSON object, got ${Array.isArray(value) ? "an array" : value === null ? "null" : typeof value}`,
    );
  }
  checkProto(value);
  return { json: value as Json, numbers };
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;

/**
 * One pass over the bytes: depth and value count, and the number literals when one of them is
 * not in the form `JSON.parse` gives back. Strings are skipped (escapes included).
 */
function scan(body: Uint8Array): string[] | undefined {
  let depth = 0;
  let values = 0;
  let literals: string[] | undefined;
  let exotic = false;
  const n = body.length;
  for (let i = 0; i < n; i++) {
    const byte = body[i] as number;
    if (byte === QUOTE) {
      values++;
      for (i++; i < n; i++) {
        const c = body[i] as number;
        if (c === BACKSLASH) i++;
        else if (c === QUOTE) break;
      }
      continue;
    }
    if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
      depth++;
      values++;
      if (depth > MAX_BODY_DEPTH) {
        throw new RequestError(
          400,
          `the request body is nested deeper than ${MAX_BODY_DEPTH} levels; flatten it`,
        );
      }
    } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
      depth--;
    } else if (byte === COMMA) {
      if (values > MAX_BODY_VALUES) {
        throw new RequestError(
          400,
          `the request body holds more than ${MAX_BODY_VALUES.toLocaleString("en-US")} values; send less at once`,
        );
      }
    } else if (byte === 0x2d || (byte >= 0x30 && byte <= 0x39)) {
      let end = i + 1;
      while (end < n && isNumberByte(body[end] as number)) end++;
      const literal = Buffer.from(body.buffer, body.byteOffset + i, end - i).toString("latin1");
      values++;
      literals ??= [];
      literals.push(literal);
      if (!exotic && String(Number(literal)) !== literal) exotic = !(literal === "-0");
      i = end - 1;
    }
  }
  return exotic ? literals : undefined;
}

function isNumberByte(byte: number): boolean {
  return (
    (byte >= 0x30 && byte <= 0x39) ||
    byte === 0x2e ||
    byte === 0x65 ||
    byte === 0x45 ||
    byte === 0x2b ||
    byte === 0x2d
  );
}

/** No own `__proto__` anywhere, iteratively (depth is bounded by the scan already). */
function checkProto(root: object): void {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value !== "object" || value === null) continue;
    if (Array.isArray(value)) {
      for (const item of value) if (typeof item === "object" && item !== null) stack.push(item);
      continue;
    }
    if (Object.hasOwn(value, "__proto__")) {
      throw new RequestError(
        400,
        'the request body has a "__proto__" key, which no API takes and which cannot be keyed safely; remove it',
      );
    }
    for (const key in value) {
      const item = (value as Json)[key];
      if (typeof item === "object" && item !== null) stack.push(item);
    }
  }
}

/** `source` without the named own fields (a copy that keeps every other own field as it is). */
export function without(source: Json, names: readonly string[]): Json {
  const kept: Json = {};
  for (const name of Object.keys(source)) {
    if (!names.includes(name)) kept[name] = source[name];
  }
  return kept;
}
