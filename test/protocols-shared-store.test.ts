/**
 * Responses and Messages on a store shared by processes (a real redis-server): two gateways,
 * each with its own RedisStore connection as two processes would have, get identical requests
 * at once — plain and streamed — and the upstream is called once. The requests at the gateway
 * that calls it join its flight; those at the other wait on the Redis lock and are answered
 * from the stored record (a stream replayed byte for byte).
 */
import type { ServerResponse } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisStore } from "../src/redis.js";
import { createGateway, type Gateway } from "../src/server.js";
import type { FlightCoordinator } from "../src/store/store.js";
import { answerMessages } from "./helpers/fake-messages.js";
import { answerResponses } from "./helpers/fake-responses.js";
import { type FakeUpstream, type Received, startFakeUpstream } from "./helpers/fake-upstream.js";
import { RedisServer } from "./helpers/redis-server.js";
import { until } from "./helpers/until.js";

let server: RedisServer;
let upstream: FakeUpstream;
const stores: RedisStore[] = [];
const gateways: Gateway[] = [];
let gate: Promise<void> = Promise.resolve();

beforeAll(async () => {
  server = await RedisServer.start();
  upstream = await startFakeUpstream();
  upstream.respond = async (request: Received, response: ServerResponse) => {
    await gate;
    if (!answerResponses(request, response)) answerMessages(request, response);
  };
}, 30_000);
afterAll(async () => {
  for (const gateway of gateways) await gateway.close();
  for (const store of stores) await store.close();
  await upstream?.close();
  await server?.kill();
});

/** A gateway on its own Redis connection; `waits` counts its requests waiting on the lock. */
async function instance(prefix: string) {
  const store = new RedisStore({ url: server.url, prefix });
  stores.push(store);
  const coordinator = store.flights;
  const counter = { waits: 0 };
  const counting: FlightCoordinator = {
    acquire: (key, scope) => coordinator.acquire(key, scope),
    waitFor: (key, scope, timeoutMs) => {
      counter.waits++;
      return coordinator.waitFor(key, scope, timeoutMs);
    },
  };
  Object.defineProperty(store, "flights", { value: counting });
  const gateway = createGateway({ upstream: upstream.baseURL, store, tenantSecret: "shared" });
  gateways.push(gateway);
  return { gateway, url: await gateway.listen(), counter };
}

const families = [
  {
    name: "Responses",
    path: "/v1/responses",
    headers: { authorization: "Bearer sk-shared" },
    body: (text: string) => ({ model: "fake", input: text, temperature: 0 }),
  },
  {
    name: "Messages",
    path: "/v1/messages",
    headers: { "x-api-key": "sk-ant-shared", "anthropic-version": "2023-06-01" },
    body: (text: string) => ({
      model: "claude-fake",
      max_tokens: 32,
      temperature: 0,
      messages: [{ role: "user", content: text }],
    }),
  },
];

let unique = 0;
describe.each(families)("$name on one Redis, two gateways", (family) => {
  for (const stream of [false, true]) {
    it(`6 identical ${stream ? "streamed" : "plain"} requests, 3 at each gateway, make one upstream call`, async () => {
      const prefix = `${family.name}-${stream}-${++unique}:`;
      const [a, b] = [await instance(prefix), await instance(prefix)];
      const body = JSON.stringify({ ...family.body(`shared ${unique}`), stream });
      const send = async (url: string) => {
        const response = await fetch(`${url}${family.path}`, {
          method: "POST",
          headers: { "content-type": "application/json", ...family.headers },
          body,
        });
        return { outcome: response.headers.get("x-infercache"), text: await response.text() };
      };
      let open!: () => void;
      gate = new Promise<void>((resolve) => {
        open = resolve;
      });
      const before = upstream.received.length;
      const first = send(a.url);
      await until(() => upstream.received.length - before === 1, "the upstream call");
      const joinedBefore = a.gateway.pipeline.stats().coalesced;
      const rest = [send(a.url), send(a.url), send(b.url), send(b.url), send(b.url)];
      await until(
        () => a.gateway.pipeline.stats().coalesced - joinedBefore === 2 && b.counter.waits === 3,
        "two requests joining at the first gateway and three waiting at the second",
      );
      open();
      const all = await Promise.all([first, ...rest]);
      expect(upstream.received.length - before).toBe(1);
      expect(all.map((answer) => answer.outcome)).toEqual([
        "miss",
        "coalesced",
        "coalesced",
        "coalesced",
        "coalesced",
        "coalesced",
      ]);
      for (const answer of all) expect(answer.text).toBe(all[0]?.text);
      // And from then on, a hit at either gateway.
      expect((await send(b.url)).outcome).toBe("hit");
      expect((await send(a.url)).outcome).toBe("hit");
    });
  }
});
