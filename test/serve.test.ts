import { connect, createServer, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cache, cache, createQueue, runInSession } from "../src/index.js";
import { type ServedApp, serve } from "../src/server.js";
import { deferred } from "./helpers/deferred.js";
import { until } from "./helpers/until.js";

const queue = createQueue({ maxSize: 1 });
const gate = deferred();
let computed = 0;
const classify = cache(
  async (pixels: Float32Array) => {
    computed++;
    await new Promise((resolve) => setTimeout(resolve, 30));
    return { label: pixels[0] === 1 ? "cat" : "dog", scores: new Float32Array([0.9, 0.1]) };
  },
  { queue },
);
const slowQueue = createQueue({ maxSize: 1 });
const slow = cache(
  async (x: number) => {
    if (x !== 0) await gate.promise;
    return x;
  },
  { queue: slowQueue },
);
const stream = cache(async function* (text: string) {
  for (const word of text.split(" ")) yield word;
});
const retrieval = new Cache<{ passages: string[] }>();
const draft = async (question: string, tone: string) => {
  const hit = await retrieval.get(question);
  const passages = hit?.passages ?? [`about ${question}`];
  if (hit === undefined) await retrieval.set(question, { passages });
  return `${passages[0]} (${tone})`;
};
const perSession = cache(async (x: number) => ({ x, computed: ++computed }), { perSession: true });

let app: ServedApp;
beforeAll(async () => {
  app = await serve({
    functions: { classify, slow, stream, draft, perSession },
    params: { classify: ["Float32Array"] },
    bodyLimitBytes: 16 * 1024,
  });
});
afterAll(async () => {
  gate.resolve();
  await app?.close();
});

const call = (name: string, args: unknown[], headers: Record<string, string> = {}) =>
  fetch(`${app.url}/call/${name}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ args }),
  });
const image = (first: number) => ({
  $binary: Buffer.from(new Float32Array([first, 0, 0]).buffer).toString("base64"),
  type: "Float32Array",
});

describe("serve({ functions })", () => {
  it("answers calls, says hit or miss, and shows the compute time a hit saved", async () => {
    const miss = await call("classify", [image(1)]);
    expect(miss.headers.get("x-infercache")).toBe("miss");
    const hit = await call("classify", [image(1)]);
    expect(hit.headers.get("x-infercache")).toBe("hit");
    expect(hit.headers.get("server-timing")).toMatch(
      /compute;desc="from cache: ~\d+\.\d s";dur=\d/,
    );
    const body = (await hit.json()) as {
      result: { label: string; scores: { $binary: string; type: string } };
    };
    expect(body.result.label).toBe("cat");
    expect(body.result.scores.type).toBe("Float32Array");
    const bytes = new Uint8Array(Buffer.from(body.result.scores.$binary, "base64"));
    expect(new Float32Array(bytes.buffer)[0]).toBeCloseTo(0.9);
  });

  it("marks a function that used a cache inside as partial", async () => {
    await call("draft", ["what is caching", "formal"]);
    const second = await call("draft", ["what is caching", "casual"]);
    expect(second.headers.get("x-infercache")).toBe("partial");
    expect(((await second.json()) as { result: string }).result).toBe(
      "about what is caching (casual)",
    );
  });

  it("streams a generator's yields as events, then completes", async () => {
    const response = await call("stream", ["hello cached world"], { accept: "text/event-stream" });
    expect(response.headers.get("content-type")).toContain("text/event-stream");
    const text = await response.text();
    const events = [...text.matchAll(/event: (\w+)\ndata: (.*)\n\n/g)].map((m) => [
      m[1],
      JSON.parse(m[2] as string),
    ]);
    expect(events.filter(([name]) => name === "yield").map(([, data]) => data)).toEqual([
      "hello",
      "cached",
      "world",
    ]);
    expect(events.at(-1)?.[0]).toBe("complete");
  });

  it("answers 503 on a full queue while hits still answer", async () => {
    expect(((await (await call("slow", [0])).json()) as { result: number }).result).toBe(0);
    const running = call("slow", [1]);
    const waiting = call("slow", [2]);
    await until(
      () => slowQueue.running === 1 && slowQueue.waiting === 1,
      "one running, one waiting",
    );
    const full = await call("slow", [3]);
    expect(full.status).toBe(503);
    expect(((await full.json()) as { error: { message: string } }).error.message).toBe(
      "Queue is full: max size is 1 and 1 are waiting",
    );
    const hit = await call("slow", [0]);
    expect(hit.status).toBe(200);
    expect(hit.headers.get("x-infercache")).toBe("hit");
    gate.resolve();
    expect((await running).status).toBe(200);
    expect((await waiting).status).toBe(200);
  });

  it("drops a session's entries when its event stream disconnects", async () => {
    const controller = new AbortController();
    const events = await fetch(`${app.url}/session/events`, {
      headers: { "x-session-id": "s1" },
      signal: controller.signal,
    });
    const reader = (events.body as ReadableStream<Uint8Array>).getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toContain('"session":"s1"');
    const first = (await (await call("perSession", [7], { "x-session-id": "s1" })).json()) as {
      result: { computed: number };
    };
    const again = await call("perSession", [7], { "x-session-id": "s1" });
    expect(again.headers.get("x-infercache")).toBe("hit");
    const elsewhere = await call("perSession", [7], { "x-session-id": "s2" });
    expect(elsewhere.headers.get("x-infercache")).toBe("miss");
    controller.abort();
    await until(
      async () => (await runInSession("s1", () => perSession.cache.size())) === 0,
      "the session's entries to be dropped",
    );
    const after = (await (await call("perSession", [7], { "x-session-id": "s1" })).json()) as {
      result: { computed: number };
    };
    expect(after.result.computed).toBeGreaterThan(first.result.computed);
  });

  it("answers bad input with a 4xx that says what is wrong", async () => {
    const unknown = await call("nope", []);
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { message: string } }).error.message).toMatch(
      /no function `nope`; available: classify/,
    );
    const noArgs = await fetch(`${app.url}/call/classify`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(noArgs.status).toBe(400);
    const big = await call("classify", ["x".repeat(40_000)]);
    expect(big.status).toBe(413);
    const badBinary = await call("classify", [{ $binary: "AAAA", type: "Float33Array" }]);
    expect(badBinary.status).toBe(400);
    const message = async (response: Response) =>
      ((await response.json()) as { error: { message: string } }).error.message;
    const tooFew = await call("classify", []);
    expect(tooFew.status).toBe(400);
    expect(await message(tooFew)).toBe("`classify` takes 1 argument (Float32Array), got 0");
    const wrongType = await call("classify", ["not pixels"]);
    expect(wrongType.status).toBe(400);
    expect(await message(wrongType)).toBe(
      "argument 1 of `classify` must be Float32Array, got string",
    );
    const tooMany = await call("classify", [image(1), 2]);
    expect(await message(tooMany)).toBe("`classify` takes 1 argument (Float32Array), got 2");
    // Without declared params only the count is checked, from the function's length.
    const perSessionMissing = await call("perSession", []);
    expect(perSessionMissing.status).toBe(400);
    expect(await message(perSessionMissing)).toBe("`perSession` takes 1 argument, got 0");
    await expect(
      serve({ functions: { classify }, params: { classify: ["Float33Array"] } }),
    ).rejects.toThrow(/`params.classify\[0\]` is `Float33Array`; expected one of/);
    await expect(serve({ functions: { classify }, params: { other: [] } })).rejects.toThrow(
      /`params.other` names no function/,
    );
    expect(computed).toBeGreaterThan(0);
  });

  it("closes without waiting on a connection that never sent a request", async () => {
    const other = await serve({ functions: { double: (x: number) => 2 * x } });
    const idle = await connectIdle(other.url);
    const gone = new Promise((resolve) => idle.once("close", resolve));
    await other.close();
    await gone;
  });

  it("ends open session streams on close instead of waiting for their clients", async () => {
    const other = await serve({ functions: { double: (x: number) => 2 * x } });
    const events = await fetch(`${other.url}/session/events`, {
      headers: { "x-session-id": "closing" },
    });
    const reader = (events.body as ReadableStream<Uint8Array>).getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toContain('"session":"closing"');
    await other.close();
    // Ended by the server (the stream's last chunk), not cut by a drain timeout.
    let ended = false;
    for (;;) {
      const { done } = await reader.read();
      if (done) {
        ended = true;
        break;
      }
    }
    expect(ended).toBe(true);
  });

  it("gives a URL with brackets when it listens on an IPv6 address", async ({ skip }) => {
    skip(!(await canListen("::1")), "this machine has no IPv6 loopback (::1)");
    const v6 = await serve({ functions: { double: (x: number) => 2 * x }, host: "::1" });
    try {
      expect(v6.url).toMatch(/^http:\/\/\[::1\]:\d+$/);
      const response = await fetch(`${v6.url}/call/double`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ args: [21] }),
      });
      expect(((await response.json()) as { result: number }).result).toBe(42);
    } finally {
      await v6.close();
    }
  });
});

/** Opens a connection to `url` and sends nothing on it (what a browser's preconnect does). */
function connectIdle(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => resolve(socket));
    socket.once("error", reject);
  });
}

function canListen(host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(0, host, () => server.close(() => resolve(true)));
  });
}
