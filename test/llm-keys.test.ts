import { describe, expect, it } from "vitest";
import { chatKey, completionKey, embeddingKey } from "../src/llm.js";

const base = {
  model: "gpt-4o-mini",
  messages: [
    { role: "system", content: "You are terse." },
    {
      role: "user",
      content: [
        { type: "text", text: "What is in this image?" },
        { type: "image_url", image_url: { url: "https://example.test/cat.png", detail: "low" } },
      ],
    },
    {
      role: "assistant",
      content: null,
      tool_calls: [
        { id: "call_1", type: "function", function: { name: "lookup", arguments: '{"q":"cat"}' } },
      ],
    },
    { role: "tool", tool_call_id: "call_1", content: "a cat" },
  ],
  tools: [
    {
      type: "function",
      function: {
        name: "lookup",
        parameters: { type: "object", properties: { q: { type: "string" } } },
      },
    },
  ],
  tool_choice: "auto",
  response_format: { type: "json_object" },
  temperature: 0,
  top_p: 1,
  max_tokens: 100,
  seed: 1,
  stop: ["\n\n"],
  n: 1,
  presence_penalty: 0,
  frequency_penalty: 0,
  logit_bias: { "50256": -100 },
  logprobs: false,
  reasoning_effort: "low",
} as Record<string, unknown>;

/** Sets a nested field by path, for the mutations below. */
function set(target: unknown, path: (string | number)[], value: unknown): void {
  let node = target as Record<string | number, unknown>;
  for (const step of path.slice(0, -1)) node = node[step] as Record<string | number, unknown>;
  node[path.at(-1) as string | number] = value;
}

const changes: [string, (r: Record<string, unknown>) => void][] = [
  ["model", (r) => set(r, ["model"], "gpt-4o")],
  ["message order", (r) => set(r, ["messages"], [...(r.messages as unknown[])].reverse())],
  ["a message's text", (r) => set(r, ["messages", 0, "content"], "You are verbose.")],
  ["a role", (r) => set(r, ["messages", 0, "role"], "developer")],
  [
    "an image URL",
    (r) =>
      set(r, ["messages", 1, "content", 1, "image_url", "url"], "https://example.test/dog.png"),
  ],
  ["an image detail", (r) => set(r, ["messages", 1, "content", 1, "image_url", "detail"], "high")],
  [
    "image data",
    (r) => set(r, ["messages", 1, "content", 1, "image_url", "url"], "data:image/png;base64,AAAA"),
  ],
  [
    "audio input",
    (r) =>
      (r.messages as unknown[]).push({
        role: "user",
        content: [{ type: "input_audio", input_audio: { data: "UklGRg==", format: "wav" } }],
      }),
  ],
  [
    "a tool call's arguments",
    (r) => set(r, ["messages", 2, "tool_calls", 0, "function", "arguments"], '{"q":"dog"}'),
  ],
  ["a tool result", (r) => set(r, ["messages", 3, "content"], "a dog")],
  ["tools", (r) => set(r, ["tools"], [])],
  ["tool_choice", (r) => set(r, ["tool_choice"], "required")],
  ["response_format", (r) => set(r, ["response_format"], { type: "text" })],
  ["temperature", (r) => set(r, ["temperature"], 0.7)],
  ["top_p", (r) => set(r, ["top_p"], 0.9)],
  ["max_tokens", (r) => set(r, ["max_tokens"], 101)],
  ["max_completion_tokens", (r) => set(r, ["max_completion_tokens"], 100)],
  ["seed", (r) => set(r, ["seed"], 2)],
  ["stop", (r) => set(r, ["stop"], ["END"])],
  ["n", (r) => set(r, ["n"], 2)],
  ["presence_penalty", (r) => set(r, ["presence_penalty"], 0.5)],
  ["frequency_penalty", (r) => set(r, ["frequency_penalty"], 0.5)],
  ["logit_bias", (r) => set(r, ["logit_bias"], { "50256": -50 })],
  ["logprobs", (r) => set(r, ["logprobs"], true)],
  ["top_logprobs", (r) => set(r, ["top_logprobs"], 3)],
  ["reasoning_effort", (r) => set(r, ["reasoning_effort"], "high")],
  ["reasoning (object form)", (r) => set(r, ["reasoning"], { effort: "medium" })],
  ["an unknown field", (r) => set(r, ["brand_new_parameter"], true)],
];

describe("chatKey", () => {
  const key = chatKey(base);
  it.each(changes)("changes when %s changes", (_label, change) => {
    const changed = structuredClone(base);
    change(changed);
    expect(chatKey(changed)).not.toBe(key);
  });

  it("does not change when object keys are reordered (at any depth)", () => {
    const reordered = JSON.parse(JSON.stringify(base), (_k, value) =>
      value !== null && typeof value === "object" && !Array.isArray(value)
        ? Object.fromEntries(Object.entries(value).reverse())
        : value,
    ) as Record<string, unknown>;
    expect(Object.keys(reordered)[0]).not.toBe(Object.keys(base)[0]);
    expect(chatKey(reordered)).toBe(key);
  });

  it.each([
    ["stream", true],
    ["stream_options", { include_usage: true }],
    ["user", "user-42"],
  ])("ignores the transport field %s", (field, value) => {
    expect(chatKey({ ...base, [field]: value })).toBe(key);
  });

  it("is scoped by upstream, tenant and version", () => {
    const scoped = new Set([
      chatKey(base),
      chatKey(base, { upstream: "https://api.openai.com/v1" }),
      chatKey(base, { upstream: "http://127.0.0.1:8080/v1" }),
      chatKey(base, { upstream: "https://api.openai.com/v1", tenant: "t1" }),
      chatKey(base, { upstream: "https://api.openai.com/v1", tenant: "t2" }),
      chatKey(base, { version: 2 }),
      chatKey(base, { version: "2" }),
    ]);
    expect(scoped.size).toBe(7);
  });

  it("keeps chat and text completion keys apart", () => {
    expect(completionKey({ model: "m", prompt: "x" })).not.toBe(
      chatKey({ model: "m", prompt: "x" }),
    );
  });

  it("rejects a request that is not an object", () => {
    expect(() => chatKey([] as never)).toThrow(/request to be an object, got an array/);
  });
});

describe("embeddingKey", () => {
  it("depends on the model, the input and the options, per input", () => {
    const key = embeddingKey("text-embedding-3-small", "hello");
    expect(embeddingKey("text-embedding-3-large", "hello")).not.toBe(key);
    expect(embeddingKey("text-embedding-3-small", "hello!")).not.toBe(key);
    expect(embeddingKey("text-embedding-3-small", "hello", { dimensions: 256 })).not.toBe(key);
    expect(embeddingKey("text-embedding-3-small", "hello", { encoding_format: "base64" })).not.toBe(
      key,
    );
    expect(embeddingKey("text-embedding-3-small", [15339, 1917])).not.toBe(key);
    expect(embeddingKey("text-embedding-3-small", "hello", { user: "u1" })).toBe(key);
  });
});
