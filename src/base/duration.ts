/**
 * Durations from options: plain milliseconds, or strings like "250ms", "10s", "10m", "1h30m",
 * "2d". Parsed once, at construction.
 */

const units: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const whole = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;
const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;

/** A duration: milliseconds, or a string such as `"250ms"`, `"10m"`, `"1h30m"`. */
export type Duration = number | string;

/**
 * Parses a duration option to milliseconds.
 * @throws TypeError naming the option, the value and the accepted forms.
 */
export function parseDuration(value: Duration, option: string): number {
  if (typeof value === "number") {
    if (Number.isFinite(value) && value >= 0) return value;
    throw new TypeError(
      `Expected \`${option}\` to be a non-negative number of milliseconds or a duration string, got \`${value}\` (number)`,
    );
  }
  if (typeof value === "string") {
    const text = value.trim().toLowerCase().replace(/\s+/g, "");
    if (whole.test(text)) {
      let total = 0;
      for (const match of text.matchAll(part)) {
        total += Number(match[1]) * (units[match[2] as string] as number);
      }
      return total;
    }
  }
  throw new TypeError(
    `Expected \`${option}\` to be milliseconds or a duration such as "250ms", "10s", "10m", "1h30m" or "2d", got \`${String(value)}\` (${typeof value})`,
  );
}
