/**
 * Rerank (the Cohere shape, which Jina, vLLM and TEI follow) and OpenAI moderations through the
 * gateway: the contract every family keeps, moderations with the OpenAI SDK, and both keys
 * field by field (every field is in: each changes the answer).
 */
import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import {
  type FamilySpec,
  familyGateway,
  runProtocolContract,
} from "./helpers/protocol-contract.js";
import { openaiErrorBody, sendJson, sendText } from "./helpers/provider-upstream.js";

const bearer = (key: string) => ({ headers: { authorization: `Bearer ${key}` } });
const errors: FamilySpec["errors"] = [
  ["a 500", (_r, res) => sendJson(res, 500, openaiErrorBody("boom", "server_error"))],
  ["a 429", (_r, res) => sendJson(res, 429, openaiErrorBody("slow down", "rate_limit_error"))],
  ["a 200 whose JSON is an error", (_r, res) => sendJson(res, 200, openaiErrorBody("no"))],
  ["a 200 without results", (_r, res) => sendJson(res, 200, { id: "x" })],
  ["a 200 that is not JSON", (_r, res) => sendText(res, "application/json", "upstream timeout")],
];
const documents = ["Paris is the capital of France", "Berlin is in Germany", "Otters hold hands"];

runProtocolContract({
  route: "rerank",
  base: "/v1",
  suffix: "/rerank",
  streams: false,
  converts: false,
  request: (id) => ({
    path: "/v1/rerank",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "rerank-v3.5", query: `capital of France ${id}`, documents }),
  }),
  credential: bearer,
  errors,
});

runProtocolContract({
  route: "moderations",
  base: "/v1",
  suffix: "/moderations",
  streams: false,
  converts: false,
  request: (id) => ({
    path: "/v1/moderations",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "omni-moderation-latest", input: `is this fine ${id}` }),
  }),
  credential: bearer,
  errors,
});

describe("moderations with the OpenAI SDK", () => {
  const context = familyGateway("/v1", bearer);
  const openai = () =>
    new OpenAI({ apiKey: "sk-mod", baseURL: `${context.url}/v1`, maxRetries: 0 });

  it("a miss then a hit with the same results (and the first answer's id)", async () => {
    const request = { model: "omni-moderation-latest", input: ["I will kill this bug", "hello"] };
    const first = await openai().moderations.create(request).withResponse();
    const again = await openai().moderations.create(request).withResponse();
    expect(again.response.headers.get("x-infercache")).toBe("hit");
    expect(again.data).toEqual(first.data);
    expect(first.data.results.map((r) => r.flagged)).toEqual([true, false]);
  });
});

describe("rerank and moderation keys, field by field", () => {
  const context = familyGateway("/v1", bearer);
  let unique = 0;
  const post = (path: string, payload: Record<string, unknown>) =>
    context.send({
      path,
      headers: { "content-type": "application/json" },
      body: JSON.stringify(payload),
    });
  const shares = async (path: string, a: Record<string, unknown>, b: Record<string, unknown>) => {
    expect((await post(path, a)).outcome).toBe("miss");
    return (await post(path, b)).outcome === "hit";
  };
  const rerank = () => ({ model: "rerank-v3.5", query: `q ${++unique}`, documents });

  for (const [field, value] of [
    ["top_n", 1],
    ["return_documents", true],
    ["max_tokens_per_doc", 64],
    ["rank_fields", ["text"]],
    ["model", "jina-reranker-v2-base-multilingual"],
    ["query", "another question"],
    ["documents", [...documents].reverse()],
  ] as const) {
    it(`rerank: ${field} is in the key`, async () => {
      const payload = rerank();
      expect(await shares("/v1/rerank", payload, { ...payload, [field]: value })).toBe(false);
    });
  }

  it("rerank documents as objects and as strings are different requests", async () => {
    const payload = rerank();
    const objects = { ...payload, documents: documents.map((text) => ({ text })) };
    expect(await shares("/v1/rerank", payload, objects)).toBe(false);
  });

  it("moderations: the input and the model are in the key", async () => {
    const payload = () => ({ model: "omni-moderation-latest", input: `text ${++unique}` });
    const a = payload();
    expect(await shares("/v1/moderations", a, { ...a, input: [a.input] })).toBe(false);
    const b = payload();
    expect(await shares("/v1/moderations", b, { ...b, model: "text-moderation-stable" })).toBe(
      false,
    );
  });
});
