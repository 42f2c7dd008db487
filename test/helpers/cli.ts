/** Runs `infercache serve` as its own process (from source, through tsx) for end-to-end tests. */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";

export interface ServeProcess {
  child: ChildProcessWithoutNullStreams;
  /** e.g. `http://127.0.0.1:41234` (the API is under /v1). */
  url: string;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

export function spawnCli(args: string[], env: Record<string, string> = {}) {
  return spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], {
    env: { ...process.env, INFERCACHE_UPSTREAM: "", INFERCACHE_MODEL: "", ...env },
  });
}

/** Starts `infercache serve ARGS` and resolves once it says where it listens. */
export async function startServe(args: string[]): Promise<ServeProcess> {
  const child = spawnCli(["serve", ...args]);
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on (http:\/\/[^\s]+)\/v1/.exec(out);
      if (match) resolve(match[1] as string);
    });
    void exited.then((code) => reject(new Error(`infercache serve exited with ${code}`)));
  });
  return {
    child,
    url,
    stop: () => {
      child.kill("SIGTERM");
      return exited;
    },
  };
}
