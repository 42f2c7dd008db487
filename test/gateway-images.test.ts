/**
 * Images through the gateway: generations (JSON) and edits (a form with image files) keep the
 * contract every family keeps; then the OpenAI SDK as the client, answers with URLs never
 * stored (they expire), the sampling policy, and the key rules field by field: images by their
 * bytes and order, `user` out, everything else in.
 */
import OpenAI, { toFile } from "openai";
import { describe, expect, it } from "vitest";
import { audioBytes, type FormEntry, formBody } from "./helpers/form-body.js";
import {
  type FamilySpec,
  familyGateway,
  runProtocolContract,
} from "./helpers/protocol-contract.js";
import { cutEvents, openaiErrorBody, sendEvents, sendJson } from "./helpers/provider-upstream.js";

const bearer = (key: string) => ({ headers: { authorization: `Bearer ${key}` } });
const seedOf = (id: string) => [...id].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 11);
const form = (entries: FormEntry[]) => {
  const { body, contentType } = formBody(entries);
  return { path: "/v1/images/edits", headers: { "content-type": contentType }, body };
};
const completed = (event: string) =>
  `event: ${event}.completed\ndata: ${JSON.stringify({ type: `${event}.completed`, b64_json: "UE5H", created_at: 1 })}\n\n`;
const partial = (event: string) =>
  `event: ${event}.partial_image\ndata: ${JSON.stringify({ type: `${event}.partial_image`, b64_json: "UA", partial_image_index: 0 })}\n\n`;
const errors: FamilySpec["errors"] = [
  ["a 500", (_r, res) => sendJson(res, 500, openaiErrorBody("boom", "server_error"))],
  [
    "a 400 (a rejected prompt)",
    (_r, res) => sendJson(res, 400, openaiErrorBody("rejected by the safety system")),
  ],
  ["a 200 whose JSON is an error", (_r, res) => sendJson(res, 200, openaiErrorBody("no"))],
  [
    "a 200 whose images are URLs (they expire within the hour)",
    (_r, res) =>
      sendJson(res, 200, { created: 1, data: [{ url: "https://images.example/x.png" }] }),
  ],
];
const cuts = (event: string): NonNullable<FamilySpec["cuts"]> => [
  ["a stream without its completed event", (_r, res) => sendEvents(res, [partial(event)])],
  [
    "a stream whose connection dies",
    (_r, res) => cutEvents(res, [partial(event), completed(event)], 1),
  ],
  [
    "a stream with an error event",
    (_r, res) =>
      sendEvents(res, [
        partial(event),
        `event: error\ndata: ${JSON.stringify(openaiErrorBody("moderation"))}\n\n`,
      ]),
  ],
];

runProtocolContract({
  route: "images",
  base: "/v1",
  suffix: "/images/generations",
  streams: true,
  converts: true,
  request: (id, stream) => ({
    path: "/v1/images/generations",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: "gpt-image-1",
      prompt: `an otter ${id}`,
      ...(stream && { stream: true }),
    }),
  }),
  credential: bearer,
  errors,
  cuts: cuts("image_generation"),
});

runProtocolContract({
  route: "image-edits",
  base: "/v1",
  suffix: "/images/edits",
  streams: true,
  converts: true,
  request: (id, stream) =>
    form([
      ["image", { filename: "otter.png", bytes: audioBytes(3000, seedOf(id)), type: "image/png" }],
      ["prompt", "add a hat"],
      ["model", "gpt-image-1"],
      ...(stream ? ([["stream", "true"]] as FormEntry[]) : []),
    ]),
  credential: bearer,
  errors,
  cuts: cuts("image_edit"),
});

describe("images with the OpenAI SDK", () => {
  const context = familyGateway("/v1", bearer);
  const openai = () =>
    new OpenAI({ apiKey: "sk-img", baseURL: `${context.url}/v1`, maxRetries: 0 });
  let unique = 0;

  it("a generation: the first image is served again (the upstream would draw another)", async () => {
    const request = { model: "gpt-image-1", prompt: `a lighthouse ${++unique}` };
    const first = await openai().images.generate(request).withResponse();
    const again = await openai().images.generate(request).withResponse();
    expect(again.response.headers.get("x-infercache")).toBe("hit");
    expect(again.data.data?.[0]?.b64_json).toBe(first.data.data?.[0]?.b64_json);
    expect(again.data.usage?.total_tokens).toBe(100);
  });

  it("a streamed generation replays its events; a plain one is answered from them", async () => {
    const request = { model: "gpt-image-1", prompt: `a comet ${++unique}`, stream: true as const };
    const read = async () => {
      const events = [];
      for await (const event of await openai().images.generate(request)) events.push(event);
      return events;
    };
    const miss = await read();
    const hit = await read();
    expect(hit).toEqual(miss);
    expect(miss.at(-1)?.type).toBe("image_generation.completed");
    const plain = await openai().images.generate({ model: "gpt-image-1", prompt: request.prompt });
    expect(plain.data?.[0]?.b64_json).toBe((miss.at(-1) as { b64_json: string }).b64_json);
  });

  it("partial images keep stream in the key: a plain answer cannot replay the partial frames", async () => {
    const prompt = `a storm ${++unique}`;
    const events = [];
    for await (const event of await openai().images.generate({
      model: "gpt-image-1",
      prompt,
      stream: true,
      partial_images: 2,
    }))
      events.push(event.type);
    expect(events).toEqual([
      "image_generation.partial_image",
      "image_generation.partial_image",
      "image_generation.completed",
    ]);
    const plain = await openai()
      .images.generate({ model: "gpt-image-1", prompt, partial_images: 2 })
      .withResponse();
    expect(plain.response.headers.get("x-infercache")).toBe("miss");
  });

  it("DALL·E answers with URLs are passed on, not stored; b64_json ones are", async () => {
    const prompt = `a fox ${++unique}`;
    const url = await openai().images.generate({ model: "dall-e-3", prompt }).withResponse();
    expect(url.data.data?.[0]?.url).toMatch(/^https:/);
    const again = await openai().images.generate({ model: "dall-e-3", prompt }).withResponse();
    expect(again.response.headers.get("x-infercache")).toBe("miss");
    const bytes = { model: "dall-e-3", prompt, response_format: "b64_json" as const };
    await openai().images.generate(bytes);
    const hit = await openai().images.generate(bytes).withResponse();
    expect(hit.response.headers.get("x-infercache")).toBe("hit");
  });

  it("an edit keyed by the image bytes: the same picture under another name is a hit", async () => {
    const picture = audioBytes(5000, ++unique);
    const edit = async (name: string, bytes = picture) =>
      openai()
        .images.edit({
          model: "gpt-image-1",
          image: await toFile(bytes, name, { type: "image/png" }),
          prompt: "make it night",
        })
        .withResponse();
    const first = await edit("photo.png");
    const renamed = await edit("holiday.png");
    expect(renamed.response.headers.get("x-infercache")).toBe("hit");
    expect(renamed.data.data?.[0]?.b64_json).toBe(first.data.data?.[0]?.b64_json);
    const other = Buffer.from(picture);
    other[10] = (other[10] as number) ^ 0xff;
    expect((await edit("photo.png", other)).response.headers.get("x-infercache")).toBe("miss");
  });

  it("several images: their order is in the key", async () => {
    const a = audioBytes(1000, ++unique);
    const b = audioBytes(1000, ++unique);
    const edit = async (first: Buffer, second: Buffer) =>
      openai()
        .images.edit({
          model: "gpt-image-1",
          image: [
            await toFile(first, "a.png", { type: "image/png" }),
            await toFile(second, "b.png", { type: "image/png" }),
          ],
          prompt: "combine",
        })
        .withResponse();
    await edit(a, b);
    expect((await edit(a, b)).response.headers.get("x-infercache")).toBe("hit");
    expect((await edit(b, a)).response.headers.get("x-infercache")).toBe("miss");
  });

  it("images are sampled: bypass draws anew, bucket=2 keeps two drawings", async () => {
    const request = { model: "gpt-image-1", prompt: `a dune ${++unique}` };
    const draw = async (policy: string) => {
      const { data, response } = await openai()
        .images.generate(request, { headers: { "x-infercache-sampling": policy } })
        .withResponse();
      return { outcome: response.headers.get("x-infercache"), image: data.data?.[0]?.b64_json };
    };
    const [a, b] = [await draw("bypass"), await draw("bypass")];
    expect([a.outcome, b.outcome]).toEqual(["bypass", "bypass"]);
    expect(a.image).not.toBe(b.image);
    const filled = [await draw("bucket=2"), await draw("bucket=2")];
    expect(filled.map((d) => d.outcome)).toEqual(["miss", "miss"]);
    const served = await draw("bucket=2");
    expect(served.outcome).toBe("hit");
    expect(filled.map((d) => d.image)).toContain(served.image);
  });
});

describe("image keys, field by field", () => {
  const context = familyGateway("/v1", bearer);
  let unique = 0;
  const generation = (extra: Record<string, unknown> = {}) => ({
    model: "gpt-image-1",
    prompt: `a kite ${++unique}`,
    ...extra,
  });
  const post = (payload: Record<string, unknown>) =>
    context.send({
      path: "/v1/images/generations",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(payload),
    });
  const shares = async (a: Record<string, unknown>, b: Record<string, unknown>) => {
    expect((await post(a)).outcome).toBe("miss");
    return (await post(b)).outcome === "hit";
  };

  it("user (an end-user id) stays out", async () => {
    const payload = generation();
    expect(await shares(payload, { ...payload, user: "end-user-7" })).toBe(true);
  });

  for (const [field, value] of [
    ["size", "1536x1024"],
    ["quality", "high"],
    ["background", "transparent"],
    ["output_format", "webp"],
    ["output_compression", 50],
    ["moderation", "low"],
    ["style", "vivid"],
    ["some_future_field", true],
  ] as const) {
    it(`${field} is in the key`, async () => {
      const payload = generation();
      expect(await shares(payload, { ...payload, [field]: value })).toBe(false);
    });
  }

  it("n > 1 is not cached unless the pipeline is told to (as chat's n)", async () => {
    expect((await post(generation({ n: 2 }))).outcome).toBe("bypass");
  });

  it("an edit's mask, prompt and fields are in the key; its user is not", async () => {
    const image: FormEntry = [
      "image",
      { filename: "p.png", bytes: audioBytes(800, 5), type: "image/png" },
    ];
    const send = (entries: FormEntry[]) => context.send(form(entries));
    const base: FormEntry[] = [image, ["prompt", `edit ${++unique}`], ["model", "gpt-image-1"]];
    expect((await send(base)).outcome).toBe("miss");
    expect((await send([...base, ["user", "u-1"]])).outcome).toBe("hit");
    expect(
      (
        await send([
          ...base,
          ["mask", { filename: "m.png", bytes: audioBytes(800, 6), type: "image/png" }],
        ])
      ).outcome,
    ).toBe("miss");
    expect((await send([...base, ["input_fidelity", "high"]])).outcome).toBe("miss");
  });
});
