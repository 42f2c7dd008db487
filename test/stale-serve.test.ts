/**
 * `infercache serve --ttl N --stale-if-error N --stale-while-revalidate N`: the flags reach the
 * gateway (a real child process in front of a loopback upstream made to fail), and a bad value
 * is a usage error naming the flag.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, startServe } from "./helpers/cli.js";
import { type FakeUpstream, startFakeUpstream } from "./helpers/fake-upstream.js";
import { until } from "./helpers/until.js";

let upstream: FakeUpstream;
beforeAll(async () => {
  upstream = await startFakeUpstream();
});
afterAll(async () => {
  await upstream?.close();
});

const ask = (url: string) =>
  fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: "fake",
      messages: [{ role: "user", content: "served stale by the command" }],
      temperature: 0,
    }),
  });

describe("serve's stale flags", () => {
  it("serves a stale answer past --ttl when the upstream fails, within --stale-if-error", async () => {
    const served = await startServe([
      "--upstream",
      upstream.baseURL,
      "--store",
      "memory",
      "--port",
      "0",
      "--ttl",
      "1",
      "--stale-if-error",
      "3600",
    ]);
    try {
      const first = await ask(served.url);
      const recorded = await first.text();
      expect(first.headers.get("x-infercache")).toBe("miss");
      upstream.respond = (_request, response) => {
        response.writeHead(502, { "content-type": "application/json" });
        response.end('{"error":{"message":"bad gateway"}}');
      };
      // Fresh for one second (hits), then stale: the upstream's 502 is never what the client sees.
      await until(async () => {
        const answer = await ask(served.url);
        const text = await answer.text();
        expect(answer.status).toBe(200);
        expect(text).toBe(recorded);
        return answer.headers.get("x-infercache") === "stale";
      }, "the answer to go stale and be served instead of the 502");
    } finally {
      upstream.respond = undefined;
      await served.stop();
    }
  });

  it("refuses a value that is not seconds or a duration, naming the flag", async () => {
    const result = await runCli([
      "serve",
      "--upstream",
      upstream.baseURL,
      "--stale-if-error",
      "soon",
    ]);
    expect(result.code).toBe(2);
    expect(result.err).toContain("--stale-if-error");
    expect((await runCli(["serve", "--help"])).out).toContain("--stale-while-revalidate");
  });
});
