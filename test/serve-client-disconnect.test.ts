/**
 * A served generator stops when no client is left to read it: its `finally` runs and it yields
 * (almost) nothing more. A cached generator shared by several clients (single-flight) stops only
 * when the last of them has gone.
 */
import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cache, currentSignal } from "../src/index.js";
import { type ServedApp, serve } from "../src/server.js";
import { until } from "./helpers/until.js";

/** How far a generator may run on after its client left: the server notices within a few turns. */
const FURTHER_YIELDS = 64;
/** Long enough that reaching the end means nobody stopped it. */
const LENGTH = 100_000;

class Probe {
  starts = 0;
  produced = 0;
  finished = false;
  closed = false;
}

const ticking = new Probe();
async function* ticker(step: number) {
  ticking.starts++;
  try {
    for (let i = 0; i < LENGTH; i += step) {
      ticking.produced++;
      yield i;
      await new Promise((resolve) => setImmediate(resolve));
    }
    ticking.finished = true;
  } finally {
    ticking.closed = true;
  }
}

const counting = new Probe();
function* counter(from: number) {
  counting.starts++;
  try {
    for (let i = from; i < from + LENGTH; i++) {
      counting.produced++;
      yield i;
    }
    counting.finished = true;
  } finally {
    counting.closed = true;
  }
}

const feeding = new Probe();
const feed = cache(async function* (topic: string) {
  feeding.starts++;
  try {
    for (let i = 0; i < LENGTH; i++) {
      feeding.produced++;
      yield `${topic} #${i}`;
      await new Promise((resolve) => setImmediate(resolve));
    }
    feeding.finished = true;
  } finally {
    feeding.closed = true;
  }
});

const waiting = { aborted: false };
/** Waits for its client to leave, as a function that honours `currentSignal()` does. */
async function* idle() {
  yield "ready";
  const signal = currentSignal();
  if (signal === undefined) throw new Error("no signal");
  await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
  waiting.aborted = true;
}

const pending = { started: false, aborted: false };
/** A plain async function answered as JSON, which honours `currentSignal()`. */
async function wait() {
  pending.started = true;
  const signal = currentSignal();
  if (signal === undefined) throw new Error("no signal");
  await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
  pending.aborted = true;
  return "too late";
}

let app: ServedApp;
beforeAll(async () => {
  app = await serve({ functions: { ticker, counter, feed, idle, wait } });
});
afterAll(async () => {
  await app?.close();
});

/** Opens an event stream for a call and reads it event by event. */
async function open(name: string, args: unknown[]) {
  const controller = new AbortController();
  const response = await fetch(`${app.url}/call/${name}`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "text/event-stream" },
    body: JSON.stringify({ args }),
    signal: controller.signal,
  });
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  let yields = 0;
  return {
    /** Reads until `count` yield events have arrived in all. */
    async readYields(count: number): Promise<void> {
      while (yields < count) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`the stream ended after ${yields} yields`);
        buffered += decoder.decode(value, { stream: true });
        const frames = buffered.split("\n\n");
        buffered = frames.pop() ?? "";
        yields += frames.filter((frame) => frame.startsWith("event: yield")).length;
      }
    },
    leave: () => controller.abort(),
  };
}

describe("serve(): a generator whose client left", () => {
  it("closes an async generator when its event-stream fetch is aborted", async () => {
    const client = await open("ticker", [1]);
    await client.readYields(5);
    const atLeave = ticking.produced;
    client.leave();
    await until(() => ticking.closed, "the generator's finally block");
    expect(ticking.finished).toBe(false);
    expect(ticking.produced - atLeave).toBeLessThanOrEqual(FURTHER_YIELDS);
    const atClose = ticking.produced;
    await new Promise((resolve) => setImmediate(resolve));
    expect(ticking.produced).toBe(atClose);
  });

  it("closes a sync generator when its client's socket is destroyed", async () => {
    const url = new URL(`${app.url}/call/counter`);
    const body = JSON.stringify({ args: [1] });
    let atLeave = -1;
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          accept: "text/event-stream",
        },
      });
      req.on("error", () => {});
      req.on("response", (res) => {
        let text = "";
        res.on("error", () => {});
        res.on("data", (chunk: Buffer) => {
          text += chunk.toString();
          if (atLeave === -1 && text.split("event: yield").length > 5) {
            atLeave = counting.produced;
            req.destroy();
            resolve();
          }
        });
        res.on("end", () => reject(new Error("the stream ended before the client left")));
      });
      req.end(body);
    });
    await until(() => counting.closed, "the generator's finally block");
    expect(counting.finished).toBe(false);
    expect(counting.produced - atLeave).toBeLessThanOrEqual(FURTHER_YIELDS);
  });

  it("gives an uncached generator a signal that fires when its client leaves", async () => {
    const client = await open("idle", []);
    await client.readYields(1);
    client.leave();
    await until(() => waiting.aborted, "currentSignal() to fire");
  });

  it("aborts the signal of a JSON call whose client left", async () => {
    const controller = new AbortController();
    const response = fetch(`${app.url}/call/wait`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ args: [] }),
      signal: controller.signal,
    });
    response.catch(() => {});
    await until(() => pending.started, "the call to start");
    controller.abort();
    await until(() => pending.aborted, "currentSignal() to fire");
  });

  it("keeps a shared cached generator running until the last of its clients has gone", async () => {
    const first = await open("feed", ["weather"]);
    await first.readYields(3);
    const second = await open("feed", ["weather"]);
    await second.readYields(3);
    await until(() => feed.cache.stats().coalesced === 1, "the second client to join the flight");
    expect(feeding.starts).toBe(1);

    first.leave();
    // The second client keeps reading: the generator goes on producing for it.
    const atFirstLeave = feeding.produced;
    await second.readYields(atFirstLeave + 20);
    expect(feeding.produced).toBeGreaterThan(atFirstLeave);
    expect(feeding.closed).toBe(false);

    const atLastLeave = feeding.produced;
    second.leave();
    await until(() => feeding.closed, "the generator's finally block");
    expect(feeding.finished).toBe(false);
    expect(feeding.produced - atLastLeave).toBeLessThanOrEqual(FURTHER_YIELDS);
    // An abandoned flight stores nothing: the next call runs the generator again.
    expect(await feed.cache.size()).toBe(0);
  });
});
