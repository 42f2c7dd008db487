/**
 * A served generator runs no faster than its client reads: with a client that stopped reading,
 * it waits once the connection is full instead of queueing its values in the server's memory,
 * and the stream stays open (a slow client is not dropped, however large the values).
 */
import { request as httpRequest, type IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ServedApp, serve } from "../src/server.js";
import { until } from "./helpers/until.js";

/** One value: large, so a few fill any buffer on the way. */
const VALUE = "x".repeat(16 * 1024);
/** Far more than the sockets' buffers hold: reaching the end means nothing held it back. */
const LENGTH = 100_000;
/** Turns of the event loop the generator is given to run on, twice, once the connection is full. */
const TURNS = 200;
/** Values it may yield in the second lot (it yields one a turn when nothing holds it). */
const FURTHER_YIELDS = 4;

const probe = { produced: 0, finished: false, closed: false };
async function* big() {
  try {
    for (let i = 0; i < LENGTH; i++) {
      probe.produced++;
      yield VALUE;
      await new Promise((resolve) => setImmediate(resolve));
    }
    probe.finished = true;
  } finally {
    probe.closed = true;
  }
}

/** Larger than the bound a channel puts on a slow client's backlog by default (1 MiB). */
const HUGE = "y".repeat(2 * 1024 * 1024);
async function* huge() {
  yield HUGE;
  yield HUGE;
}

let app: ServedApp;
const sockets: Socket[] = [];
beforeAll(async () => {
  app = await serve({ functions: { big, huge, render: () => HUGE } });
  app.server.on("connection", (socket: Socket) => sockets.push(socket));
});
afterAll(async () => {
  await app?.close();
});

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe("serve(): a generator whose client stopped reading", () => {
  it("waits for the client instead of buffering, and stops when it leaves", async () => {
    const body = JSON.stringify({ args: [] });
    const req = httpRequest(`${app.url}/call/big`, {
      method: "POST",
      agent: false,
      headers: {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(body),
        accept: "text/event-stream",
      },
    });
    req.on("error", () => {});
    const response = await new Promise<IncomingMessage>((resolve) => {
      req.on("response", resolve);
      req.end(body);
    });
    response.on("error", () => {});
    let ended = false;
    response.on("end", () => {
      ended = true;
    });
    // Read the first value, then nothing: the socket fills up on both ends.
    await new Promise<void>((resolve) => response.once("data", () => resolve()));
    response.pause();
    await until(() => sockets.length === 1, "the server to see the connection");
    const socket = sockets[0] as Socket;
    await until(() => socket.writableNeedDrain, "the server's socket to be full");

    // Let what was already on its way settle, then watch: a held generator yields no more.
    for (let i = 0; i < TURNS; i++) await turn();
    const held = probe.produced;
    for (let i = 0; i < TURNS; i++) await turn();
    expect(probe.produced - held).toBeLessThanOrEqual(FURTHER_YIELDS);
    expect(probe.finished).toBe(false);
    expect(probe.closed).toBe(false);
    expect(ended).toBe(false);

    req.destroy();
    await until(() => probe.closed, "the generator's finally block");
    expect(probe.finished).toBe(false);
  });

  it("delivers values and results larger than a slow client's bound to a client that reads", async () => {
    for (const name of ["huge", "render"]) {
      const response = await fetch(`${app.url}/call/${name}`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "text/event-stream" },
        body: JSON.stringify({ args: [] }),
      });
      const events = [...(await response.text()).matchAll(/event: (\w+)\ndata: (.*)\n\n/g)].map(
        (m) => [m[1], JSON.parse(m[2] as string)] as [string, { result?: string } | string],
      );
      expect(events.map(([event]) => event)).toEqual(
        name === "huge" ? ["yield", "yield", "complete"] : ["complete"],
      );
      const complete = events.at(-1)?.[1] as { result?: string } | undefined;
      expect(complete?.result).toBe(HUGE);
    }
  });
});
