/**
 * Option checks shared by every layer's constructors. Each throws a `TypeError` that names the
 * option, the bad value and its type, and what is expected (STYLE.md's error rule), so every
 * layer words the same mistake the same way.
 */

/** A count where 0 means "unlimited". */
export function nonNegativeInteger(value: number, option: string): number {
  if (Number.isSafeInteger(value) && value >= 0) return value;
  throw new TypeError(
    `Expected \`${option}\` to be a non-negative integer (0 = unlimited), got \`${String(value)}\` (${typeof value})`,
  );
}

/** A count of at least 1 (concurrency, window sizes). */
export function positiveInteger(value: number, option: string): number {
  if (Number.isSafeInteger(value) && value >= 1) return value;
  throw new TypeError(
    `Expected \`${option}\` to be a positive integer, got \`${String(value)}\` (${typeof value})`,
  );
}

/** A duration in milliseconds that must be more than 0 (deadlines, lock lifetimes). */
export function positiveMilliseconds(value: number, option: string): number {
  if (typeof value === "number" && Number.isFinite(value) && value > 0) return value;
  throw new TypeError(
    `Expected \`${option}\` to be a positive number of milliseconds, got \`${String(value)}\` (${typeof value})`,
  );
}
