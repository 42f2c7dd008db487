/**
 * A 400 means the client sent something wrong and can fix it; the message names the argument,
 * what is wrong and the fix, and never echoes the payload. What a served function throws is the
 * server's problem: a 500 that does not leak the error's message, which goes to `onError`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cache, UnhashableError } from "../src/index.js";
import { type ServedApp, serve } from "../src/server.js";

const classify = async (pixels: Float32Array) => (pixels[0] ?? 0) > 0.5;
const embedAll = async (batch: { id: string; vector: Float32Array }[]) => batch.length;
const validate = (text: string) => {
  if (text.length > 3) throw new TypeError(`bad argument: ${text} is too long`);
  return text;
};
const lookup = cache((entry: unknown) => entry);
/** Passes a function to a cached helper: a bug on the server's side, not the client's. */
const careless = (text: string) => lookup({ text, format: () => text });

const failures: { error: unknown; name: string }[] = [];
let app: ServedApp;
beforeAll(async () => {
  app = await serve({
    functions: { classify, embedAll, validate, careless },
    params: { classify: ["Float32Array"] },
    onError: (error, call) => failures.push({ error, name: call.name }),
  });
});
afterAll(async () => {
  await app?.close();
});

const call = (name: string, args: unknown[], headers: Record<string, string> = {}) =>
  fetch(`${app.url}/call/${name}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ args }),
  });
const refusal = async (response: Response) => {
  expect(response.status).toBe(400);
  return ((await response.json()) as { error: { message: string } }).error.message;
};
const base64 = (bytes: number[]) => Buffer.from(bytes).toString("base64");

describe("serve(): $binary arguments", () => {
  it("refuses a byte length that is not a whole number of elements", async () => {
    const payload = base64([1, 2, 3, 4, 5]);
    const message = await refusal(
      await call("classify", [{ $binary: payload, type: "Float32Array" }]),
    );
    expect(message).toBe(
      "argument 1 of `classify`: $binary has 5 bytes, not a multiple of 4 (Float32Array); send whole elements, 4 bytes each",
    );
    expect(message).not.toContain(payload);
  });

  it("names the place inside an argument", async () => {
    const ok = { id: "a", vector: { $binary: base64([0, 0, 128, 63]), type: "Float32Array" } };
    const bad = { id: "b", vector: { $binary: base64([0, 0, 128]), type: "Float32Array" } };
    expect(await refusal(await call("embedAll", [[ok, bad]]))).toBe(
      "argument 1 of `embedAll`, at [1].vector: $binary has 3 bytes, not a multiple of 4 (Float32Array); send whole elements, 4 bytes each",
    );
    const fine = await call("embedAll", [[ok, ok]]);
    expect(((await fine.json()) as { result: number }).result).toBe(2);
  });

  it("refuses base64 that is not base64", async () => {
    for (const payload of ["AA*A", "AAAAA", "AA AA", "AA=A", "QQ=", "AAAA====", "AA\u0141A"]) {
      const message = await refusal(
        await call("classify", [{ $binary: payload, type: "Float32Array" }]),
      );
      expect(message, payload).toBe(
        "argument 1 of `classify`: $binary is not valid base64; encode the bytes as base64 (A-Z a-z 0-9 + / or - _, with = padding or none)",
      );
    }
    // Both alphabets, padded or not, are accepted.
    for (const payload of ["AACAPw==", "AACAPw", "AAC_Pw", "AAC/Pw=="]) {
      const response = await call("classify", [{ $binary: payload, type: "Float32Array" }]);
      expect(response.status, payload).toBe(200);
    }
  });

  it("refuses an unknown type, and a $binary or type that is not a string", async () => {
    expect(await refusal(await call("classify", [{ $binary: "AAAA", type: "Float33Array" }]))).toBe(
      "argument 1 of `classify`: $binary type `Float33Array` is not a binary type; use Buffer or one of Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array",
    );
    const long = "x".repeat(5000);
    const unnamed = await refusal(await call("classify", [{ $binary: "AAAA", type: long }]));
    expect(unnamed).not.toContain(long);
    expect(unnamed).toMatch(/^argument 1 of `classify`: \$binary type \(5000 characters\) is not/);
    expect(await refusal(await call("classify", [{ $binary: 12, type: "Float32Array" }]))).toBe(
      "argument 1 of `classify`: $binary must be a base64 string, got number",
    );
    expect(await refusal(await call("classify", [{ $binary: "AAAA", type: 4 }]))).toBe(
      "argument 1 of `classify`: the `type` of a $binary value must be a string (a typed array name or Buffer), got number",
    );
  });

  it("refuses arguments nested too deep to handle", async () => {
    const deep = `${"[".repeat(10_000)}${"]".repeat(10_000)}`;
    const response = await fetch(`${app.url}/call/embedAll`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: `{"args":[${deep}]}`,
    });
    expect(await refusal(response)).toBe(
      "argument 1 of `embedAll` is nested more than 256 levels deep; send flatter data",
    );
  });
});

describe("serve(): the request body", () => {
  const post = (body: string, headers: Record<string, string>) =>
    fetch(`${app.url}/call/embedAll`, { method: "POST", headers, body });
  const json = { "content-type": "application/json" };

  it("refuses a body that is not JSON", async () => {
    for (const body of ['{"args":[1', "", "args=1"]) {
      expect(await refusal(await post(body, json)), body).toBe(
        'the body is not valid JSON; send { "args": [ ... ] }',
      );
    }
    expect(await refusal(await post("[1]", json))).toBe(
      'the body must be JSON like { "args": [ ... ] }',
    );
    const withCharset = await post('{"args":[[]]}', {
      "content-type": "application/json; charset=utf-8",
    });
    expect(((await withCharset.json()) as { result: number }).result).toBe(0);
  });

  it("answers 415 to a body not sent as application/json", async () => {
    for (const [type, named] of [
      ["text/plain", "`text/plain`"],
      ["application/x-www-form-urlencoded", "`application/x-www-form-urlencoded`"],
      [`text/${"x".repeat(200)}`, "(a 205-character content type)"],
    ] as const) {
      const response = await post('{"args":[[]]}', { "content-type": type });
      expect(response.status, type).toBe(415);
      expect(((await response.json()) as { error: { message: string } }).error.message).toBe(
        `send the body as JSON with content-type: application/json, not ${named}`,
      );
    }
    const none = await fetch(`${app.url}/call/embedAll`, {
      method: "POST",
      body: new Uint8Array(Buffer.from('{"args":[[]]}')),
    });
    expect(none.status).toBe(415);
    expect(((await none.json()) as { error: { message: string } }).error.message).toBe(
      "send the body as JSON with content-type: application/json, not none",
    );
  });

  it("refuses keys that would set an object's prototype in code that copies it", async () => {
    expect(
      await refusal(await post('{"args":[[{"id":"a","__proto__":{"admin":true}}]]}', json)),
    ).toBe(
      "argument 1 of `embedAll`, at [0]: the key `__proto__` is refused, as code that copies the object would set its prototype; rename it",
    );
    expect(
      await refusal(await post('{"args":[{"constructor":{"prototype":{"admin":true}}}]}', json)),
    ).toBe(
      "argument 1 of `embedAll`: the key `constructor` holding a `prototype` is refused, as code that merges the object would change a class; rename it",
    );
    const fine = await post('{"args":[[{"constructor":"ok"}]]}', json);
    expect(((await fine.json()) as { result: number }).result).toBe(1);
  });
});

describe("serve(): options", () => {
  it("refuses a body limit that is not a positive integer", async () => {
    for (const bad of [0, -1, 1.5, Number.NaN, "10"]) {
      await expect(
        serve({ functions: { classify }, bodyLimitBytes: bad as number }),
      ).rejects.toThrow(
        `Expected \`bodyLimitBytes\` to be a positive integer, got \`${String(bad)}\` (${typeof bad})`,
      );
    }
  });
});

describe("serve(): errors of the served function", () => {
  it("answers a TypeError the function threw with a 500 that does not leak its message", async () => {
    failures.length = 0;
    const response = await call("validate", ["secret prompt"]);
    expect(response.status).toBe(500);
    const text = await response.text();
    expect(text).not.toContain("bad argument");
    expect(text).not.toContain("secret prompt");
    expect(JSON.parse(text)).toEqual({
      error: { message: "infercache: `validate` failed; the server's log has the error" },
    });
    expect(failures).toHaveLength(1);
    expect(failures[0]?.name).toBe("validate");
    expect((failures[0]?.error as Error | undefined)?.message).toBe(
      "bad argument: secret prompt is too long",
    );
    expect(((await (await call("validate", ["ok"])).json()) as { result: string }).result).toBe(
      "ok",
    );
  });

  it("says the same in an event stream", async () => {
    const response = await call("validate", ["secret prompt"], { accept: "text/event-stream" });
    const text = await response.text();
    expect(text).not.toContain("secret prompt");
    expect(text).toContain(
      `event: error\ndata: {"status":500,"message":"infercache: \`validate\` failed; the server's log has the error"}`,
    );
  });

  it("treats a value the server's own code could not hash as a server error", async () => {
    failures.length = 0;
    const response = await call("careless", ["hello"]);
    expect(response.status).toBe(500);
    expect(await response.text()).not.toContain("cannot hash");
    expect(failures[0]?.error).toBeInstanceOf(UnhashableError);
  });
});
