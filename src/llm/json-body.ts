/**
 * Reading a JSON request body the pipeline can key safely: valid UTF-8 (never mangled into
 * U+FFFD and forwarded), an object at the top, no deeper than the key encoder walks, and no own
 * `__proto__` property (copying such an object with `o[name] = value` would drop it or change its
 * prototype, and two different bodies could share a key). Each refusal is a `RequestError` that
 * says what is wrong, for a 400.
 */

import { isUtf8 } from "node:buffer";
import { RequestError } from "./protocol.js";

export type Json = Record<string, unknown>;

/** How deep a request body may nest (OpenAI's JSON schemas nest ~20 deep; attacks, thousands). */
export const MAX_BODY_DEPTH = 128;

export function utf8Text(body: Uint8Array): string {
  if (!isUtf8(body)) {
    throw new RequestError(400, "the request body is not valid UTF-8; send JSON encoded as UTF-8");
  }
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8");
}

/** Parses and checks a JSON object body. @throws RequestError */
export function parseJsonObject(body: Uint8Array): Json {
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
  checkShape(value);
  return value as Json;
}

/** Depth and `__proto__` checks, iteratively (a deep body must not overflow our stack either). */
function checkShape(root: object): void {
  const stack: [value: unknown, depth: number][] = [[root, 1]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop() as [unknown, number];
    if (typeof value !== "object" || value === null) continue;
    if (depth > MAX_BODY_DEPTH) {
      throw new RequestError(
        400,
        `the request body is nested deeper than ${MAX_BODY_DEPTH} levels; flatten it`,
      );
    }
    if (Array.isArray(value)) {
      for (const item of value) stack.push([item, depth + 1]);
      continue;
    }
    if (Object.hasOwn(value, "__proto__")) {
      throw new RequestError(
        400,
        'the request body has a "__proto__" key, which no API takes and which cannot be keyed safely; remove it',
      );
    }
    for (const key in value) stack.push([(value as Json)[key], depth + 1]);
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
