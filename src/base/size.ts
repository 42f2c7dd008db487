/**
 * Byte sizes from options: plain numbers of bytes, or strings like "512mb", "2gb", "1.5GiB",
 * "100kb", "64 MB". Units are binary (1 kb = 1024 bytes), as in Gradio and most caches'
 * documentation; "kib"/"kb" and "k" are the same unit. Parsed once, at construction.
 */

const units: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

const pattern = /^(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)$/;

/** A size in bytes: a non-negative number, or a string such as `"512mb"`, `"1.5GiB"`. */
export type Size = number | string;

/**
 * Parses a size option to whole bytes.
 * @throws TypeError naming the option, the value and the accepted forms.
 */
export function parseSize(value: Size, option: string): number {
  if (typeof value === "number") {
    if (Number.isFinite(value) && value >= 0) return Math.floor(value);
    throw new TypeError(
      `Expected \`${option}\` to be a non-negative number of bytes or a size string, got \`${value}\` (number)`,
    );
  }
  if (typeof value === "string") {
    const match = pattern.exec(value.trim().toLowerCase());
    const unit = match ? units[match[2] as string] : undefined;
    if (match && unit !== undefined) return Math.floor(Number(match[1]) * unit);
  }
  throw new TypeError(
    `Expected \`${option}\` to be a size such as 1048576, "100kb", "512mb", "2gb" or "1.5GiB" (units b, kb, mb, gb, tb, 1024-based), got \`${String(value)}\` (${typeof value})`,
  );
}
