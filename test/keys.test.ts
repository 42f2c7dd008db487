import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { cache, HASH_HOOK, hashKey, UnhashableError } from "../src/index.js";
import { shortKey } from "../src/key/index.js";

/** Pinned digests (KEYS.md). A change here is a change of the key format: bump its version. */
const vectors: [string, unknown, string][] = [
  ["undefined", undefined, "a342e8502d266abcbf032ee0e06ff5474bbb802faf17ebf9812f4481259f125e"],
  ["null", null, "a6742252b871c996efd611e2bf3fbc0516a0db56a821d0cbde53e801ce9ca8fa"],
  ["false", false, "7bf8c1a3d2189c43243a43d32766759238da254fa6d2d81f04722255cde8ee8d"],
  ["true", true, "ac5ff6361ff6b685983ba1e1840f58a572a2f882ca016b0f76da871bf46c23e0"],
  ["0", 0, "487c91523c64fd7456f04f64e7e2679c0d936b95d41ebc09f597b01e59c6f08d"],
  ["-0", -0, "43a6e4c641c8dcaa2cac53b6d71a26912c3d04752bed2acddef13d3d94c74fb9"],
  ["1", 1, "4f62b774ad6ae7db92cea67634b7ba8747131cda3173e928b0e99869080f053a"],
  ["1.5", 1.5, "75332432aacf9bea1f6c95ef1bc3a68419e24eb71f66a739c3cd3cecf1e33f00"],
  ["NaN", Number.NaN, "62a52ed6f2f4f59e8488868b813f230bcee210c1e43ff588ebeceeedddd7f3eb"],
  [
    "Infinity",
    Number.POSITIVE_INFINITY,
    "c99054ae01e6ac66a9c6b430c60f5336ef75c1d06b03bd3054b11a1284c67466",
  ],
  ["1n", 1n, "f78aae0ec60b6ef162dc0a4e3d9511931a46551c364c1d8e57100d38a28e4f5d"],
  ["-256n", -256n, "dc816f4dd3bc13b90eabc12c1bfe419788a85b64e091450a949b4c93ebefa09f"],
  ['""', "", "d1b79b7a6ba7384f172d057d489a6d0f5b25de6af6e029c15f898d76e0366095"],
  ['"1"', "1", "6a0cafb60f13b24e007fef64254a59e987c4d2c01716fef151942865b9d82867"],
  ['"héllo 🔑"', "héllo 🔑", "d0e5359308d8871a3b1d5a4b0696f01c3709cdc5005e5a5a6416b67f7ac73b1c"],
  ['"\\ud800"', "\ud800", "e3e56b3b98d00b68a5b7a741581d580af9a34cf1211cda135b65cb3cf111ff36"],
  ["[]", [], "c88bc876d03ebd629c907e9cbfe0591f2a5a9090a18f72bbec40d7a7ccf8c491"],
  ["[1]", [1], "1fd7c831350c1dd6c8ca242aff49d7bcca333a384074722bb669d555b314fe83"],
  ['[1, "1"]', [1, "1"], "a8290464f0c05bb6e9e86426e4f04d6d6e42c58df51f4f0f6c28ed37e07e6f62"],
  [
    "[undefined, 1]",
    [undefined, 1],
    "e0aeecbbbace947fc130d8539b4d87543f47baa08dd54b1b3f363fc05bdfdb0b",
  ],
  // biome-ignore lint/suspicious/noSparseArray: a hole has its own tag (0x0a)
  ["[, 1]", [, 1], "2ef3aae19e1b8e4b50ab9e59609279bf6a19a4501f5e051b1a2ae2c854af8e98"],
  [
    "new Array(2)",
    new Array(2),
    "5c396c442f52eb8435c3947e49c4efa6163eacbbc03d0066c30b31c019e5f54f",
  ],
  ["{}", {}, "c00fd0fd023b36c18093f1804f9552d2b77f40876016c8a1353d4bb1b63ad5ca"],
  [
    "{ a: 1, b: [true, null] }",
    { a: 1, b: [true, null] },
    "579135c08a0b7eef15b73586a43c233b7412bc8083a91e62fcaf4ffe9f31fc48",
  ],
  ["new Date(0)", new Date(0), "712b6040e766589f9a97112d4c4defd86b0319cd883234ef841f0624bc714940"],
  ["/ab+c/gi", /ab+c/gi, "ab7890222a977c0840ef884ca174e825f68c70863bae537961a10931b0f3b627"],
  [
    "/a/g with lastIndex 2",
    Object.assign(/a/g, { lastIndex: 2 }),
    "4cc8dee1e053131f61f332c83d5ea247be2be8754396881f4a19105744628dfa",
  ],
  [
    'new Map([["k", 1]])',
    new Map([["k", 1]]),
    "76facdd7ce2201b9a6186d1db00e2d761ff810fccc01ce87fbabe32368f9e178",
  ],
  [
    "new Set([1, 2])",
    new Set([1, 2]),
    "b86161c15deea3b05fc16eb6fbc5dacfffb4c384a58efd020db0c82669b7b533",
  ],
  [
    "new Uint8Array([1, 2, 3])",
    new Uint8Array([1, 2, 3]),
    "40585feda51d7e82bfc5bbdaa0695b4c1c98cee2dcf43af3ba342328f6307682",
  ],
  [
    "new Float32Array([1])",
    new Float32Array([1]),
    "d9219e27c75b7dfdc857d5decaf99fd64a8f05ef34c14441330fccc8b500c7bf",
  ],
  [
    "new Float64Array([1])",
    new Float64Array([1]),
    "862cad1c26fa906fdb1d6f08f69d851cb98f5f1ede43d47bf0751712fd810bb1",
  ],
  [
    "Buffer.from([1, 2, 3])",
    Buffer.from([1, 2, 3]),
    "af3175f0edffd17c8c0f988722d9b138615e0d6008e62f8eeac901a5adcc442e",
  ],
  [
    "new ArrayBuffer(4)",
    new ArrayBuffer(4),
    "5b7bea27010bbc93fe36091363d5ac12a7eb12353f59b4d52947f7119a498e0a",
  ],
];

describe("hashKey test vectors (format v1)", () => {
  it.each(vectors)("%s", (_label, value, digest) => {
    expect(hashKey(value)).toBe(digest);
  });

  it("hashes a context string in front of the value", () => {
    expect(hashKey("prompt", { context: "version=number:3" })).toBe(
      "b185f25afe48d481ef56170f345e3cc1087ae53535439828f6fb3b7c08f21156",
    );
    expect(hashKey("prompt", { context: "a" })).not.toBe(hashKey("prompt"));
  });

  it("gives every vector a different digest", () => {
    expect(new Set(vectors.map(([, , digest]) => digest)).size).toBe(vectors.length);
  });
});

describe("hashKey distinguishes types", () => {
  it("keeps 1, '1', true, 1n and [1] apart", () => {
    const keys = [1, "1", true, 1n, [1], { 0: 1 }, new Uint8Array([1]), new Date(1)].map((v) =>
      hashKey(v),
    );
    expect(new Set(keys).size).toBe(keys.length);
  });

  it("keeps element type and length of binary values", () => {
    const values = [
      new Float32Array([1]),
      new Float64Array([1]),
      new Int32Array([1]),
      new Uint32Array([1]),
      new Uint8Array([0, 0, 128, 63]), // the bytes of Float32Array([1])
      new Float32Array([1, 0]),
      [1],
      Buffer.from([0, 0, 128, 63]),
      new DataView(new Uint8Array([0, 0, 128, 63]).buffer),
      new Uint8Array([0, 0, 128, 63]).buffer,
    ];
    const keys = values.map((v) => hashKey(v));
    expect(new Set(keys).size).toBe(values.length);
  });

  it("hashes a typed array by its own window, not its whole buffer", () => {
    const buffer = new Float32Array([9, 1, 2, 9]);
    expect(hashKey(buffer.subarray(1, 3))).toBe(hashKey(new Float32Array([1, 2])));
  });

  it("tells undefined properties and holes apart from absence", () => {
    expect(hashKey({ a: undefined })).not.toBe(hashKey({}));
    expect(hashKey([undefined])).not.toBe(hashKey([]));
  });

  it("keeps -0 apart from 0 and treats every NaN alike", () => {
    expect(hashKey(-0)).not.toBe(hashKey(0));
    const otherNaN = new Float64Array(new BigUint64Array([0x7ff8000000000001n]).buffer)[0];
    expect(hashKey(otherNaN)).toBe(hashKey(Number.NaN));
  });

  it("keeps a lone surrogate apart from U+FFFD", () => {
    expect(hashKey("\ud800")).not.toBe(hashKey("\ufffd"));
  });

  it("keeps a hooked instance apart from the plain value its hook returns", () => {
    class Point {
      constructor(
        readonly x: number,
        readonly y: number,
      ) {}
      [HASH_HOOK]() {
        return [this.x, this.y];
      }
    }
    expect(hashKey(new Point(1, 2))).toBe(hashKey(new Point(1, 2)));
    expect(hashKey(new Point(1, 2))).not.toBe(hashKey(new Point(2, 1)));
    expect(hashKey(new Point(1, 2))).not.toBe(hashKey([1, 2]));
  });
});

describe("hashKey is order-insensitive where order carries no meaning", () => {
  it("for object keys, Map entries and Set members", () => {
    expect(hashKey({ a: 1, b: 2 })).toBe(hashKey({ b: 2, a: 1 }));
    expect(
      hashKey(
        new Map([
          ["a", 1],
          ["b", 2],
        ]),
      ),
    ).toBe(
      hashKey(
        new Map([
          ["b", 2],
          ["a", 1],
        ]),
      ),
    );
    expect(hashKey(new Set([1, "x", [2]]))).toBe(hashKey(new Set([[2], "x", 1])));
  });

  it("but not for arrays", () => {
    expect(hashKey([1, 2])).not.toBe(hashKey([2, 1]));
  });

  it("for any object, shuffled (property)", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (dict) => {
        const reversed = Object.fromEntries(Object.entries(dict).reverse());
        expect(hashKey(reversed)).toBe(hashKey(dict));
      }),
    );
  });

  it("for any Map and Set, shuffled (property)", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(fc.string(), fc.jsonValue()), { selector: ([k]) => k }),
        (pairs) => {
          const forward = new Map(pairs);
          const backward = new Map([...pairs].reverse());
          expect(hashKey(backward)).toBe(hashKey(forward));
          expect(hashKey(new Set(pairs.map(([k]) => k).reverse()))).toBe(
            hashKey(new Set(pairs.map(([k]) => k))),
          );
        },
      ),
    );
  });
});

describe("hashKey properties", () => {
  const primitive = fc.oneof(
    fc.string(),
    fc.double(),
    fc.boolean(),
    fc.bigInt(),
    fc.constant(null),
    fc.constant(undefined),
  );
  const tagOf = (v: unknown) => (v === null ? "null" : typeof v);

  it("values of different types never share a key", () => {
    fc.assert(
      fc.property(primitive, primitive, (a, b) => {
        fc.pre(tagOf(a) !== tagOf(b));
        expect(hashKey(a)).not.toBe(hashKey(b));
        expect(hashKey([a])).not.toBe(hashKey(a));
      }),
    );
  });

  it("equal JSON values get equal keys, different ones different keys", () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), (a, b) => {
        const same = hashKey(a) === hashKey(b);
        expect(same).toBe(canonical(a) === canonical(b));
      }),
    );
  });

  it("is stable across runs: a deep copy hashes the same", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(hashKey(structuredClone(value))).toBe(hashKey(value));
      }),
    );
  });

  it("short in-memory keys agree with hashKey on equality (property)", () => {
    const args = fc.array(primitive, { maxLength: 4 });
    fc.assert(
      fc.property(fc.oneof(args, primitive), fc.oneof(args, primitive), (a, b) => {
        const shortA = shortKey(a, "");
        const shortB = shortKey(b, "");
        fc.pre(shortA !== undefined && shortB !== undefined);
        expect(shortA === shortB).toBe(hashKey(a) === hashKey(b));
      }),
      { numRuns: 2000 },
    );
    expect(shortKey([1], "")).not.toBe(shortKey(1, ""));
    expect(shortKey(-0, "")).not.toBe(shortKey(0, ""));
    expect(shortKey("x", "v1")).not.toBe(shortKey("x", ""));
  });
});

describe("short in-memory keys for JSON-shaped values", () => {
  /** The same value with every object's keys inserted in reverse order. */
  const reversed = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(reversed);
    if (value !== null && typeof value === "object") {
      return Object.fromEntries(
        Object.entries(value)
          .reverse()
          .map(([k, v]) => [k, reversed(v)]),
      );
    }
    return value;
  };
  const json = fc.oneof(
    fc.jsonValue(),
    fc.dictionary(fc.constantFrom("a", "b", "0", "__proto__"), fc.jsonValue({ maxDepth: 2 })),
  );

  it("every JSON value gets one, and key order does not matter (property)", () => {
    fc.assert(
      fc.property(json, (value) => {
        const key = shortKey([value], "");
        expect(key).toBeDefined();
        expect(shortKey([reversed(value)], "")).toBe(key);
        expect(shortKey([structuredClone(value)], "")).toBe(key);
      }),
    );
  });

  it("agrees with hashKey on equality (property)", () => {
    fc.assert(
      fc.property(json, json, (a, b) => {
        expect(shortKey([a], "") === shortKey([b], "")).toBe(hashKey([a]) === hashKey([b]));
      }),
      { numRuns: 2000 },
    );
  });

  it("keeps what hashKey keeps apart", () => {
    const distinct: unknown[] = [
      { a: 1 },
      { a: "1" },
      { a: 1n },
      { a: true },
      { a: [1] },
      { a: { 0: 1 } },
      { a: -0 },
      { a: 0 },
      { a: null },
      { a: undefined },
      {},
      { b: 1 },
      [{ a: 1 }],
      // biome-ignore lint/suspicious/noSparseArray: a hole is not undefined
      [, { a: 1 }],
      [undefined, { a: 1 }],
      { a: "\ud800" },
      { a: "\ufffd" },
      { "a:": 1 },
      { a: "s1:a" },
      { ab: 1 },
      { a: { b: 1 } },
      { "a{1s1:b": 1 },
    ];
    const keys = distinct.map((value) => shortKey([value], ""));
    expect(keys.every((key) => key !== undefined)).toBe(true);
    expect(new Set(keys).size).toBe(distinct.length);
    expect(new Set(distinct.map((value) => hashKey([value]))).size).toBe(distinct.length);
  });

  it("hands values past its bounds, and everything it does not know, to hashKey", () => {
    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) deep = { a: deep };
    expect(shortKey([deep], "")).toBeUndefined();
    expect(() => hashKey([deep])).not.toThrow();
    expect(shortKey([{ text: "x".repeat(20_000) }], "")).toBeUndefined();
    expect(shortKey("x".repeat(20_000), "")).toBeUndefined();
    expect(
      shortKey(
        Array.from({ length: 10_000 }, (_, i) => i),
        "",
      ),
    ).toBeUndefined();
    const cycle: { self?: unknown } = {};
    cycle.self = cycle;
    expect(shortKey([cycle], "")).toBeUndefined();
    for (const other of [new Date(0), new Map(), new Uint8Array(1), () => 0, Symbol("s")]) {
      expect(shortKey([{ a: other }], "")).toBeUndefined();
    }
  });

  it("never equals a hex digest and carries its context", () => {
    const key = shortKey([{ a: 1 }], "v1");
    expect(key?.startsWith("\u0001")).toBe(true);
    expect(key).not.toBe(shortKey([{ a: 1 }], ""));
    expect(shortKey([{ a: 1 }], "1:")).not.toBe(shortKey([{ a: 1 }], ""));
  });
});

/** JSON with sorted keys and -0 kept, to compare values independently of hashKey. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(",")}}`;
  }
  if (Object.is(value, -0)) return "-0";
  return JSON.stringify(value);
}

describe("unhashable input throws a TypeError naming the path, the type and the fix", () => {
  const cases: [string, unknown, RegExp][] = [
    ["a function", { args: [1, () => 1] }, /value\.args\[1\] \(function\)/],
    ["a symbol", [Symbol("s")], /value\[0\] \(symbol\)/],
    ["a promise", { p: Promise.resolve(1) }, /value\.p \(promise\): await it first/],
    ["a WeakMap", { cache: new WeakMap() }, /value\.cache \(instance of WeakMap\)/],
    [
      "a class instance",
      { model: new (class LlamaModel {})() },
      /value\.model \(instance of LlamaModel\)/,
    ],
    ["a key that is not an identifier", { "my key": () => 0 }, /value\["my key"\] \(function\)/],
  ];
  it.each(cases)("for %s", (_label, value, message) => {
    expect(() => hashKey(value)).toThrow(UnhashableError);
    expect(() => hashKey(value)).toThrow(TypeError);
    expect(() => hashKey(value)).toThrow(message);
    expect(() => hashKey(value)).toThrow(
      /pass a `key` option.*\[Symbol\.for\("infercache\.hash"\)\]\(\) method/,
    );
  });

  it("for a cycle", () => {
    const node: { next?: unknown } = {};
    node.next = { back: node };
    expect(() => hashKey(node)).toThrow(/value\.next\.back \(cycle\)/);
  });

  it("but accepts the same object twice when it is shared, not cyclic", () => {
    const shared = { x: 1 };
    expect(hashKey([shared, shared])).toBe(hashKey([{ x: 1 }, { x: 1 }]));
  });

  it("exposes the path and type as fields", () => {
    try {
      hashKey({ a: [() => 0] }, { root: "args" });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(UnhashableError);
      expect((error as UnhashableError).path).toBe("args.a[0]");
      expect((error as UnhashableError).valueType).toBe("function");
    }
  });

  it("can be used again after an error (no state left behind)", () => {
    expect(() => hashKey([1, () => 0])).toThrow();
    expect(hashKey(1)).toBe("4f62b774ad6ae7db92cea67634b7ba8747131cda3173e928b0e99869080f053a");
  });
});

describe("large binary values", () => {
  it("hash a 64 MiB tensor the same as its bytes, element type and length say", () => {
    const big = new Float32Array(16 * 1024 * 1024);
    big[123] = 1;
    const copy = new Float32Array(big);
    expect(hashKey(big)).toBe(hashKey(copy));
    copy[16 * 1024 * 1024 - 1] = 2;
    expect(hashKey(big)).not.toBe(hashKey(copy));
  });

  it("long strings hash by content", () => {
    const text = "lorem ipsum ".repeat(100_000);
    expect(hashKey(text)).toBe(hashKey(`${text}`));
    expect(hashKey(text)).not.toBe(hashKey(`${text} `));
  });
});

describe("values nested deeper than the encoder walks are refused, not a stack overflow", () => {
  const chain = (depth: number, wrap: (inner: unknown) => unknown): unknown => {
    let value: unknown = 1;
    for (let i = 0; i < depth; i++) value = wrap(value);
    return value;
  };
  class Link {
    constructor(readonly next: unknown) {}
    [HASH_HOOK]() {
      return this.next;
    }
  }
  const shapes: [string, (inner: unknown) => unknown, RegExp][] = [
    ["objects", (inner) => ({ a: inner }), /^args\.a\.a\.a\.a/],
    ["arrays", (inner) => [inner], /^args\[0\]\[0\]\[0\]/],
    ["Maps", (inner) => new Map([["a", inner]]), /^args\.get\("a"\)\.get\("a"\)/],
    ["Sets", (inner) => new Set([inner]), /^args\.<set item>\.<set item>/],
    ["hook results", (inner) => new Link(inner), /^args\[Symbol\.for\("infercache\.hash"\)\]\(\)/],
  ];

  it.each(shapes)("for a 100k-deep chain of %s (was a RangeError)", (_label, wrap, path) => {
    const deep = chain(100_000, wrap);
    let caught: unknown;
    try {
      hashKey(deep, { root: "args" });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(UnhashableError);
    const error = caught as UnhashableError;
    expect(error.message).toMatch(/nested deeper than 1000 levels/);
    expect(error.path).toMatch(path);
    expect(error.path).toMatch(/…/);
    expect(error.message.length).toBeLessThan(500);
    expect(shortKey([deep], "")).toBeUndefined();
  });

  it("accepts 1000 levels and refuses 1001", () => {
    expect(() => hashKey(chain(1000, (inner) => [inner]))).not.toThrow();
    expect(() => hashKey(chain(999, (inner) => ({ a: inner })))).not.toThrow();
    expect(() => hashKey(chain(1001, (inner) => [inner]))).toThrow(/deeper than 1000 levels/);
  });

  it("counts levels across a hook that calls hashKey itself", () => {
    class Reentrant {
      constructor(readonly next: unknown) {}
      [HASH_HOOK]() {
        return hashKey(this.next);
      }
    }
    expect(() => hashKey(chain(100_000, (inner) => new Reentrant(inner)))).toThrow(UnhashableError);
    expect(hashKey(1)).toBe("4f62b774ad6ae7db92cea67634b7ba8747131cda3173e928b0e99869080f053a");
  });

  it("refuses through cache(fn) with the argument's path", () => {
    const cached = cache((value: unknown) => typeof value);
    expect(() => cached(chain(100_000, (inner) => ({ a: inner })))).toThrow(
      /cannot hash args\[0\]\.a\.a\.a.*…/,
    );
  });
});
