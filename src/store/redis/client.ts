/**
 * The Redis client behind RedisStore, whichever library made it: node-redis (`redis`:
 * createClient, createCluster) or ioredis (Redis, Cluster). Both are reduced to the few things the
 * store needs — send a command, run a transaction, reach every master, subscribe, connection
 * events — so the rest of the store never asks which one it has. Not a general Redis API: no
 * retries, deadlines or breaker here (see connection.ts).
 *
 * Commands go out as plain argument lists (`sendCommand` / `call`), which skips both libraries'
 * per-command argument parsing and reply transforms.
 */

import { createRequire } from "node:module";
import type { Cluster, Redis, RedisOptions } from "ioredis";

/** A command argument. */
export type RedisArg = string | Buffer;

/**
 * What RedisStore needs of a node-redis client or cluster (`createClient`, `createCluster`),
 * described by shape: node-redis's own types carry their modules, scripts and RESP version as
 * type parameters, and no single instantiation accepts every client.
 */
export interface NodeRedisClient {
  sendCommand(...args: never[]): Promise<unknown>;
  duplicate(...args: never[]): unknown;
  connect(): Promise<unknown>;
  destroy(): unknown;
  readonly isOpen: boolean;
}

/**
 * What RedisStore needs of an ioredis client or cluster (`new Redis()`, `new Cluster()`), also
 * by shape: naming ioredis's own types here would make the declarations of `infercache/redis`
 * need ioredis installed, and a node-redis user's strict typecheck (`skipLibCheck: false`)
 * fail on a package they do not use.
 */
export interface IoredisClient {
  call(...args: never[]): Promise<unknown>;
  callBuffer(...args: never[]): Promise<unknown>;
  duplicate(...args: never[]): unknown;
  readonly status: string;
}

/** A client of either library, as `{ client }` accepts it. */
export type RedisClient = IoredisClient | NodeRedisClient;

/** Sends one command to one node (SCAN and INFO go to each master in turn). */
export type NodeSender = (args: RedisArg[]) => Promise<unknown>;

export interface RedisDriver {
  readonly library: "node-redis" | "ioredis";
  readonly isCluster: boolean;
  /** Where the client connects, for logs and health: `host:port`, never credentials. */
  readonly target: string;
  /** Whether the client has a connection ready for commands now. */
  isReady(): boolean;
  /** Sends a command; on a cluster it goes to the node of `routeKey` (any node when absent). */
  send(args: RedisArg[], routeKey?: string): Promise<unknown>;
  /** `send`, with bulk replies as Buffers (entry bytes). */
  sendForBytes(args: RedisArg[], routeKey?: string): Promise<unknown>;
  /** MULTI/EXEC on the node of `routeKey`; the replies, in order. */
  transaction(routeKey: string, commands: RedisArg[][]): Promise<unknown[]>;
  /** One sender per master (the client itself on a single node). */
  masters(): Promise<NodeSender[]>;
  /**
   * Subscribes a second connection to `channels`. `onReconnect` runs when that connection comes
   * back after a drop (messages sent meanwhile were lost). Returns the function that closes it.
   */
  subscribe(
    channels: string[],
    onMessage: (channel: string, message: string) => void,
    onReconnect: () => void,
  ): Promise<() => void>;
  /** Connection events: `onReady` when connected (again), `onLost` when a connection fails. */
  watch(onReady: () => void, onLost: (reason: string) => void): void;
  /** Adaptive pipelining: whether other commands are in flight (a hint; ioredis uses it). */
  busy(inFlight: boolean): void;
  /** Closes the client (only called for clients the store created). */
  close(): void;
}

const require = createRequire(import.meta.url);

/** The driver for a client the caller made (detected by shape); `undefined` if unknown. */
export function driverFor(client: unknown): RedisDriver | undefined {
  if (typeof client !== "object" || client === null) return undefined;
  const c = client as Record<string, unknown>;
  if (typeof c.callBuffer === "function" && typeof c.duplicate === "function") {
    return new IoredisDriver(client as Redis | Cluster, false);
  }
  if (typeof c.sendCommand === "function" && typeof c.duplicate === "function") {
    return new NodeRedisDriver(client as NodeRedisLike, false);
  }
  return undefined;
}

/**
 * The driver for `{ url }`: node-redis when the `redis` package is installed (the faster client
 * here, BENCHMARKS.md), else ioredis, else an error naming the package to install.
 */
export function driverForUrl(url: string, connectTimeoutMs: number): RedisDriver {
  const nodeRedis = loadNodeRedis();
  if (nodeRedis !== undefined) {
    const client = nodeRedis.createClient({
      url,
      disableOfflineQueue: true,
      socket: {
        connectTimeout: connectTimeoutMs,
        reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, RECONNECT_MAX_MS),
      },
    });
    return new NodeRedisDriver(client, true);
  }
  const ioredis = optional<{ Redis: new (url: string, options: RedisOptions) => Redis }>("ioredis");
  if (ioredis !== undefined) {
    return new IoredisDriver(
      new ioredis.Redis(url, {
        connectTimeout: connectTimeoutMs,
        enableOfflineQueue: false,
        // A command that failed with the connection is not sent again later: the store has
        // already reported it failed, and a SET landing after its index write failed would
        // leave an entry no clear can find.
        autoResendUnfulfilledCommands: false,
        maxRetriesPerRequest: 0,
        retryStrategy: (times) => Math.min(50 * 2 ** times, RECONNECT_MAX_MS),
      }),
      true,
    );
  }
  throw new Error(
    "infercache/redis needs a Redis client: run `npm install redis` (or `npm install ioredis`)",
  );
}

/** The longest wait between two reconnection attempts of a client the store made, ms. */
const RECONNECT_MAX_MS = 500;

/**
 * node-redis's client package, `@redis/client`, found through `redis` (the package users
 * install) so it resolves under any installer's layout. Loading `redis` itself would also load
 * its bloom, JSON, search and time-series modules, for nothing here.
 */
function loadNodeRedis(): { createClient(options: object): NodeRedisLike } | undefined {
  let redisPath: string | undefined;
  try {
    redisPath = require.resolve("redis");
  } catch {
    // not installed; `@redis/client` on its own may be
  }
  const from = redisPath === undefined ? require : createRequire(redisPath);
  try {
    return from("@redis/client") as { createClient(options: object): NodeRedisLike };
  } catch (error) {
    if ((error as { code?: string }).code !== "MODULE_NOT_FOUND") throw error;
    return redisPath === undefined ? undefined : optional("redis");
  }
}

function optional<T>(name: string): T | undefined {
  try {
    return require(name) as T;
  } catch (error) {
    if ((error as { code?: string }).code === "MODULE_NOT_FOUND") return undefined;
    throw error;
  }
}

/**
 * Whether an error means Redis cannot be reached (the breaker opens) rather than a command Redis
 * refused (an error reply: the connection is fine). Replies that say the server cannot serve now
 * (loading, no master, cluster down) count as unreachable.
 */
export function isConnectionFailure(error: unknown): boolean {
  const name = (error as { constructor?: { name?: string } })?.constructor?.name ?? "";
  const isReply =
    name === "ReplyError" ||
    name === "ErrorReply" ||
    name === "SimpleError" ||
    name === "BlobError" ||
    name === "MultiErrorReply";
  return !isReply || NOT_SERVING.test(error instanceof Error ? error.message : "");
}

const NOT_SERVING = /^(LOADING|MASTERDOWN|CLUSTERDOWN|TRYAGAIN)\b/;

/** A connection failure in words fit for a log: what happened, never a message or address. */
export function describeFailure(error: unknown): string {
  const code = (error as { code?: unknown })?.code;
  switch (code) {
    case "ECONNREFUSED":
      return "connection refused";
    case "ECONNRESET":
      return "connection reset";
    case "EPIPE":
      return "connection closed";
    case "ETIMEDOUT":
      return "connection timed out";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "host not found";
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return "host unreachable";
  }
  const name = (error as { constructor?: { name?: string } })?.constructor?.name ?? "";
  const message = error instanceof Error ? error.message : "";
  if (/NOAUTH|WRONGPASS|invalid password/i.test(message)) return "authentication failed";
  const notServing = NOT_SERVING.exec(message);
  if (notServing !== null) return `server not serving (${notServing[1]})`;
  if (name === "ConnectionTimeoutError") return "connection timed out";
  if (name === "ClientOfflineError" || name === "ClientClosedError") return "not connected";
  if (name === "SocketClosedUnexpectedlyError" || name === "DisconnectsClientError") {
    return "connection closed";
  }
  if (/Stream isn't writeable|Connection is closed/.test(message)) return "not connected";
  if (typeof code === "string" && /^E[A-Z]+$/.test(code)) return code;
  return "connection lost";
}

// ---------------------------------------------------------------------------------------------
// node-redis

interface NodeRedisLike {
  sendCommand(...args: unknown[]): Promise<unknown>;
  duplicate(): NodeRedisLike;
  connect(): Promise<unknown>;
  destroy(): void;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  multi(routeKey?: string): { addCommand(args: RedisArg[]): unknown; exec(): Promise<unknown[]> };
  subscribe(
    channels: string[],
    listener: (message: string, channel: string) => void,
  ): Promise<void>;
  readonly isOpen: boolean;
  readonly isReady?: boolean;
  readonly options?: { url?: string; socket?: { host?: string; port?: number; path?: string } };
  // cluster only
  readonly masters?: unknown[];
  nodeClient?(node: unknown): NodeRedisLike | Promise<NodeRedisLike>;
}

interface ClusterMulti {
  addCommand(routeKey: string, isReadonly: boolean, args: RedisArg[]): unknown;
  exec(): Promise<unknown[]>;
}

/** node-redis maps RESP bulk strings (type byte `$`, 36) to Buffers with this option. */
const BYTES = { typeMapping: { 36: Buffer } };

class NodeRedisDriver implements RedisDriver {
  readonly library = "node-redis";
  readonly isCluster: boolean;
  readonly target: string;
  readonly #client: NodeRedisLike;
  readonly #owned: boolean;

  constructor(client: NodeRedisLike, owned: boolean) {
    this.#client = client;
    this.#owned = owned;
    this.isCluster = typeof client.nodeClient === "function";
    this.target = this.isCluster ? "a Redis Cluster" : nodeRedisTarget(client);
    // Errors surface through the calls that meet them; an unhandled 'error' event would crash.
    client.on("error", () => {});
    // node-redis clients connect when asked; one the caller passed unopened is opened here.
    if (!client.isOpen) client.connect().catch(() => {});
  }

  isReady(): boolean {
    return this.isCluster ? this.#client.isOpen : this.#client.isReady === true;
  }

  send(args: RedisArg[], routeKey?: string): Promise<unknown> {
    return this.isCluster
      ? this.#client.sendCommand(routeKey, false, args)
      : this.#client.sendCommand(args);
  }

  sendForBytes(args: RedisArg[], routeKey?: string): Promise<unknown> {
    return this.isCluster
      ? this.#client.sendCommand(routeKey, false, args, BYTES)
      : this.#client.sendCommand(args, BYTES);
  }

  async transaction(routeKey: string, commands: RedisArg[][]): Promise<unknown[]> {
    if (this.isCluster) {
      const multi = this.#client.multi(routeKey) as unknown as ClusterMulti;
      for (const command of commands) multi.addCommand(routeKey, false, command);
      return multi.exec();
    }
    const multi = this.#client.multi();
    for (const command of commands) multi.addCommand(command);
    return multi.exec();
  }

  async masters(): Promise<NodeSender[]> {
    if (!this.isCluster) return [(args) => this.#client.sendCommand(args)];
    const client = this.#client;
    return Promise.all(
      (client.masters ?? []).map(async (master) => {
        const node = await client.nodeClient?.(master);
        if (node === undefined) throw new Error("infercache: a Redis Cluster master has no client");
        return (args: RedisArg[]) => node.sendCommand(args);
      }),
    );
  }

  async subscribe(
    channels: string[],
    onMessage: (channel: string, message: string) => void,
    onReconnect: () => void,
  ): Promise<() => void> {
    const subscriber = this.#client.duplicate();
    subscriber.on("error", () => {});
    let connected = false;
    subscriber.on("ready", () => {
      if (connected) onReconnect();
    });
    try {
      await subscriber.connect();
      connected = true;
      await subscriber.subscribe(channels, (message, channel) => onMessage(channel, message));
    } catch (error) {
      subscriber.destroy();
      throw error;
    }
    return () => {
      if (subscriber.isOpen) subscriber.destroy();
    };
  }

  watch(onReady: () => void, onLost: (reason: string) => void): void {
    const client = this.#client;
    client.on("ready", onReady);
    client.on("error", (error: unknown) => onLost(describeFailure(error)));
    client.on("end", () => onLost("connection closed"));
    if (this.isCluster) client.on("connect", onReady);
  }

  busy(): void {
    // node-redis writes every command of a tick in one go; nothing to adapt.
  }

  close(): void {
    if (this.#owned && this.#client.isOpen) this.#client.destroy();
  }
}

function nodeRedisTarget(client: NodeRedisLike): string {
  const options = client.options;
  if (options?.url !== undefined) return urlTarget(options.url);
  if (options?.socket?.path !== undefined) return options.socket.path;
  return `${options?.socket?.host ?? "localhost"}:${options?.socket?.port ?? 6379}`;
}

/** `host:port` of a Redis URL: the user name and password are left out. */
export function urlTarget(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname || "localhost"}:${parsed.port || "6379"}`;
  } catch {
    return "the Redis URL given";
  }
}

// ---------------------------------------------------------------------------------------------
// ioredis

class IoredisDriver implements RedisDriver {
  readonly library = "ioredis";
  readonly isCluster: boolean;
  readonly target: string;
  readonly #client: Redis | Cluster;
  readonly #owned: boolean;

  constructor(client: Redis | Cluster, owned: boolean) {
    this.#client = client;
    this.#owned = owned;
    this.isCluster = "isCluster" in client && client.isCluster;
    const options = (client as Redis).options;
    this.target = this.isCluster
      ? "a Redis Cluster"
      : options?.path
        ? options.path
        : `${options?.host ?? "localhost"}:${options?.port ?? 6379}`;
    // Errors surface through the calls that meet them; an unhandled 'error' event would crash.
    client.on("error", () => {});
  }

  isReady(): boolean {
    return this.#client.status === "ready";
  }

  send(args: RedisArg[]): Promise<unknown> {
    return this.#client.call(args[0] as string, args.slice(1));
  }

  sendForBytes(args: RedisArg[]): Promise<unknown> {
    return this.#client.callBuffer(args[0] as string, args.slice(1));
  }

  async transaction(_routeKey: string, commands: RedisArg[][]): Promise<unknown[]> {
    // ioredis looks the commands of a multi array up by their lower-case method names.
    const named = commands.map(([name, ...args]) => [String(name).toLowerCase(), ...args]);
    const results = (await this.#client.multi(named as string[][]).exec()) ?? [];
    return results.map(([error, reply]) => {
      if (error) throw error;
      return reply;
    });
  }

  async masters(): Promise<NodeSender[]> {
    const nodes = this.isCluster ? (this.#client as Cluster).nodes("master") : [this.#client];
    return nodes.map((node) => (args: RedisArg[]) => node.call(args[0] as string, args.slice(1)));
  }

  async subscribe(
    channels: string[],
    onMessage: (channel: string, message: string) => void,
    onReconnect: () => void,
  ): Promise<() => void> {
    const client = this.#client;
    // The subscriber queues its SUBSCRIBE until connected; the caller's deadline bounds it.
    const subscriber = (
      this.isCluster
        ? (client as Cluster).duplicate(undefined, { enableOfflineQueue: true })
        : (client as Redis).duplicate({ enableOfflineQueue: true })
    ) as Redis | Cluster;
    subscriber.on("error", () => {});
    subscriber.on("message", onMessage);
    let subscribed = false;
    subscriber.on("ready", () => {
      if (subscribed) onReconnect();
    });
    try {
      await subscriber.subscribe(...channels);
      subscribed = true;
    } catch (error) {
      subscriber.disconnect();
      throw error;
    }
    return () => subscriber.disconnect();
  }

  watch(onReady: () => void, onLost: (reason: string) => void): void {
    const client = this.#client;
    client.on("ready", onReady);
    client.on("error", (error: unknown) => onLost(describeFailure(error)));
    client.on("close", () => onLost("connection closed"));
  }

  /**
   * Adaptive pipelining for a client the store made: a command issued while others are in
   * flight joins the next batched write (throughput under load); one on an idle connection goes
   * out at once (auto-pipelining would hold it to the next tick for nothing).
   */
  busy(inFlight: boolean): void {
    if (this.#owned) {
      (this.#client.options as { enableAutoPipelining?: boolean }).enableAutoPipelining = inFlight;
    }
  }

  close(): void {
    if (this.#owned) this.#client.disconnect();
  }
}
