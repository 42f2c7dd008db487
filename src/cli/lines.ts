/**
 * Lines of a file, numbered, with a bound on a line's length: a line longer than `maxBytes` is
 * skipped (read past, never held) and reported with its size, so one huge line cannot end a
 * command that reads a file of records (readline would build it as one string and throw past
 * V8's string limit, about 512 MiB, with the lines after it never read). `\n` and `\r\n` end a
 * line; the bytes are UTF-8.
 */

import { createReadStream } from "node:fs";
import { CommandError, reasonOf, UsageError } from "./shared.js";

/** The longest line `import` and `warm` take: 256 MiB (an entry's line, base64 included). */
export const MAX_LINE_BYTES = 256 * 1024 * 1024;

export type Line =
  | { number: number; text: string }
  /** A line longer than the bound: its length, and no text. */
  | { number: number; tooLong: number };

/**
 * Opens FILE (a `UsageError` naming the cause when it cannot be opened: the command line names
 * it) and yields its lines; a read that fails later is a `CommandError` with the line number.
 */
export async function openLines(
  file: string,
  maxBytes = MAX_LINE_BYTES,
): Promise<AsyncGenerator<Line, void, undefined>> {
  const input = createReadStream(file, { highWaterMark: 1024 * 1024 });
  await new Promise<void>((resolve, reject) => {
    input.once("open", () => resolve());
    input.once("error", (error) =>
      reject(new UsageError(`cannot read ${file}: ${reasonOf(error)}`)),
    );
  });
  return lines(input, maxBytes, file);
}

async function* lines(
  input: AsyncIterable<Buffer>,
  maxBytes: number,
  file: string,
): AsyncGenerator<Line, void, undefined> {
  let number = 1;
  let parts: Buffer[] = [];
  let length = 0;
  let skipping = false;
  const line = (): Line => {
    if (skipping) return { number, tooLong: length };
    let bytes = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, length);
    if (bytes.at(-1) === 0x0d) bytes = bytes.subarray(0, -1);
    return { number, text: bytes.toString("utf8") };
  };
  const add = (chunk: Buffer) => {
    length += chunk.length;
    if (skipping) return;
    if (length > maxBytes) {
      skipping = true;
      parts = [];
    } else parts.push(chunk);
  };
  try {
    for await (const chunk of input) {
      let start = 0;
      for (let end = chunk.indexOf(0x0a); end !== -1; end = chunk.indexOf(0x0a, start)) {
        add(chunk.subarray(start, end));
        yield line();
        number++;
        parts = [];
        length = 0;
        skipping = false;
        start = end + 1;
      }
      if (start < chunk.length) add(chunk.subarray(start));
    }
  } catch (error) {
    throw new CommandError(`cannot read ${file} at line ${number}: ${reasonOf(error)}`);
  }
  if (length > 0) yield line();
}
