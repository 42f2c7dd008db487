/**
 * What `serve()` says about where an answer came from: Gradio's "from cache" (`hit`) only when
 * the served function's own result came from its cache; "used cache" (`partial`) when the
 * function ran and cached work inside it was reused.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cache } from "../src/index.js";
import { type ServedApp, serve } from "../src/server.js";
import { deferred } from "./helpers/deferred.js";
import { until } from "./helpers/until.js";

let retrievals = 0;
const retrieve = cache(async (question: string) => {
  retrievals++;
  return [`a passage about ${question}`];
});
/** Not cached itself: it runs on every call and reuses the cached retrieval. */
const answer = async (question: string, tone: string) =>
  `${(await retrieve(question))[0]} (${tone})`;
/** Cached, and uses the cached retrieval when it runs. */
let summaries = 0;
const summarize = cache(async (question: string, length: number) => {
  summaries++;
  return `${(await retrieve(question))[0]}, in ${length} words`;
});
const gate = deferred();
const slowSquare = cache(async (x: number) => {
  await gate.promise;
  return x * x;
});
const lodashStyle = Object.assign((x: number) => x + 1, { cache: new Map() });

let app: ServedApp;
beforeAll(async () => {
  app = await serve({ functions: { answer, summarize, slowSquare, lodashStyle } });
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

const events = async (response: Response) =>
  [...(await response.text()).matchAll(/event: (\w+)\ndata: (.*)\n\n/g)].map(
    (m) => [m[1], JSON.parse(m[2] as string)] as [string, Record<string, unknown>],
  );

describe("serve(): where an answer came from", () => {
  it("reports an uncached function that reused a cached helper as partial, not hit", async () => {
    const first = await call("answer", ["what is a cache", "formal"]);
    expect(first.headers.get("x-infercache")).toBe("miss");
    expect(first.headers.get("server-timing")).toMatch(/^total;desc="miss";dur=\d+\.\d$/);
    expect(retrievals).toBe(1);

    // The helper hits, but `answer` itself ran: "used cache", never "from cache".
    const second = await call("answer", ["what is a cache", "casual"]);
    expect(second.status).toBe(200);
    expect(second.headers.get("x-infercache")).toBe("partial");
    const timing = second.headers.get("server-timing") ?? "";
    expect(timing).toMatch(
      /^total;desc="partial";dur=\d+\.\d, cache;desc="used cache: ~\d+\.\d s saved";dur=\d+\.\d$/,
    );
    expect(timing).not.toContain("from cache");
    expect(((await second.json()) as { result: string }).result).toBe(
      "a passage about what is a cache (casual)",
    );
    expect(retrievals).toBe(1);

    // The event stream's `complete` says the same.
    const streamed = await call("answer", ["what is a cache", "terse"], {
      accept: "text/event-stream",
    });
    const complete = (await events(streamed)).at(-1);
    expect(complete?.[0]).toBe("complete");
    expect(complete?.[1].source).toBe("partial");
  });

  it("reports a cached function whose own call hit as hit, with the compute time it saved", async () => {
    const miss = await call("summarize", ["tides", 20]);
    expect(miss.headers.get("x-infercache")).toBe("miss");
    const hit = await call("summarize", ["tides", 20]);
    expect(hit.headers.get("x-infercache")).toBe("hit");
    expect(hit.headers.get("server-timing")).toMatch(
      /^total;desc="hit";dur=\d+\.\d, compute;desc="from cache: ~\d+\.\d s";dur=\d+\.\d$/,
    );
    expect(((await hit.json()) as { result: string }).result).toBe(
      "a passage about tides, in 20 words",
    );
    expect(summaries).toBe(1);
  });

  it("reports a cached function that ran but reused a cached helper as partial", async () => {
    await call("summarize", ["moons", 10]);
    const ran = await call("summarize", ["moons", 50]);
    expect(summaries).toBe(3);
    expect(ran.headers.get("x-infercache")).toBe("partial");
    expect(ran.headers.get("server-timing")).toContain('cache;desc="used cache: ~');
    expect(ran.headers.get("server-timing")).not.toContain("from cache");
  });

  it("reports a call that joined another's computation as coalesced", async () => {
    const first = call("slowSquare", [12]);
    await until(() => slowSquare.cache.stats().misses === 1, "the first call to start");
    const joined = call("slowSquare", [12]);
    await until(() => slowSquare.cache.stats().coalesced === 1, "the second call to join");
    gate.resolve();
    expect((await first).headers.get("x-infercache")).toBe("miss");
    const response = await joined;
    expect(response.headers.get("x-infercache")).toBe("coalesced");
    expect(((await response.json()) as { result: number }).result).toBe(144);
  });

  it("serves a function whose unrelated `cache` property is not an infercache handle", async () => {
    const response = await call("lodashStyle", [1]);
    expect(response.status).toBe(200);
    expect(response.headers.get("x-infercache")).toBe("miss");
    expect(((await response.json()) as { result: number }).result).toBe(2);
  });
});
