/**
 * The new families through `cachingFetch` (the SDK-side cache, no gateway): the OpenAI SDK's
 * multipart uploads, binary speech and images are keyed and replayed as through the gateway.
 */
import OpenAI, { toFile } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cachingFetch } from "../src/llm.js";
import { MemoryStore } from "../src/store/memory.js";
import { audioBytes } from "./helpers/form-body.js";
import { type ProviderUpstream, startProviderUpstream } from "./helpers/provider-upstream.js";

let upstream: ProviderUpstream;
beforeAll(async () => {
  upstream = await startProviderUpstream();
});
afterAll(async () => {
  await upstream?.close();
});

const client = () =>
  new OpenAI({
    apiKey: "sk-fetch",
    baseURL: `${upstream.url}/v1`,
    maxRetries: 0,
    fetch: cachingFetch({ store: new MemoryStore() }),
  });

describe("cachingFetch beyond chat", () => {
  it("a transcription upload: the second is a hit, whatever boundary the SDK picked", async () => {
    const openai = client();
    const bytes = audioBytes(20_000, 3);
    const ask = async () =>
      openai.audio.transcriptions
        .create({ file: await toFile(bytes, "a.mp3"), model: "gpt-4o-transcribe" })
        .withResponse();
    const miss = await ask();
    const hit = await ask();
    expect(hit.response.headers.get("x-infercache")).toBe("hit");
    expect(hit.data.text).toBe(miss.data.text);
    expect(upstream.count("/audio/transcriptions")).toBe(1);
  });

  it("speech bytes and an image are replayed as first received", async () => {
    const openai = client();
    const speech = { model: "tts-1" as const, voice: "alloy" as const, input: "fetch me" };
    const first = Buffer.from(await (await openai.audio.speech.create(speech)).arrayBuffer());
    const again = await openai.audio.speech.create(speech);
    expect(again.headers.get("x-infercache")).toBe("hit");
    expect(Buffer.from(await again.arrayBuffer()).equals(first)).toBe(true);
    const image = { model: "gpt-image-1", prompt: "a fetched otter" };
    const drawn = await openai.images.generate(image);
    const redrawn = await openai.images.generate(image);
    expect(redrawn.data?.[0]?.b64_json).toBe(drawn.data?.[0]?.b64_json);
  });
});
