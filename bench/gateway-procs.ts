/**
 * The processes of the gateway benchmark: each server in its own (`bench/gateway-server.ts`,
 * or Portkey's build), and the load generator in another (`bench/load.ts`), so the figures
 * measure one server, not a server sharing its event loop with its client.
 */
import { type ChildProcess, fork, spawn } from "node:child_process";
import { createRequire } from "node:module";
import net from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { FromServer, ServerConfig } from "./gateway-server.js";
import type { LoadJob, LoadResult } from "./load.js";

const here = dirname(fileURLToPath(import.meta.url));

export interface ServerProcess {
  name: string;
  url: string;
  pid: number;
  /** This process's CPU time (µs: user, system, both) and the requests it has served so far. */
  cpu(): Promise<{ userUs: number; systemUs: number; cpuUs: number; requests: number }>;
  /** The gateway's hits, misses and errors so far (zeros for the others). */
  stats(): Promise<{ hits: number; misses: number; errors: number }>;
  /** Starts sampling this process's CPU, every `intervalUs`. */
  profileStart(intervalUs?: number): Promise<void>;
  /** Stops sampling and writes the `.cpuprofile` to `path`. */
  profileStop(path: string): Promise<void>;
  stop(): Promise<void>;
}

/** Starts one server process; `execArgv` adds node flags (`--cpu-prof`, …). */
export async function startServer(
  name: string,
  config: ServerConfig,
  execArgv: string[] = [],
): Promise<ServerProcess> {
  const child = fork(join(here, "gateway-server.ts"), [JSON.stringify(config)], {
    execArgv: ["--import", "tsx", ...execArgv],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`${name} exited with ${String(code)}`)));
    child.on("message", (message: FromServer) => {
      if (message.type === "ready") resolve(message.url);
    });
  });
  child.removeAllListeners("exit");
  let next = 0;
  const ask = <T extends FromServer["type"]>(type: T, extra: Record<string, unknown> = {}) =>
    new Promise<Extract<FromServer, { type: T }>>((resolve) => {
      const id = ++next;
      const onMessage = (message: FromServer) => {
        if (message.type === type && "id" in message && message.id === id) {
          child.off("message", onMessage);
          resolve(message as Extract<FromServer, { type: T }>);
        }
      };
      child.on("message", onMessage);
      child.send({ type, id, ...extra });
    });
  return {
    name,
    url,
    pid: child.pid ?? 0,
    cpu: async () => {
      const cpu = await ask("cpu");
      return {
        userUs: cpu.userUs,
        systemUs: cpu.systemUs,
        cpuUs: cpu.userUs + cpu.systemUs,
        requests: cpu.requests,
      };
    },
    stats: async () => {
      const { hits, misses, errors } = await ask("stats");
      return { hits, misses, errors };
    },
    profileStart: async (intervalUs = 250) => {
      await ask("profile-start", { interval: intervalUs });
    },
    profileStop: async (path) => {
      await ask("profile-stop", { path });
    },
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.send({ type: "exit", id: ++next });
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A free loopback port (for servers that take one, like Portkey's). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

/** Portkey's gateway from its npm build, on a free port, headless. */
export interface PortkeyProcess {
  url: string;
  version: string;
  /** The tail of what it wrote to stderr. */
  log(): string;
  stop(): Promise<void>;
}

export async function startPortkey(): Promise<PortkeyProcess> {
  const require = createRequire(import.meta.url);
  const manifest = require.resolve("@portkey-ai/gateway/package.json");
  const version = (require(manifest) as { version: string }).version;
  const port = await freePort();
  const child: ChildProcess = spawn(
    process.execPath,
    [join(dirname(manifest), "build", "start-server.js"), `--port=${port}`, "--headless"],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  // Its log goes nowhere (it logs a stack per failed request); the tail is kept for errors.
  let log = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-2000);
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`Portkey's gateway exited with ${child.exitCode}: ${log}`);
    }
    try {
      const response = await fetch(url);
      await response.text();
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill();
      throw new Error("Portkey's gateway did not start listening within 30 s");
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url,
    version,
    log: () => log,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

let loader: ChildProcess | undefined;

/**
 * Runs one load job in the load generator's own process (one process, started on first use and
 * kept for the next jobs; `stopLoad()` ends it).
 */
export async function runLoad<J extends LoadJob>(job: J): Promise<LoadResult<J>> {
  if (loader === undefined || loader.exitCode !== null) {
    loader = fork(join(here, "load.ts"), [], {
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
  }
  const child = loader;
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) =>
      reject(new Error(`the load generator exited with ${String(code)}`));
    child.once("exit", onExit);
    child.once("message", (result) => {
      child.off("exit", onExit);
      resolve(result as LoadResult<J>);
    });
    child.send(job);
  });
}

/** Ends the load generator's process. */
export async function stopLoad(): Promise<void> {
  const child = loader;
  loader = undefined;
  if (child === undefined || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.disconnect();
  await exited;
}
