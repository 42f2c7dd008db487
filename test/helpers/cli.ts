/**
 * Runs the `infercache` command for tests: in this process through `main` (stdout and stderr
 * captured), or as its own process from source through tsx (`serve`, and anything that must
 * exit on its own, run in another directory or under a resource limit).
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import { main } from "../../src/cli/main.js";

/** tsx's loader and the command's source, as absolute paths: a child may run in any directory. */
const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
export const CLI_MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

/** `infercache ARGS` in this process: what it printed and the exit code `main` returned. */
export async function runCli(args: string[]): Promise<CliResult> {
  let out = "";
  let err = "";
  const write = { out: process.stdout.write, err: process.stderr.write };
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    err += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    const code = await main(args);
    return { code, out, err };
  } finally {
    process.stdout.write = write.out;
    process.stderr.write = write.err;
  }
}

export interface SpawnOptions {
  /** Environment on top of this process's (INFERCACHE_UPSTREAM and INFERCACHE_MODEL cleared). */
  env?: Record<string, string>;
  /** Working directory (the default store is ./.infercache/cache.db under it). */
  cwd?: string;
  /** Runs `bash -c "PREFIX; exec node …"`, e.g. "ulimit -f 512" for a file size limit. */
  shellPrefix?: string;
}

export function spawnCli(args: string[], options: SpawnOptions = {}) {
  const env = { ...process.env, INFERCACHE_UPSTREAM: "", INFERCACHE_MODEL: "", ...options.env };
  const argv = ["--import", TSX, CLI_MAIN, ...args];
  if (options.shellPrefix !== undefined) {
    const quoted = [process.execPath, ...argv].map((word) => `'${word.replaceAll("'", "'\\''")}'`);
    return spawn("bash", ["-c", `${options.shellPrefix}; exec ${quoted.join(" ")}`], {
      env,
      ...(options.cwd !== undefined && { cwd: options.cwd }),
    });
  }
  return spawn(process.execPath, argv, {
    env,
    ...(options.cwd !== undefined && { cwd: options.cwd }),
  });
}

/**
 * `infercache ARGS` as its own process, until it exits; after `timeoutMs` it is killed and
 * `code` is null (a command that should have exited and did not).
 */
export async function runCliProcess(
  args: string[],
  options: SpawnOptions & { timeoutMs?: number } = {},
): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawnCli(args, options);
  let out = "";
  let err = "";
  child.stdout.on("data", (chunk: Buffer) => {
    out += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    err += chunk.toString();
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 30_000);
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  clearTimeout(timer);
  return { code, out, err };
}

export interface ServeProcess {
  child: ChildProcessWithoutNullStreams;
  /** e.g. `http://127.0.0.1:41234` (the API is under /v1). */
  url: string;
  /** Everything it printed on stdout so far. */
  output(): string;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/** Starts `infercache serve ARGS` and resolves once it says where it listens. */
export async function startServe(
  args: string[],
  options: SpawnOptions = {},
): Promise<ServeProcess> {
  const child = spawnCli(["serve", ...args], options);
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  let out = "";
  let err = "";
  child.stderr.on("data", (chunk: Buffer) => {
    err += chunk.toString();
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on (http:\/\/[^\s]+)\/v1/.exec(out);
      if (match) resolve(match[1] as string);
    });
    void exited.then((code) => reject(new Error(`infercache serve exited with ${code}: ${err}`)));
  });
  return {
    child,
    url,
    output: () => out,
    stop: () => {
      child.kill("SIGTERM");
      return exited;
    },
  };
}
