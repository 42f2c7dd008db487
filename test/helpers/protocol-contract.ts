/**
 * What every cached API family must do through the gateway, as one suite each family's test
 * file runs (`runProtocolContract(spec)`, like `runStoreContract`): a miss then a hit, a
 * streamed hit byte for byte the streamed miss, conversions where the family has them,
 * concurrent identical requests making one upstream call, errors and cut streams never stored,
 * tenants and sessions apart, Cache-Control, and the route in the metrics. Real components
 * throughout: the gateway on node:http, a loopback upstream in the provider's format.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createGateway, type Gateway } from "../../src/server.js";
import { MemoryStore } from "../../src/store/memory.js";
import {
  type ProviderResponder,
  type ProviderUpstream,
  startProviderUpstream,
} from "./provider-upstream.js";
import { until } from "./until.js";

export interface FamilyRequest {
  /** The path on the gateway (the upstream's base path included), and any query. */
  path: string;
  headers?: Record<string, string>;
  body: Uint8Array | string;
}

export interface FamilySpec {
  /** The protocol's name (the `route` label of the metrics). */
  route: string;
  /** The upstream's base path, which the gateway mirrors: `/v1`, `/v1beta`. */
  base: string;
  /** Upstream requests are counted by this path suffix. */
  suffix: string;
  /** A request no other test sends (`id` makes it unique); streamed when asked. */
  request(id: string, stream: boolean): FamilyRequest | Promise<FamilyRequest>;
  /** The family has streamed answers. */
  streams: boolean;
  /** A streamed request is served from a plain record, and a plain one from a streamed record. */
  converts: boolean;
  /** The request's credential, the way this family's SDK sends it. */
  credential(key: string): { headers?: Record<string, string>; query?: string };
  /** Upstream answers that are not answers: statuses, 200s holding an error. */
  errors: [label: string, respond: ProviderResponder][];
  /** Streams that end before they are whole (families that stream). */
  cuts?: [label: string, respond: ProviderResponder][];
}

export interface Sent {
  status: number;
  outcome: string | null;
  contentType: string | null;
  bytes: Buffer;
}

export interface ContractContext {
  upstream: ProviderUpstream;
  gateway: Gateway;
  url: string;
  send(request: FamilyRequest, key?: string, headers?: Record<string, string>): Promise<Sent>;
}

/** Starts an upstream and a gateway for a family's tests (closed after them). */
export function familyGateway(base: string, credential: FamilySpec["credential"]): ContractContext {
  const context = {} as ContractContext;
  beforeAll(async () => {
    context.upstream = await startProviderUpstream();
    context.gateway = createGateway({
      upstream: `${context.upstream.url}${base}`,
      store: new MemoryStore({ maxSize: 0 }),
      bodyLimitBytes: 32 * 1024 * 1024,
    });
    context.url = await context.gateway.listen();
  });
  afterAll(async () => {
    await context.gateway?.close();
    await context.upstream?.close();
  });
  beforeEach(() => {
    if (context.upstream !== undefined) context.upstream.respond = undefined;
  });
  context.send = async (request, key = "key-a", headers = {}) => {
    const { headers: auth = {}, query } = credential(key);
    const separator = request.path.includes("?") ? "&" : "?";
    const response = await fetch(
      `${context.url}${request.path}${query === undefined ? "" : `${separator}${query}`}`,
      {
        method: "POST",
        headers: { ...request.headers, ...auth, ...headers },
        body: request.body,
      },
    );
    const bytes = Buffer.from(await response.arrayBuffer().catch(() => new ArrayBuffer(0)));
    return {
      status: response.status,
      outcome: response.headers.get("x-infercache"),
      contentType: response.headers.get("content-type"),
      bytes,
    };
  };
  return context;
}

let unique = 0;

export function runProtocolContract(spec: FamilySpec): void {
  describe(`${spec.route}: the gateway contract`, () => {
    const context = familyGateway(spec.base, spec.credential);
    const fresh = (stream = false) => spec.request(`${spec.route}-${++unique}`, stream);
    const calls = () => context.upstream.count(spec.suffix);

    it("a miss, then a hit with the same bytes, and one upstream call", async () => {
      const request = await fresh();
      const before = calls();
      const miss = await context.send(request);
      expect(miss).toMatchObject({ status: 200, outcome: "miss" });
      const hit = await context.send(request);
      expect(hit).toMatchObject({ status: 200, outcome: "hit" });
      // The media type (a JSON hit says `application/json`, without the upstream's charset).
      expect(hit.contentType?.split(";")[0]).toBe(miss.contentType?.split(";")[0]);
      expect(hit.bytes.equals(miss.bytes)).toBe(true);
      expect(calls() - before).toBe(1);
    });

    if (spec.streams) {
      it("a streamed miss, then a streamed hit byte for byte the same", async () => {
        const request = await fresh(true);
        const before = calls();
        const miss = await context.send(request);
        expect(miss).toMatchObject({ status: 200, outcome: "miss" });
        expect(miss.contentType).toContain("text/event-stream");
        const hit = await context.send(request);
        expect(hit).toMatchObject({ status: 200, outcome: "hit" });
        expect(hit.contentType).toContain("text/event-stream");
        expect(hit.bytes.toString("latin1")).toBe(miss.bytes.toString("latin1"));
        expect(calls() - before).toBe(1);
      });
    }

    if (spec.converts) {
      it("a streamed request is served from a plain record, and a plain one from a streamed record", async () => {
        const id = `${spec.route}-${++unique}`;
        const before = calls();
        expect((await context.send(await spec.request(id, false))).outcome).toBe("miss");
        const streamed = await context.send(await spec.request(id, true));
        expect(streamed).toMatchObject({ status: 200, outcome: "hit" });
        expect(streamed.contentType).toContain("text/event-stream");
        const other = `${spec.route}-${++unique}`;
        expect((await context.send(await spec.request(other, true))).outcome).toBe("miss");
        const plain = await context.send(await spec.request(other, false));
        expect(plain).toMatchObject({ status: 200, outcome: "hit" });
        expect(plain.contentType).toContain("application/json");
        expect(calls() - before).toBe(2);
      });
    }

    for (const stream of spec.streams ? [false, true] : [false]) {
      it(`6 identical ${stream ? "streamed " : ""}requests at once make one upstream call`, async () => {
        const request = await fresh(stream);
        const before = calls();
        const coalescedBefore = context.gateway.pipeline.stats().coalesced;
        const release = context.upstream.hold();
        const answers = Array.from({ length: 6 }, () => context.send(request));
        try {
          await until(
            () =>
              calls() - before === 1 &&
              context.gateway.pipeline.stats().coalesced - coalescedBefore === 5,
            "one upstream call and five joiners",
          );
        } finally {
          release();
        }
        const sent = await Promise.all(answers);
        expect(calls() - before).toBe(1);
        expect(sent.map((s) => s.outcome).sort()).toEqual([
          "coalesced",
          "coalesced",
          "coalesced",
          "coalesced",
          "coalesced",
          "miss",
        ]);
        for (const answer of sent) {
          expect(answer.status).toBe(200);
          expect(answer.bytes.equals(sent[0]?.bytes as Buffer)).toBe(true);
        }
      });
    }

    for (const [label, respond] of spec.errors) {
      it(`not stored: ${label}`, async () => {
        const request = await fresh();
        context.upstream.respond = respond;
        const before = calls();
        await context.send(request);
        const again = await context.send(request);
        expect(again.outcome).toBe("miss");
        expect(calls() - before).toBe(2);
        // The control case: a good answer is stored from then on.
        context.upstream.respond = undefined;
        await context.send(request);
        expect((await context.send(request)).outcome).toBe("hit");
      });
    }

    for (const [label, respond] of spec.cuts ?? []) {
      it(`not stored: ${label}`, async () => {
        const request = await fresh(true);
        context.upstream.respond = respond;
        const before = calls();
        await context.send(request).catch(() => undefined);
        await context.send(request).catch(() => undefined);
        expect(calls() - before).toBe(2);
        context.upstream.respond = undefined;
        expect((await context.send(request)).outcome).toBe("miss");
        expect((await context.send(request)).outcome).toBe("hit");
      });
    }

    it("two tenants never share an answer", async () => {
      const request = await fresh();
      expect((await context.send(request, "key-a")).outcome).toBe("miss");
      expect((await context.send(request, "key-b")).outcome).toBe("miss");
      expect((await context.send(request, "key-a")).outcome).toBe("hit");
      expect((await context.send(request, "key-b")).outcome).toBe("hit");
    });

    it("a session's answers are its own", async () => {
      const request = await fresh();
      expect((await context.send(request, "key-a", { "x-session-id": "s1" })).outcome).toBe("miss");
      expect((await context.send(request)).outcome).toBe("miss");
      expect((await context.send(request, "key-a", { "x-session-id": "s1" })).outcome).toBe("hit");
      expect((await context.send(request, "key-a", { "x-session-id": "s2" })).outcome).toBe("miss");
    });

    it("Cache-Control: no-store serves without storing; only-if-cached never calls upstream", async () => {
      const request = await fresh();
      expect((await context.send(request, "key-a", { "cache-control": "no-store" })).outcome).toBe(
        "miss",
      );
      const before = calls();
      const cached = await context.send(request, "key-a", { "cache-control": "only-if-cached" });
      expect(cached.status).toBe(504);
      expect(calls()).toBe(before);
      await context.send(request);
      expect(
        (await context.send(request, "key-a", { "cache-control": "only-if-cached" })).outcome,
      ).toBe("hit");
    });

    it("the route is counted in the metrics", async () => {
      const request = await fresh();
      await context.send(request);
      await context.send(request);
      const metrics = await (await fetch(`${context.url}/metrics`)).text();
      expect(metrics).toMatch(
        new RegExp(`infercache_requests_total\\{route="${spec.route}",outcome="hit"\\} [1-9]`),
      );
    });
  });
}
