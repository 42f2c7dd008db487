/**
 * Every new family on a store shared by processes (a real redis-server): identical requests
 * arriving at two gateway processes — this test's and an `infercache serve` child — make one
 * upstream call; the others join in process or wait on Redis for the stored answer, which they
 * replay byte for byte (streams too). The upstream holds every request until all the callers
 * are observably waiting: the joiners in this process by the pipeline's stats, the other
 * process's by the EXISTS each waiter sends Redis once it is subscribed.
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGateway, type Gateway } from "../src/server.js";
import { RedisStore } from "../src/store/redis/redis-store.js";
import { type ServeProcess, startServe } from "./helpers/cli.js";
import { audioBytes, formBody } from "./helpers/form-body.js";
import { type ProviderUpstream, startProviderUpstream } from "./helpers/provider-upstream.js";
import { RedisServer } from "./helpers/redis-server.js";
import { until } from "./helpers/until.js";

const SECRET = "shared-tenant-secret";
let redis: RedisServer;
let probe: Redis;
let upstream: ProviderUpstream;
const pairs: { here: Gateway; store: RedisStore; child: ServeProcess; hereUrl: string }[] = [];

async function pair(base: string) {
  const store = new RedisStore({ url: redis.url });
  const here = createGateway({ upstream: `${upstream.url}${base}`, store, tenantSecret: SECRET });
  const hereUrl = await here.listen();
  const child = await startServe([
    "--upstream",
    `${upstream.url}${base}`,
    "--store",
    redis.url,
    "--tenant-secret",
    SECRET,
    "--port",
    "0",
  ]);
  const made = { here, store, child, hereUrl };
  pairs.push(made);
  return made;
}

let v1: Awaited<ReturnType<typeof pair>>;
let v1beta: Awaited<ReturnType<typeof pair>>;

beforeAll(async () => {
  redis = await RedisServer.start();
  probe = new Redis(redis.url);
  upstream = await startProviderUpstream();
  [v1, v1beta] = await Promise.all([pair("/v1"), pair("/v1beta")]);
}, 60_000);
afterAll(async () => {
  for (const { here, store, child } of pairs) {
    await child.stop();
    await here.close();
    await store.close();
  }
  probe?.disconnect();
  await upstream?.close();
  await redis?.kill();
});

async function existsCalls(): Promise<number> {
  const info = await probe.info("commandstats");
  return Number(/cmdstat_exists:calls=(\d+)/.exec(info)?.[1] ?? 0);
}

interface Case {
  label: string;
  base: "/v1" | "/v1beta";
  suffix: string;
  request(): { path: string; headers: Record<string, string>; body: Uint8Array | string };
}

let unique = 0;
const json = (path: string, body: Record<string, unknown>) => () => ({
  path,
  headers: { "content-type": "application/json", authorization: "Bearer sk-shared" },
  body: JSON.stringify(body),
});
const form = (path: string, fields: [string, string][], seed: number) => () => {
  const { body, contentType } = formBody([
    ["file", { filename: "a.mp3", bytes: audioBytes(4096, seed), type: "audio/mpeg" }],
    ...fields,
  ]);
  return {
    path,
    headers: { "content-type": contentType, authorization: "Bearer sk-shared" },
    body,
  };
};
const gemini = (stream: boolean, text: string) => () => ({
  path: `/v1beta/models/gemini-2.5-flash:${stream ? "streamGenerateContent?alt=sse" : "generateContent"}`,
  headers: { "content-type": "application/json", "x-goog-api-key": "shared-key" },
  body: JSON.stringify({
    contents: [{ role: "user", parts: [{ text }] }],
    generationConfig: { temperature: 0 },
  }),
});

const cases = (): Case[] => [
  {
    label: "a transcription",
    base: "/v1",
    suffix: "/audio/transcriptions",
    request: form("/v1/audio/transcriptions", [["model", "gpt-4o-transcribe"]], ++unique),
  },
  {
    label: "a streamed transcription",
    base: "/v1",
    suffix: "/audio/transcriptions",
    request: form(
      "/v1/audio/transcriptions",
      [
        ["model", "gpt-4o-transcribe"],
        ["stream", "true"],
      ],
      ++unique,
    ),
  },
  {
    label: "a translation",
    base: "/v1",
    suffix: "/audio/translations",
    request: form("/v1/audio/translations", [["model", "whisper-1"]], ++unique),
  },
  {
    label: "speech (bytes)",
    base: "/v1",
    suffix: "/audio/speech",
    request: json("/v1/audio/speech", {
      model: "tts-1",
      voice: "alloy",
      input: `shared ${++unique}`,
    }),
  },
  {
    label: "streamed speech",
    base: "/v1",
    suffix: "/audio/speech",
    request: json("/v1/audio/speech", {
      model: "gpt-4o-mini-tts",
      voice: "alloy",
      input: `shared ${++unique}`,
      stream_format: "sse",
    }),
  },
  {
    label: "an image",
    base: "/v1",
    suffix: "/images/generations",
    request: json("/v1/images/generations", { model: "gpt-image-1", prompt: `shared ${++unique}` }),
  },
  {
    label: "a streamed image",
    base: "/v1",
    suffix: "/images/generations",
    request: json("/v1/images/generations", {
      model: "gpt-image-1",
      prompt: `shared ${++unique}`,
      stream: true,
    }),
  },
  {
    label: "an image edit",
    base: "/v1",
    suffix: "/images/edits",
    request: (() => {
      const seed = ++unique;
      return () => {
        const { body, contentType } = formBody([
          ["image", { filename: "p.png", bytes: audioBytes(2048, seed), type: "image/png" }],
          ["prompt", "hat"],
        ]);
        return {
          path: "/v1/images/edits",
          headers: { "content-type": contentType, authorization: "Bearer sk-shared" },
          body,
        };
      };
    })(),
  },
  {
    label: "a rerank",
    base: "/v1",
    suffix: "/rerank",
    request: json("/v1/rerank", {
      model: "rerank-v3.5",
      query: `q ${++unique}`,
      documents: ["a", "b q"],
    }),
  },
  {
    label: "a moderation",
    base: "/v1",
    suffix: "/moderations",
    request: json("/v1/moderations", { input: `shared ${++unique}` }),
  },
  {
    label: "a Gemini answer",
    base: "/v1beta",
    suffix: "enerateContent",
    request: gemini(false, `shared ${++unique}`),
  },
  {
    label: "a streamed Gemini answer",
    base: "/v1beta",
    suffix: "enerateContent",
    request: gemini(true, `shared ${++unique}`),
  },
];

describe("two gateway processes on one Redis", () => {
  for (const c of cases()) {
    it(`${c.label}: 3 requests to each process make one upstream call`, async () => {
      const { here, hereUrl, child } = c.base === "/v1" ? v1 : v1beta;
      const send = async (url: string) => {
        const request = c.request();
        const response = await fetch(`${url}${request.path}`, {
          method: "POST",
          headers: request.headers,
          body: request.body,
        });
        return {
          status: response.status,
          outcome: response.headers.get("x-infercache"),
          bytes: Buffer.from(await response.arrayBuffer()),
        };
      };
      const before = upstream.count(c.suffix);
      const coalesced = here.pipeline.stats().coalesced;
      const exists = await existsCalls();
      const release = upstream.hold();
      const answers: ReturnType<typeof send>[] = [];
      try {
        answers.push(send(hereUrl));
        await until(() => upstream.count(c.suffix) - before === 1, "the first upstream call");
        answers.push(
          send(hereUrl),
          send(hereUrl),
          send(child.url),
          send(child.url),
          send(child.url),
        );
        await until(
          async () =>
            here.pipeline.stats().coalesced - coalesced === 2 &&
            (await existsCalls()) - exists >= 3,
          "two joiners here and three waiters in the other process",
        );
      } finally {
        release();
      }
      const sent = await Promise.all(answers);
      expect(upstream.count(c.suffix) - before).toBe(1);
      expect(sent.map((s) => s.status)).toEqual([200, 200, 200, 200, 200, 200]);
      expect(sent.map((s) => s.outcome).sort()).toEqual([
        "coalesced",
        "coalesced",
        "coalesced",
        "coalesced",
        "coalesced",
        "miss",
      ]);
      for (const answer of sent) expect(answer.bytes.equals(sent[0]?.bytes as Buffer)).toBe(true);
      // And from then on, a hit in either process.
      expect((await send(child.url)).outcome).toBe("hit");
      expect((await send(hereUrl)).outcome).toBe("hit");
    });
  }
});
