/**
 * The first promise of a cache: never a wrong hit. A cached function whose result is a pure
 * function of its arguments must return exactly what the uncached function returns, for any
 * arguments in any order, through every key path (short keys, the key memo, SHA-256).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { KeyMemo } from "../src/cache/key-memo.js";
import { Cache, cache, hashKey } from "../src/index.js";
import { chatKey, completionKey, embeddingKey } from "../src/llm.js";

const primitive = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.double(),
  fc.constantFrom(0, -0, 1, Number.NaN, 1n, "1", true, false, null, undefined, "", "-0", "NaN"),
  fc.boolean(),
  fc.bigInt(),
  fc.constant(null),
  fc.constant(undefined),
);
const value = fc.oneof(
  primitive,
  fc.array(primitive, { maxLength: 3 }),
  fc.dictionary(fc.string(), primitive),
  // JSON shapes take the short-key route too: nested, with holes, -0 and look-alike strings
  fc.jsonValue({ maxDepth: 3 }),
  fc.sparseArray(primitive, { maxLength: 3 }),
  fc.dictionary(fc.constantFrom("a", "b", "__proto__"), fc.array(primitive, { maxLength: 2 })),
);

describe("never a wrong hit", () => {
  it("cached(...args) === fn(...args) for any sequence of calls (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(value, { maxLength: 4 }), { minLength: 1, maxLength: 40 }),
        (calls) => {
          const truth = (...args: unknown[]) => hashKey(args);
          const cached = cache(truth, { maxSize: 0 });
          for (const args of [...calls, ...calls.reverse()])
            expect(cached(...args)).toBe(truth(...args));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("through a `key` that returns one primitive (property)", () => {
    fc.assert(
      fc.property(fc.array(primitive, { minLength: 1, maxLength: 40 }), (keys) => {
        const cached = cache((k: unknown) => hashKey(k), { key: (k) => k, maxSize: 0 });
        for (const k of [...keys, ...keys]) expect(cached(k)).toBe(hashKey(k));
      }),
      { numRuns: 300 },
    );
  });

  it("for a manual Cache (property)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(value, { minLength: 1, maxLength: 30 }), async (keys) => {
        const c = new Cache<{ digest: string }>({ maxSize: 0 });
        for (const k of keys) await c.set(k, { digest: hashKey(k) });
        for (const k of keys) expect((await c.get(k))?.digest).toBe(hashKey(k));
      }),
      { numRuns: 200 },
    );
  });

  it("keeps the classic look-alikes apart", () => {
    const cached = cache((x: unknown) => (Object.is(x, -0) ? "-0" : `${typeof x}:${String(x)}`));
    const inputs: unknown[] = [
      0,
      -0,
      1,
      "1",
      true,
      1n,
      null,
      undefined,
      "null",
      "undefined",
      Number.NaN,
      "NaN",
    ];
    for (let round = 0; round < 2; round++) {
      for (const x of inputs)
        expect(cached(x)).toBe(Object.is(x, -0) ? "-0" : `${typeof x}:${String(x)}`);
    }
  });

  it("the key memo stays bounded and correct past its limit", () => {
    const memo = new KeyMemo(10);
    for (let i = 0; i < 100; i++) memo.set([i, "x"], `k${i}`);
    expect(memo.get([99, "x"])).toBe("k99");
    expect(memo.get([0, "x"])).toBeUndefined();
    memo.set([-0], "negative");
    expect(memo.get([0])).toBeUndefined();
    expect(memo.get([-0])).toBe("negative");
    memo.set([{}], "object");
    expect(memo.get([{}])).toBeUndefined();
  });
});

describe("an own property named __proto__ is part of the key", () => {
  // JSON.parse makes `__proto__` an own data property. Code that copies an object with
  // `out[name] = value` hits the inherited setter instead: a primitive is dropped and an object
  // replaces the copy's prototype.
  const withPrimitive = () => JSON.parse('{"__proto__": 1}') as Record<string, unknown>;
  const withObject = () => JSON.parse('{"__proto__": {"x": 1}}') as Record<string, unknown>;

  it("cache(fn) computes { __proto__: 1 } and {} separately", () => {
    let runs = 0;
    const cached = cache((value: Record<string, unknown>) => {
      runs++;
      return Object.keys(value).length;
    });
    expect(cached(withPrimitive())).toBe(1);
    expect(cached({})).toBe(0);
    expect(cached(withPrimitive())).toBe(1);
    expect(runs).toBe(2);
  });

  it("chatKey of two bodies differing only in an own __proto__ differs (withoutTransport dropped it)", () => {
    const body = { model: "m", messages: [{ role: "user", content: "hi" }] };
    const withProto = Object.assign(withPrimitive(), body);
    expect(chatKey(withProto)).not.toBe(chatKey(body));
    expect(completionKey(withProto)).not.toBe(completionKey(body));
    expect(embeddingKey("m", "hi", withPrimitive())).not.toBe(embeddingKey("m", "hi", {}));
  });

  it("chatKey keys an own __proto__ holding an object (withoutTransport set the prototype)", () => {
    const body = Object.assign(withObject(), { model: "m", messages: [] });
    const other = Object.assign(JSON.parse('{"__proto__": {"x": 2}}'), {
      model: "m",
      messages: [],
    });
    expect(chatKey(body)).toBe(chatKey(Object.assign(withObject(), { model: "m", messages: [] })));
    expect(chatKey(body)).not.toBe(chatKey(other));
    expect(chatKey(body)).not.toBe(chatKey({ model: "m", messages: [] }));
  });
});
