/**
 * Writes a file whole or not at all: the text goes to a temporary file beside FILE, which is
 * flushed to disk and renamed over FILE only once everything was written. Any failure — a
 * directory that does not exist, a full disk, the producer throwing (a store that went away) —
 * removes the temporary file and is a `CommandError` naming the cause; FILE is then as it was.
 */

import { randomBytes } from "node:crypto";
import { type FileHandle, open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { CommandError, reasonOf } from "./shared.js";

/** A failure of the file itself, told apart from the producer's. */
class FileFailure extends Error {}

/** Text is handed to the file in chunks of about this many bytes (one write call each). */
const CHUNK_BYTES = 1024 * 1024;

export interface TextSink {
  /** Queues text; resolves when the file may take more. */
  write(text: string): Promise<void>;
}

export async function writeFileAtomically(
  file: string,
  produce: (sink: TextSink) => Promise<void>,
): Promise<void> {
  const temporary = join(
    dirname(file),
    `.${basename(file)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`,
  );
  let handle: FileHandle | undefined;
  const onFile = async <T>(step: () => Promise<T>): Promise<T> => {
    try {
      return await step();
    } catch (error) {
      throw new FileFailure(reasonOf(error), { cause: error });
    }
  };
  try {
    handle = await onFile(() => open(temporary, "wx"));
    const opened = handle;
    let pending: string[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      if (pending.length === 0) return;
      const text = pending.join("");
      pending = [];
      pendingBytes = 0;
      await onFile(() => opened.write(text));
    };
    await produce({
      write: async (text) => {
        pending.push(text);
        pendingBytes += text.length;
        if (pendingBytes >= CHUNK_BYTES) await flush();
      },
    });
    await flush();
    await onFile(() => opened.sync());
    await onFile(() => opened.close());
    handle = undefined;
    await onFile(() => rename(temporary, file));
  } catch (error) {
    await handle?.close().catch(() => {});
    await rm(temporary, { force: true }).catch(() => {});
    if (error instanceof FileFailure)
      throw new CommandError(`cannot write ${file}: ${error.message}; nothing was written`);
    if (error instanceof CommandError) throw error;
    throw new CommandError(`stopped: ${reasonOf(error)}; ${file} was not written`);
  }
}
