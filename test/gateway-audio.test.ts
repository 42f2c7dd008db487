/**
 * Audio through the gateway: transcriptions, translations and speech keep the contract every
 * family keeps; then the real OpenAI SDK as the client (every response format, streamed
 * transcriptions, speech bytes under the sampling policy), and the key rules field by field:
 * the audio by its bytes, the file name only by its extension, every other field in.
 */
import OpenAI, { toFile } from "openai";
import { describe, expect, it } from "vitest";
import { audioBytes, type FormEntry, formBody } from "./helpers/form-body.js";
import { familyGateway, runProtocolContract } from "./helpers/protocol-contract.js";
import {
  cutEvents,
  openaiErrorBody,
  sendEvents,
  sendJson,
  sendText,
} from "./helpers/provider-upstream.js";

const seedOf = (id: string) => [...id].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7);
const bearer = (key: string) => ({ headers: { authorization: `Bearer ${key}` } });
const form = (path: string, entries: FormEntry[]) => {
  const { body, contentType } = formBody(entries);
  return { path, headers: { "content-type": contentType }, body };
};
const transcriptEvents = (text: string) => [
  ...text
    .split(" ")
    .map((w) => `data: ${JSON.stringify({ type: "transcript.text.delta", delta: w })}\n\n`),
  `data: ${JSON.stringify({ type: "transcript.text.done", text })}\n\n`,
];
const openaiErrors: [string, Parameters<typeof runProtocolContract>[0]["errors"][number][1]][] = [
  ["a 500", (_r, res) => sendJson(res, 500, openaiErrorBody("boom", "server_error"))],
  ["a 429", (_r, res) => sendJson(res, 429, openaiErrorBody("slow down", "rate_limit_error"))],
  ["a 200 whose JSON is an error", (_r, res) => sendJson(res, 200, openaiErrorBody("no"))],
  [
    "a 200 HTML page (a proxy's)",
    (_r, res) => sendText(res, "text/html", "<html>bad gateway</html>"),
  ],
];

runProtocolContract({
  route: "transcriptions",
  base: "/v1",
  suffix: "/audio/transcriptions",
  streams: true,
  converts: true,
  request: (id, stream) =>
    form("/v1/audio/transcriptions", [
      ["file", { filename: "clip.mp3", bytes: audioBytes(4096, seedOf(id)), type: "audio/mpeg" }],
      ["model", "gpt-4o-transcribe"],
      ...(stream ? ([["stream", "true"]] as FormEntry[]) : []),
    ]),
  credential: bearer,
  errors: openaiErrors,
  cuts: [
    [
      "a stream without transcript.text.done",
      (_r, res) => sendEvents(res, transcriptEvents("half a sentence").slice(0, -1)),
    ],
    ["a stream whose connection dies", (_r, res) => cutEvents(res, transcriptEvents("a b c d"), 2)],
    [
      "a stream with an error event",
      (_r, res) =>
        sendEvents(res, [
          ...transcriptEvents("a b").slice(0, 1),
          `event: error\ndata: ${JSON.stringify(openaiErrorBody("audio too long"))}\n\n`,
        ]),
    ],
  ],
});

runProtocolContract({
  route: "translations",
  base: "/v1",
  suffix: "/audio/translations",
  streams: false,
  converts: false,
  request: (id) =>
    form("/v1/audio/translations", [
      ["file", { filename: "clip.wav", bytes: audioBytes(2048, seedOf(id)), type: "audio/wav" }],
      ["model", "whisper-1"],
    ]),
  credential: bearer,
  errors: openaiErrors,
});

runProtocolContract({
  route: "speech",
  base: "/v1",
  suffix: "/audio/speech",
  streams: true,
  converts: false,
  request: (id, stream) => ({
    path: "/v1/audio/speech",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: "gpt-4o-mini-tts",
      input: `say ${id}`,
      voice: "alloy",
      ...(stream && { stream_format: "sse" }),
    }),
  }),
  credential: bearer,
  errors: openaiErrors.slice(0, 3),
  cuts: [
    [
      "a stream without speech.audio.done",
      (_r, res) =>
        sendEvents(res, [
          `data: ${JSON.stringify({ type: "speech.audio.delta", audio: "AAEC" })}\n\n`,
        ]),
    ],
    [
      "a stream whose connection dies",
      (_r, res) =>
        cutEvents(
          res,
          [
            `data: ${JSON.stringify({ type: "speech.audio.delta", audio: "AAEC" })}\n\n`,
            `data: ${JSON.stringify({ type: "speech.audio.done" })}\n\n`,
          ],
          1,
        ),
    ],
  ],
});

describe("audio with the OpenAI SDK", () => {
  const context = familyGateway("/v1", bearer);
  const openai = () =>
    new OpenAI({ apiKey: "sk-audio", baseURL: `${context.url}/v1`, maxRetries: 0 });
  let unique = 0;
  const clip = () => audioBytes(8192, ++unique);

  it("json (the default): a miss then a hit with the same transcript", async () => {
    const bytes = clip();
    const ask = async () =>
      openai()
        .audio.transcriptions.create({
          file: await toFile(bytes, "speech.mp3"),
          model: "gpt-4o-transcribe",
        })
        .withResponse();
    const miss = await ask();
    const hit = await ask();
    expect(miss.response.headers.get("x-infercache")).toBe("miss");
    expect(hit.response.headers.get("x-infercache")).toBe("hit");
    expect(hit.data.text).toBe(miss.data.text);
    expect(miss.data.text).toMatch(/^heard [0-9a-f]{12} as \.mp3$/);
  });

  for (const format of ["text", "srt", "vtt", "verbose_json"] as const) {
    it(`response_format ${format}: replayed as the upstream sent it`, async () => {
      const bytes = clip();
      const ask = async () =>
        openai()
          .audio.transcriptions.create({
            file: await toFile(bytes, "speech.m4a"),
            model: "whisper-1",
            response_format: format,
          })
          .withResponse();
      const miss = await ask();
      const hit = await ask();
      expect(hit.response.headers.get("x-infercache")).toBe("hit");
      expect(hit.response.headers.get("content-type")?.split(";")[0]).toBe(
        miss.response.headers.get("content-type")?.split(";")[0],
      );
      expect(hit.data).toEqual(miss.data);
      if (format === "srt") expect(String(hit.data)).toMatch(/^1\n00:00:00,000 --> /);
      if (format === "vtt") expect(String(hit.data)).toMatch(/^WEBVTT/);
    });
  }

  it("a streamed transcription replays its events, and a plain call is answered from them", async () => {
    const bytes = clip();
    const stream = async () => {
      const events = [];
      const response = await openai().audio.transcriptions.create({
        file: await toFile(bytes, "speech.mp3"),
        model: "gpt-4o-transcribe",
        stream: true,
      });
      for await (const event of response) events.push(event);
      return events;
    };
    const before = context.upstream.count("/audio/transcriptions");
    const miss = await stream();
    const hit = await stream();
    expect(hit).toEqual(miss);
    expect(miss.at(-1)).toMatchObject({
      type: "transcript.text.done",
      usage: { total_tokens: 19 },
    });
    const plain = await openai().audio.transcriptions.create({
      file: await toFile(bytes, "speech.mp3"),
      model: "gpt-4o-transcribe",
    });
    expect(plain.text).toBe((miss.at(-1) as { text: string }).text);
    expect(context.upstream.count("/audio/transcriptions") - before).toBe(1);
  });

  it("a plain transcription answers a streamed request: one delta and the done event", async () => {
    const bytes = clip();
    const file = async () => toFile(bytes, "speech.mp3");
    const plain = await openai().audio.transcriptions.create({
      file: await file(),
      model: "gpt-4o-transcribe",
    });
    const events = [];
    for await (const event of await openai().audio.transcriptions.create({
      file: await file(),
      model: "gpt-4o-transcribe",
      stream: true,
    }))
      events.push(event);
    expect(events).toEqual([
      { type: "transcript.text.delta", delta: plain.text },
      { type: "transcript.text.done", text: plain.text, usage: plain.usage },
    ]);
  });

  it("translations: a miss then a hit", async () => {
    const bytes = clip();
    const ask = async () =>
      openai()
        .audio.translations.create({ file: await toFile(bytes, "talk.ogg"), model: "whisper-1" })
        .withResponse();
    const miss = await ask();
    const hit = await ask();
    expect(hit.response.headers.get("x-infercache")).toBe("hit");
    expect(hit.data.text).toBe(miss.data.text);
    expect(miss.data.text).toMatch(/^translated /);
  });

  it("speech: the first reading's bytes are replayed (the upstream would read it anew)", async () => {
    const request = {
      model: "gpt-4o-mini-tts" as const,
      voice: "alloy" as const,
      input: `hello ${++unique}`,
    };
    const first = await openai().audio.speech.create(request);
    const firstBytes = Buffer.from(await first.arrayBuffer());
    const again = await openai().audio.speech.create(request);
    expect(again.headers.get("x-infercache")).toBe("hit");
    expect(again.headers.get("content-type")).toBe("audio/mpeg");
    expect(Buffer.from(await again.arrayBuffer()).equals(firstBytes)).toBe(true);
  });

  it("speech is sampled: bypass asks every time, bucket=2 keeps two readings", async () => {
    const request = {
      model: "gpt-4o-mini-tts" as const,
      voice: "nova" as const,
      input: `again ${++unique}`,
    };
    const read = async (policy: string) => {
      const response = await openai().audio.speech.create(request, {
        headers: { "x-infercache-sampling": policy },
      });
      return {
        outcome: response.headers.get("x-infercache"),
        bytes: Buffer.from(await response.arrayBuffer()).toString("hex"),
      };
    };
    const a = await read("bypass");
    const b = await read("bypass");
    expect([a.outcome, b.outcome]).toEqual(["bypass", "bypass"]);
    expect(a.bytes).not.toBe(b.bytes);
    const filled = [await read("bucket=2"), await read("bucket=2")];
    expect(filled.map((r) => r.outcome)).toEqual(["miss", "miss"]);
    const served = await read("bucket=2");
    expect(served.outcome).toBe("hit");
    expect(filled.map((r) => r.bytes)).toContain(served.bytes);
  });
});

describe("audio keys, field by field", () => {
  const context = familyGateway("/v1", bearer);
  let unique = 0;
  const base = (): FormEntry[] => [
    [
      "file",
      { filename: "meeting.mp3", bytes: audioBytes(4096, 1000 + ++unique), type: "audio/mpeg" },
    ],
    ["model", "gpt-4o-transcribe"],
  ];
  const send = (entries: FormEntry[], path = "/v1/audio/transcriptions") =>
    context.send(form(path, entries));
  const shares = async (a: FormEntry[], b: FormEntry[]) => {
    expect((await send(a)).outcome).toBe("miss");
    return (await send(b)).outcome === "hit";
  };
  const withFile = (
    entries: FormEntry[],
    change: Partial<{ filename: string; bytes: Uint8Array; type: string }>,
  ) =>
    entries.map(
      ([name, value]): FormEntry =>
        name === "file" && typeof value !== "string"
          ? [name, { ...value, ...change }]
          : ([name, value] as FormEntry),
    );

  it("the same form with another boundary and the fields in another order is the same key", async () => {
    const entries = base();
    expect(await shares(entries, [...entries].reverse())).toBe(true);
  });

  it("the audio's bytes: one byte changed is another key", async () => {
    const entries = base();
    const file = entries[0]?.[1] as { bytes: Uint8Array };
    const changed = Buffer.from(file.bytes);
    changed[2000] = (changed[2000] as number) ^ 1;
    expect(await shares(entries, withFile(entries, { bytes: changed }))).toBe(false);
  });

  it("the file name stays out but for its extension", async () => {
    const entries = base();
    expect(await shares(entries, withFile(entries, { filename: "other name.mp3" }))).toBe(true);
    expect(await shares(base(), withFile(base(), { filename: "meeting.wav" }))).toBe(false);
    const upper = base();
    expect(await shares(upper, withFile(upper, { filename: "meeting.MP3" }))).toBe(false);
    const dotted = base();
    expect(await shares(dotted, withFile(dotted, { filename: "dir/x.y/meeting.mp3" }))).toBe(true);
  });

  it("the upstream really gets the name, as sent", async () => {
    const entries = withFile(base(), { filename: "my recording.mp3" });
    await send(entries);
    const received = context.upstream.received.at(-1)?.form?.get("file") as File;
    expect(received.name).toBe("my recording.mp3");
  });

  it("the file part's content type is in the key (some servers detect the format by it)", async () => {
    const entries = base();
    expect(await shares(entries, withFile(entries, { type: "audio/wav" }))).toBe(false);
  });

  for (const [field, value] of [
    ["language", "de"],
    ["prompt", "names: Ada, Grace"],
    ["temperature", "0.2"],
    ["response_format", "verbose_json"],
    ["timestamp_granularities[]", "word"],
    ["include[]", "logprobs"],
    ["chunking_strategy", "auto"],
    ["some_future_field", "x"],
  ] as const) {
    it(`${field} is in the key`, async () => {
      const entries = base();
      expect(await shares(entries, [...entries, [field, value]])).toBe(false);
    });
  }

  it("the model is in the key", async () => {
    const entries = base();
    const other = entries.map(
      ([n, v]): FormEntry => (n === "model" ? [n, "whisper-1"] : ([n, v] as FormEntry)),
    );
    expect(await shares(entries, other)).toBe(false);
  });

  it("repeated fields keep their order: timestamp_granularities[] word,segment ≠ segment,word", async () => {
    const entries = base();
    const a: FormEntry[] = [
      ...entries,
      ["timestamp_granularities[]", "word"],
      ["timestamp_granularities[]", "segment"],
    ];
    const b: FormEntry[] = [
      ...entries,
      ["timestamp_granularities[]", "segment"],
      ["timestamp_granularities[]", "word"],
    ];
    expect(await shares(a, b)).toBe(false);
  });

  it("stream stays out in json (the answers convert) and in with any other format", async () => {
    const json = base();
    expect(await shares([...json, ["stream", "false"]], json)).toBe(true);
    const srt: FormEntry[] = [...base(), ["response_format", "srt"]];
    expect(await shares(srt, [...srt, ["stream", "false"]])).toBe(false);
  });

  it("a temperature above 0 is sampled; none or 0 is not", async () => {
    const sampling = { "x-infercache-sampling": "bypass" };
    const hot = form("/v1/audio/transcriptions", [...base(), ["temperature", "0.7"]]);
    expect((await context.send(hot, "key-a", sampling)).outcome).toBe("bypass");
    const cold = form("/v1/audio/transcriptions", base());
    expect((await context.send(cold, "key-a", sampling)).outcome).toBe("miss");
    const zero = form("/v1/audio/transcriptions", [...base(), ["temperature", "0"]]);
    expect((await context.send(zero, "key-a", sampling)).outcome).toBe("miss");
  });

  it("same bytes under another boundary are another form, and another key (the key memo ignored the content type)", async () => {
    const part = (boundary: string, language: string) =>
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.mp3"\r\nContent-Type: audio/mpeg\r\n\r\nRIFF-same-audio\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="language"\r\n\r\n${language}\r\n--${boundary}--\r\n`;
    // Valid for both boundaries: the other's part is the preamble or the epilogue.
    const bytes = Buffer.from(`${part("AAAA", "en")}${part("BBBB", "fr")}`);
    let answers = 0;
    context.upstream.respond = (_r, res) => sendJson(res, 200, { text: `answer ${++answers}` });
    const as = (boundary: string) =>
      context.send({
        path: "/v1/audio/transcriptions",
        headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
        body: bytes,
      });
    expect((await as("AAAA")).outcome).toBe("miss");
    const french = await as("BBBB");
    expect(french.outcome).toBe("miss");
    expect(JSON.parse(french.bytes.toString()).text).toBe("answer 2");
    expect((await as("AAAA")).outcome).toBe("hit");
  });

  it("a malformed form is a 400 that says what is wrong, and never reaches the upstream", async () => {
    const before = context.upstream.received.length;
    const bad = await context.send({
      path: "/v1/audio/transcriptions",
      headers: { "content-type": "multipart/form-data; boundary=XYZ" },
      body: '--XYZ\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n',
    });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.bytes.toString()).error.message).toMatch(
      /not valid multipart\/form-data: it ends inside a part/,
    );
    const noBoundary = await context.send({
      path: "/v1/audio/transcriptions",
      headers: { "content-type": "multipart/form-data" },
      body: "x",
    });
    expect(noBoundary.status).toBe(400);
    expect(context.upstream.received.length).toBe(before);
  });

  it("a body that is not a form passes through uncached", async () => {
    const response = await context.send({
      path: "/v1/audio/transcriptions",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(response.outcome).toBe("bypass");
  });

  it("a 10 MB upload is keyed and served from the cache", async () => {
    const big = audioBytes(10_000_000, 42);
    const entries: FormEntry[] = [
      ["file", { filename: "long.flac", bytes: big, type: "audio/flac" }],
      ["model", "gpt-4o-transcribe"],
    ];
    expect((await send(entries)).outcome).toBe("miss");
    const hit = await send(entries);
    expect(hit.outcome).toBe("hit");
    const received = context.upstream.received.at(-1)?.form?.get("file") as File;
    expect(received.size).toBe(10_000_000);
  });
});
