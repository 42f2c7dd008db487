/**
 * A real Redis Cluster of 3 masters on loopback ports, made with `redis-cli --cluster create`.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "./redis-server.js";

const run = promisify(execFile);

export class RedisCluster {
  private constructor(
    readonly ports: number[],
    readonly children: ChildProcess[],
  ) {}

  static async start(masters = 3): Promise<RedisCluster> {
    const dir = mkdtempSync(join(tmpdir(), "infercache-cluster-"));
    const ports: number[] = [];
    while (ports.length < masters) {
      const port = await freePort();
      // The cluster bus listens on port + 10000: keep both free and below 65536.
      if (port < 55_000 && !ports.includes(port)) ports.push(port);
    }
    const children = ports.map((port) =>
      spawn(
        "redis-server",
        [
          "--port",
          String(port),
          "--bind",
          "127.0.0.1",
          "--cluster-enabled",
          "yes",
          "--cluster-config-file",
          `nodes-${port}.conf`,
          "--save",
          "",
          "--appendonly",
          "no",
          "--dir",
          dir,
        ],
        { stdio: "ignore" },
      ),
    );
    const cluster = new RedisCluster(ports, children);
    for (const port of ports) await waitForPing(port);
    await run("redis-cli", [
      "--cluster",
      "create",
      ...ports.map((p) => `127.0.0.1:${p}`),
      "--cluster-replicas",
      "0",
      "--cluster-yes",
    ]);
    for (let i = 0; i < 100; i++) {
      const { stdout } = await run("redis-cli", ["-p", String(ports[0]), "cluster", "info"]);
      if (stdout.includes("cluster_state:ok")) return cluster;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await cluster.stop();
    throw new Error("the Redis Cluster did not reach cluster_state:ok");
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.children.map(
        (child) =>
          new Promise((resolve) => {
            if (child.exitCode !== null) return resolve(undefined);
            child.once("exit", resolve);
            child.kill("SIGKILL");
          }),
      ),
    );
  }
}

async function waitForPing(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      const { stdout } = await run("redis-cli", ["-p", String(port), "ping"]);
      if (stdout.trim() === "PONG") return;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`redis-server on port ${port} did not answer`);
}
