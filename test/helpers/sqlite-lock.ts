/**
 * Holds a SQLite file's write lock from another process (`sqlite-lock-holder.ts`) until
 * `release()`: what SqliteStore meets when a backup, a shell or a long transaction elsewhere
 * has the file.
 */
import { type ChildProcess, spawn } from "node:child_process";

export interface HeldLock {
  /** Commits the other process's transaction and waits until it has exited. */
  release(): Promise<void>;
}

export async function holdWriteLock(
  path: string,
  mode: "immediate" | "exclusive" | "rollback" = "immediate",
): Promise<HeldLock> {
  const child: ChildProcess = spawn(
    process.execPath,
    ["--import", "tsx", "test/helpers/sqlite-lock-holder.ts", path, mode],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let seen = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes("locked\n")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`the lock holder exited with ${code}`)));
  });
  return {
    async release() {
      child.stdin?.end("release\n");
      await exited;
    },
  };
}
