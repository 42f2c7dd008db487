/**
 * The `params` option of `serve({ functions })`: a declared type per parameter, checked before a
 * call so a bad request gets a 400 that says which argument is wrong, not a failure inside the
 * function. Types: `string`, `number`, `boolean`, `null`, `array`, `object`, `Buffer`, a typed
 * array name or `any`; `type?` is optional, `...type` a last rest parameter.
 */

import { ArgumentError } from "./argument-error.js";
import { TYPED } from "./wire.js";

// biome-ignore lint/suspicious/noExplicitAny: any function may be served.
export type AnyFunction = (...args: any[]) => any;

export interface Param {
  type: string;
  optional: boolean;
  rest: boolean;
}

const TYPE_NAMES = new Set([
  "string",
  "number",
  "boolean",
  "null",
  "array",
  "object",
  "Buffer",
  "any",
  ...TYPED.keys(),
]);

/** Parses `params[name]`; throws a TypeError naming the bad entry. */
export function parseParams(name: string, spec: unknown): Param[] {
  if (!Array.isArray(spec))
    throw new TypeError(`serve(): \`params.${name}\` must be an array of type names`);
  return spec.map((text: unknown, i) => {
    const raw = String(text);
    const rest = raw.startsWith("...");
    const optional = raw.endsWith("?");
    const type = raw.slice(rest ? 3 : 0, optional ? -1 : undefined);
    if (!TYPE_NAMES.has(type) || (rest && i !== spec.length - 1)) {
      throw new TypeError(
        `serve(): \`params.${name}[${i}]\` is \`${raw}\`; expected one of ${[...TYPE_NAMES].join(", ")}, with ? for optional or ... for a last rest parameter`,
      );
    }
    return { type, optional, rest };
  });
}

/** Throws an ArgumentError saying what is wrong with the arguments of a call to `name`. */
export function checkArgs(
  name: string,
  fn: AnyFunction,
  params: Param[] | undefined,
  args: unknown[],
): void {
  const plural = (n: number) => `${n} argument${n === 1 ? "" : "s"}`;
  if (params === undefined) {
    if (args.length < fn.length)
      throw new ArgumentError(`\`${name}\` takes ${plural(fn.length)}, got ${args.length}`);
    return;
  }
  const required = params.filter((p) => !p.optional && !p.rest).length;
  const rest = params.at(-1)?.rest === true;
  const max = rest ? Number.POSITIVE_INFINITY : params.length;
  if (args.length < required || args.length > max) {
    const wanted =
      required === max
        ? plural(required)
        : rest
          ? `at least ${plural(required)}`
          : `${required} to ${max} arguments`;
    throw new ArgumentError(
      `\`${name}\` takes ${wanted} (${params.map(describe).join(", ")}), got ${args.length}`,
    );
  }
  for (const [i, value] of args.entries()) {
    const param = params[Math.min(i, params.length - 1)] as Param;
    const actual = typeOf(value);
    if (param.type !== "any" && actual !== param.type)
      throw new ArgumentError(
        `argument ${i + 1} of \`${name}\` must be ${param.type}, got ${actual}`,
      );
  }
}

function describe(param: Param): string {
  return `${param.rest ? "..." : ""}${param.type}${param.optional ? "?" : ""}`;
}

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (Buffer.isBuffer(value)) return "Buffer";
  if (ArrayBuffer.isView(value)) return value.constructor.name;
  return typeof value;
}
