/**
 * Serving stale on a store shared by gateway instances (a real redis-server): stale requests to
 * two instances at once are all answered stale, and the background refresh reaches the upstream
 * once, because it takes the same cross-process lock a miss does.
 */
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisStore } from "../src/redis.js";
import { createGateway, type Gateway } from "../src/server.js";
import { FakeClock } from "./helpers/fake-clock.js";
import { type FakeUpstream, startFakeUpstream } from "./helpers/fake-upstream.js";
import { RedisServer } from "./helpers/redis-server.js";
import { until } from "./helpers/until.js";

let redis: RedisServer;
let upstream: FakeUpstream;
const gateways: Gateway[] = [];
const stores: RedisStore[] = [];

beforeAll(async () => {
  redis = await RedisServer.start();
  upstream = await startFakeUpstream();
});
afterAll(async () => {
  for (const gateway of gateways) await gateway.close();
  for (const store of stores) await store.close();
  await upstream?.close();
  await redis?.kill();
});

async function instance(clock: FakeClock): Promise<OpenAI> {
  const store = new RedisStore({ url: redis.url, prefix: "shared-stale:", clock });
  stores.push(store);
  await store.ready();
  const gateway = createGateway({
    upstream: upstream.baseURL,
    store,
    clock,
    sharedCache: true,
    ttl: "60s",
    staleWhileRevalidate: "10m",
  });
  gateways.push(gateway);
  const url = await gateway.listen({ port: 0 });
  return new OpenAI({ apiKey: "k", baseURL: `${url}/v1`, maxRetries: 0 });
}

describe("stale-while-revalidate on a shared Redis store", () => {
  it("refreshes once across instances", async () => {
    const clock = new FakeClock();
    const [a, b] = [await instance(clock), await instance(clock)];
    const body = {
      model: "fake",
      messages: [{ role: "user" as const, content: "shared stale" }],
      temperature: 0,
    };
    const first = await a.chat.completions.create(body);
    await until(async () => {
      const hit = await b.chat.completions.create(body).withResponse();
      return hit.response.headers.get("x-infercache") === "hit";
    }, "the answer to be stored in Redis");
    const before = upstream.count("/chat/completions");
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    upstream.respond = async (request, response, defaults) => {
      await gate;
      defaults.answer(request, response);
    };
    clock.advance(61_000);
    const answers = await Promise.all(
      [a, b, a, b].map((client) => client.chat.completions.create(body).withResponse()),
    );
    for (const answer of answers) {
      expect(answer.response.headers.get("x-infercache")).toBe("stale");
      expect(answer.data).toEqual(first);
    }
    await until(() => upstream.count("/chat/completions") === before + 1, "one refresh upstream");
    release();
    for (const client of [a, b]) {
      await until(async () => {
        const again = await client.chat.completions.create(body).withResponse();
        return again.response.headers.get("x-infercache") === "hit";
      }, "the refreshed answer to be served fresh");
    }
    expect(upstream.count("/chat/completions")).toBe(before + 1);
    upstream.respond = undefined;
  });
});
