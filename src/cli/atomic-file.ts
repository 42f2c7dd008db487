/**
 * Writes a file whole or not at all: the text goes to a temporary file beside FILE, which is
 * flushed to disk and renamed over FILE only once everything was written. Any failure — a
 * directory that does not exist, a full disk, the producer throwing — removes the temporary
 * file and is a `CommandError` naming FILE and the cause; FILE is then as it was before.
 */

import { randomBytes } from "node:crypto";
import { type FileHandle, open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { CommandError, reasonOf } from "./shared.js";

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
  try {
    handle = await open(temporary, "wx");
    const opened = handle;
    let pending: string[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      if (pending.length === 0) return;
      const text = pending.join("");
      pending = [];
      pendingBytes = 0;
      await opened.write(text);
    };
    await produce({
      write: async (text) => {
        pending.push(text);
        pendingBytes += text.length;
        if (pendingBytes >= CHUNK_BYTES) await flush();
      },
    });
    await flush();
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(temporary, file);
  } catch (error) {
    await handle?.close().catch(() => {});
    await rm(temporary, { force: true }).catch(() => {});
    if (error instanceof CommandError) throw error;
    throw new CommandError(`cannot write ${file}: ${reasonOf(error)}; nothing was written`);
  }
}
