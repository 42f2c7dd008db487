/**
 * Values that look alike to a naive encoder but not to the function that receives them: built-in
 * subclasses, arrays with extra properties, holes, hidden and accessor properties, a regex's
 * lastIndex, proxies and boxed primitives. Each one is either keyed apart from its look-alike or
 * refused with an UnhashableError naming the path, the type and the fix (KEYS.md says which).
 */
import { types } from "node:util";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { cache, HASH_HOOK, hashKey, UnhashableError } from "../src/index.js";
import { shortKey } from "../src/key/index.js";

/** The error hashKey throws for `value` under the root `args`, or a failure if it does not. */
function refusal(value: unknown): UnhashableError {
  try {
    hashKey(value, { root: "args" });
  } catch (error) {
    expect(error).toBeInstanceOf(UnhashableError);
    return error as UnhashableError;
  }
  throw new Error("expected hashKey to refuse the value");
}

describe("subclasses of built-in types are refused (they hashed like the base type)", () => {
  class TaggedDate extends Date {}
  class TaggedMap extends Map<unknown, unknown> {}
  class TaggedSet extends Set<unknown> {}
  class TaggedArray extends Array<unknown> {}
  class TaggedRegExp extends RegExp {}
  class TaggedBuffer extends ArrayBuffer {}
  const DataViewBase: new (buffer: ArrayBuffer) => DataView = DataView;
  class TaggedView extends DataViewBase {}
  class TaggedFloats extends Float32Array {}
  class TaggedBytes extends Uint8Array {}
  class TaggedBigInts extends BigInt64Array {}
  const cases: [string, unknown, unknown][] = [
    ["Date", new TaggedDate(0), new Date(0)],
    ["Map", new TaggedMap([["k", 1]]), new Map([["k", 1]])],
    ["Set", new TaggedSet([1]), new Set([1])],
    ["Array", TaggedArray.from([1, 2]), [1, 2]],
    ["RegExp", new TaggedRegExp("a", "g"), /a/g],
    ["ArrayBuffer", new TaggedBuffer(4), new ArrayBuffer(4)],
    ["DataView", new TaggedView(new ArrayBuffer(2)), new DataView(new ArrayBuffer(2))],
    ["Float32Array", new TaggedFloats([1]), new Float32Array([1])],
    ["Uint8Array", new TaggedBytes([1]), new Uint8Array([1])],
    ["BigInt64Array", new TaggedBigInts([1n]), new BigInt64Array([1n])],
  ];

  it.each(cases)("a subclass of %s", (base, subclassed, plain) => {
    expect(() => hashKey(plain)).not.toThrow();
    const error = refusal({ a: [subclassed] });
    expect(error.path).toBe("args.a[0]");
    expect(error.valueType).toMatch(/^instance of Tagged\w+$/);
    expect(error.message).toContain(`a subclass of ${base}`);
    expect(error.message).toMatch(/pass a `key` option.*\[Symbol\.for\("infercache\.hash"\)\]\(\)/);
    expect(shortKey([subclassed], "")).toBeUndefined();
  });

  it("a Buffer stays its own kind, apart from a Uint8Array with the same bytes", () => {
    expect(hashKey(Buffer.from([1, 2]))).not.toBe(hashKey(new Uint8Array([1, 2])));
    const bytes = Buffer.from([1, 2]);
    Object.setPrototypeOf(bytes, class Tagged extends Buffer {}.prototype);
    expect(refusal(bytes).message).toContain("a subclass of Buffer");
  });

  it("a subclass with a hash hook is keyed by its hook", () => {
    class Tags extends Set<string> {
      constructor(
        readonly owner: string,
        tags: string[],
      ) {
        super(tags);
      }
      [HASH_HOOK]() {
        return { owner: this.owner, tags: [...this].sort() };
      }
    }
    expect(hashKey(new Tags("a", ["x", "y"]))).toBe(hashKey(new Tags("a", ["y", "x"])));
    expect(hashKey(new Tags("a", ["x"]))).not.toBe(hashKey(new Tags("b", ["x"])));
    expect(hashKey(new Tags("a", ["x"]))).not.toBe(hashKey(new Set(["x"])));
  });

  it("an array from another prototype chain is refused too", () => {
    const array = [1];
    Object.setPrototypeOf(array, Object.create(Array.prototype));
    expect(refusal(array).message).toContain("a subclass of Array");
  });
});

describe("arrays with extra own properties are refused (a RegExp match hashed like its elements)", () => {
  it("a RegExp match result: index, input and groups", () => {
    const match = /(?<word>b+)/.exec("abbc");
    expect(match).not.toBeNull();
    const error = refusal([match]);
    expect(error.path).toBe("args[0]");
    expect(error.valueType).toBe("array with extra properties");
    expect(error.message).toContain('own property "index"');
    expect(error.message).toContain("[...array]");
    expect(() => hashKey([...(match as RegExpExecArray)])).not.toThrow();
    expect(shortKey([match], "")).toBeUndefined();
  });

  it("a `key` that returns a RegExp match is refused (its short key skipped the check)", () => {
    const cached = cache((text: string) => text.length, { key: (text) => /b+/.exec(text) });
    expect(shortKey(/b+/.exec("abbc"), "")).toBeUndefined();
    expect(() => cached("abbc")).toThrow(
      /cannot hash key\(\.\.\.args\) \(array with extra properties\)/,
    );
  });

  it("a named or symbol-keyed property", () => {
    const named = Object.assign([1, 2], { total: 3 });
    expect(refusal(named).message).toContain('own property "total"');
    const symbolic = [1];
    Object.defineProperty(symbolic, Symbol("meta"), { value: 1 });
    expect(refusal(symbolic).message).toContain("Symbol(meta)");
    expect(shortKey([named], "")).toBeUndefined();
    expect(shortKey([symbolic], "")).toBeUndefined();
  });
});

describe("array holes are keyed apart from undefined ([, 1] and [undefined, 1] shared a key)", () => {
  it("a hole differs from an undefined element", () => {
    // biome-ignore lint/suspicious/noSparseArray: the hole is the point
    const holey = [, 1];
    expect(0 in holey).toBe(false);
    expect(hashKey(holey)).not.toBe(hashKey([undefined, 1]));
    // biome-ignore lint/suspicious/noSparseArray: the hole is the point
    expect(hashKey(holey)).toBe(hashKey([, 1]));
    expect(hashKey(new Array(2))).not.toBe(hashKey([undefined, undefined]));
    expect(hashKey(new Array(2))).not.toBe(hashKey(new Array(3)));
  });

  it("through cache(fn): a function that sees the hole computes apart", () => {
    const cached = cache((list: unknown[]) => (0 in list ? "element" : "hole"));
    // biome-ignore lint/suspicious/noSparseArray: the hole is the point
    expect(cached([, 1])).toBe("hole");
    expect(cached([undefined, 1])).toBe("element");
  });
});

describe("plain objects with hidden or computed properties are refused", () => {
  it("a non-enumerable own property (it was left out of the key)", () => {
    const hidden = Object.defineProperty({ a: 1 }, "secret", { value: 2, enumerable: false });
    const error = refusal({ x: hidden });
    expect(error.path).toBe("args.x.secret");
    expect(error.valueType).toBe("non-enumerable property");
    expect(error.message).toContain("{ ...value }");
    expect(shortKey([hidden], "")).toBeUndefined();
  });

  it("a getter or a setter (the getter ran once for the key, again for the function)", () => {
    let reads = 0;
    const getter = {
      get n() {
        return ++reads;
      },
    };
    const error = refusal({ x: getter });
    expect(error.path).toBe("args.x.n");
    expect(error.valueType).toBe("accessor property");
    expect(reads).toBe(0);
    const setterOnly = Object.defineProperty({}, "n", { set() {}, enumerable: true });
    expect(refusal(setterOnly).valueType).toBe("accessor property");
    expect(shortKey([getter], "")).toBeUndefined();
    expect(reads).toBe(0);
  });

  it("a non-enumerable symbol-keyed property (only enumerable ones were refused)", () => {
    const tagged = Object.defineProperty({ a: 1 }, Symbol("tag"), { value: 1 });
    expect(refusal(tagged).valueType).toBe("object with symbol keys");
    expect(shortKey([tagged], "")).toBeUndefined();
  });

  it("an own __proto__ data property is an ordinary key", () => {
    const own = JSON.parse('{"__proto__": 1}') as object;
    expect(hashKey(own)).not.toBe(hashKey({}));
    expect(hashKey(own)).toBe(hashKey(JSON.parse('{"__proto__": 1}')));
    // A computed key defines an own property too (a literal `__proto__: 1` sets the prototype).
    expect(hashKey(own)).toBe(hashKey({ ["__proto__"]: 1 }));
  });
});

describe("a RegExp's lastIndex is part of its key (a /g regex's exec depends on it)", () => {
  it("keys lastIndex when it is not 0", () => {
    const at2 = /a/g;
    at2.lastIndex = 2;
    expect(hashKey(at2)).not.toBe(hashKey(/a/g));
    const again = /a/g;
    again.lastIndex = 2;
    expect(hashKey(at2)).toBe(hashKey(again));
    const reset = /a/g;
    reset.lastIndex = 0;
    expect(hashKey(reset)).toBe(hashKey(/a/g));
  });

  it("keys what exec would see: a value that is not a number is hashed as it is", () => {
    const odd = /a/y;
    (odd as { lastIndex: unknown }).lastIndex = "2";
    const two = /a/y;
    two.lastIndex = 2;
    expect(hashKey(odd)).not.toBe(hashKey(two));
  });

  it("refuses extra own properties on a RegExp, Date, Map or Set", () => {
    for (const value of [/a/, new Date(0), new Map(), new Set(), new ArrayBuffer(1)]) {
      const error = refusal(Object.assign(value, { note: 1 }));
      expect(error.message).toContain('own property "note"');
    }
  });
});

describe("proxies and boxed primitives are refused", () => {
  it("a Proxy, even over a plain object (its traps run while hashing)", () => {
    for (const target of [{ a: 1 }, [1], new Map()]) {
      const proxy = new Proxy(target, {});
      const error = refusal({ p: proxy });
      expect(error.path).toBe("args.p");
      expect(error.valueType).toBe("proxy");
      expect(error.message).toContain("the object it wraps");
      expect(shortKey([proxy], "")).toBeUndefined();
    }
  });

  it("boxed primitives name the primitive to pass instead", () => {
    const boxes: [unknown, string][] = [
      [new String("a"), "String"],
      [new Number(1), "Number"],
      [new Boolean(false), "Boolean"],
      [Object(1n), "BigInt"],
      [Object(Symbol("s")), "Symbol"],
    ];
    for (const [box, kind] of boxes) {
      const error = refusal([box]);
      expect(error.valueType).toBe(`boxed ${kind}`);
      expect(error.message).toContain("valueOf()");
      expect(shortKey([box], "")).toBeUndefined();
    }
  });
});

/**
 * Properties over random values drawn from families of look-alikes. `fingerprint` is an oracle
 * written without hashKey: it describes everything a function can observe through reflection
 * (prototype, every own property with its kind and enumerability, holes, internal slots), minus
 * the documented equivalences (object key order, Map and Set insertion order, NaN payloads,
 * null vs Object.prototype for plain objects, frozen or not, shared vs copied references).
 */
describe("look-alikes, by property", () => {
  class TaggedMap extends Map<unknown, unknown> {}
  class TaggedArray extends Array<unknown> {}
  class TaggedDate extends Date {}
  class Point {
    constructor(
      readonly x: unknown,
      readonly y: unknown,
    ) {}
    [HASH_HOOK]() {
      return [this.x, this.y];
    }
  }

  type Spec =
    | { kind: "leaf"; family: number; variant: number }
    | { kind: "array"; variant: number; items: Spec[]; hole: number; extra: Spec }
    | { kind: "object"; variant: number; entries: [string, Spec][] }
    | { kind: "map"; variant: number; entries: [Spec, Spec][] }
    | { kind: "set"; items: Spec[] }
    | { kind: "date"; variant: number; time: number }
    | { kind: "regexp"; variant: number; flags: string }
    | { kind: "binary"; variant: number; bytes: number[] }
    | { kind: "boxed"; value: string | number | boolean | bigint }
    | { kind: "point"; x: Spec; y: Spec };

  const key = fc.constantFrom("a", "b", "0", "__proto__", "length");
  /** Mostly variant 0 (the plain one), so that a swapped twin usually has a hashable original. */
  const variantOf = (max: number) =>
    fc.oneof({ arbitrary: fc.constant(0), weight: 3 }, { arbitrary: fc.nat(max), weight: 2 });
  /** Primitives in families of look-alikes; a swap picks another member of the family. */
  const otherNaN = new Float64Array(new BigUint64Array([0x7ff8000000000001n]).buffer)[0];
  const families: unknown[][] = [
    [0, -0, "0", 0n, false, "-0"],
    [1, "1", 1n, true, 1.0000000000000002, -1n],
    [Number.NaN, otherNaN, "NaN", Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, "Infinity"],
    [null, undefined, "null", "undefined", "", " "],
    ["a", "A", "\ud800", "\ufffd", "s1:a", "a\u0000"],
  ];
  const leafSpec = fc
    .record({ family: fc.nat(families.length - 1), variant: fc.nat(5) })
    .map(({ family, variant }): Spec => ({ kind: "leaf", family, variant }));
  const { spec } = fc.letrec<{ spec: Spec }>((tie) => ({
    spec: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      leafSpec,
      fc.record({
        kind: fc.constant("array" as const),
        variant: variantOf(4),
        items: fc.array(tie("spec"), { maxLength: 3 }),
        hole: fc.nat(2),
        extra: leafSpec,
      }),
      fc.record({
        kind: fc.constant("object" as const),
        variant: variantOf(7),
        entries: fc.uniqueArray(fc.tuple(key, tie("spec")), { selector: ([k]) => k, maxLength: 3 }),
      }),
      fc.record({
        kind: fc.constant("map" as const),
        variant: variantOf(1),
        entries: fc.array(fc.tuple(leafSpec, tie("spec")), { maxLength: 2 }),
      }),
      fc.record({ kind: fc.constant("set" as const), items: fc.array(leafSpec, { maxLength: 2 }) }),
      fc.record({
        kind: fc.constant("date" as const),
        variant: variantOf(2),
        time: fc.constantFrom(0, 1),
      }),
      fc.record({
        kind: fc.constant("regexp" as const),
        variant: variantOf(3),
        flags: fc.constantFrom("", "g", "y"),
      }),
      fc.record({
        kind: fc.constant("binary" as const),
        variant: variantOf(3),
        bytes: fc.array(fc.nat(255), { maxLength: 4 }),
      }),
      fc
        .constantFrom<string | number | boolean | bigint>("a", 1, true, 1n)
        .map((value): Spec => ({ kind: "boxed", value })),
      fc.record({ kind: fc.constant("point" as const), x: tie("spec"), y: tie("spec") }),
    ),
  }));

  /**
   * A fresh value from a spec; `flip` may swap a node's variant for a look-alike, and `reversed`
   * inserts object keys, Map entries and Set members in reverse order (which must not matter).
   */
  function build(s: Spec, flip: () => number | undefined, reversed = false): unknown {
    const order = <T>(items: T[]): T[] => (reversed ? [...items].reverse() : items);
    const variant = (v: number) => flip() ?? v;
    switch (s.kind) {
      case "leaf": {
        const members = families[s.family] as unknown[];
        return members[variant(s.variant) % members.length];
      }
      case "array": {
        const items = s.items.map((item) => build(item, flip, reversed));
        switch (variant(s.variant) % 5) {
          case 0:
            return items;
          case 1: {
            // holes where the items would be undefined, or one past the end
            const holey = [...items];
            holey.length = items.length + 1;
            if (s.hole < holey.length - 1) delete holey[s.hole];
            return holey;
          }
          case 2:
            return [...items, undefined];
          case 3:
            return Object.assign([...items], { index: build(s.extra, flip, reversed) });
          default:
            return TaggedArray.from(items);
        }
      }
      case "object": {
        const v = variant(s.variant) % 8;
        const out: Record<string, unknown> = v === 1 ? Object.create(null) : {};
        for (const [k, item] of order(s.entries)) {
          Object.defineProperty(out, k, {
            value: build(item, flip, reversed),
            enumerable: true,
            writable: true,
            configurable: true,
          });
        }
        // hidden and computed properties, and their twins as ordinary properties
        if (v === 2 || v === 7)
          Object.defineProperty(out, "extra", { value: 1, enumerable: v === 7 });
        if (v === 3) Object.defineProperty(out, "extra", { get: () => 1, enumerable: true });
        if (v === 4) Object.defineProperty(out, Symbol.for("tag"), { value: 1 });
        if (v === 5) return new Proxy(out, {});
        if (v === 6) return Object.freeze(out);
        return out;
      }
      case "map": {
        const entries = order(
          s.entries.map(
            ([k, item]) => [build(k, flip, reversed), build(item, flip, reversed)] as const,
          ),
        );
        return variant(s.variant) % 2 === 1 ? new TaggedMap(entries) : new Map(entries);
      }
      case "set":
        return new Set(order(s.items.map((item) => build(item, flip, reversed))));
      case "date": {
        const v = variant(s.variant) % 3;
        if (v === 1) return new TaggedDate(s.time);
        if (v === 2) return Object.assign(new Date(s.time), { note: 1 });
        return new Date(s.time);
      }
      case "regexp": {
        const re = new RegExp("a", s.flags);
        const v = variant(s.variant) % 4;
        if (v === 1) re.lastIndex = 1;
        if (v === 2) (re as { lastIndex: unknown }).lastIndex = "1";
        if (v === 3) return /(a)/.exec("a");
        return re;
      }
      case "binary": {
        const v = variant(s.variant) % 4;
        if (v === 1) return Buffer.from(s.bytes);
        if (v === 2) return new Uint8Array(s.bytes).buffer;
        if (v === 3) return new Uint8ClampedArray(s.bytes);
        return new Uint8Array(s.bytes);
      }
      case "boxed":
        return Object(s.value);
      case "point":
        return new Point(build(s.x, flip, reversed), build(s.y, flip, reversed));
    }
  }

  const protoNames = new Map<unknown, string>([
    [Object.prototype, "Object"],
    [null, "Object"],
    [Array.prototype, "Array"],
    [Map.prototype, "Map"],
    [Set.prototype, "Set"],
    [Date.prototype, "Date"],
    [RegExp.prototype, "RegExp"],
    [Uint8Array.prototype, "Uint8Array"],
    [Uint8ClampedArray.prototype, "Uint8ClampedArray"],
    [Buffer.prototype, "Buffer"],
    [ArrayBuffer.prototype, "ArrayBuffer"],
  ]);
  const classIds = new Map<unknown, number>();

  function fingerprint(value: unknown): string {
    if (typeof value !== "object" || value === null) {
      if (Object.is(value, -0)) return "number:-0";
      if (typeof value === "string") return `string:${JSON.stringify(value)}`;
      return `${typeof value}:${String(value)}`;
    }
    if (types.isProxy(value)) return "proxy";
    const proto = Object.getPrototypeOf(value) as unknown;
    let label = protoNames.get(proto);
    if (label === undefined) {
      if (!classIds.has(proto)) classIds.set(proto, classIds.size);
      label = `class#${classIds.get(proto)}`;
    }
    let slots = "";
    if (types.isDate(value)) slots = fingerprint(Date.prototype.getTime.call(value));
    else if (types.isRegExp(value)) slots = `${value.source}/${value.flags}`;
    else if (types.isMap(value))
      slots = [...value]
        .map(([k, v]) => `${fingerprint(k)}=>${fingerprint(v)}`)
        .sort()
        .join(",");
    else if (types.isSet(value)) slots = [...value].map(fingerprint).sort().join(",");
    else if (types.isBoxedPrimitive(value)) slots = fingerprint(value.valueOf());
    else if (ArrayBuffer.isView(value))
      slots = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("hex");
    else if (types.isArrayBuffer(value)) slots = Buffer.from(value).toString("hex");
    const own = Reflect.ownKeys(value)
      .filter((k) => !(ArrayBuffer.isView(value) && typeof k === "string" && /^\d+$/.test(k)))
      .map((k) => {
        const d = Object.getOwnPropertyDescriptor(value, k) as PropertyDescriptor;
        const what = "value" in d ? fingerprint(d.value) : "accessor";
        return `${String(k)}:${d.enumerable ? "e" : "h"}:${what}`;
      })
      .sort();
    return `${label}(${slots}){${own.join(",")}}`;
  }

  const attempt = (f: () => string): string | undefined => {
    try {
      return f();
    } catch (error) {
      if (error instanceof UnhashableError) return undefined;
      throw error;
    }
  };

  /**
   * A pair: the same spec built twice (equal, fresh objects), or built twice with one node's
   * variant swapped for a look-alike (the pairs that matter), or two specs.
   */
  const pair = fc
    .tuple(spec, spec, fc.nat(2), fc.nat(7), fc.nat(3), fc.boolean())
    .map(([a, b, target, swapTo, mode, reversed]) => {
      let node = 0;
      const swap = () => (node++ === target ? swapTo : undefined);
      const none = () => undefined;
      if (mode === 0) return [build(a, none), build(a, none, reversed)];
      if (mode === 3) return [build(a, none), build(b, none)];
      return [build(a, none), build(a, swap, reversed)];
    });

  it("equal hashKeys mean structurally indistinguishable values, and back (property)", () => {
    fc.assert(
      fc.property(pair, ([a, b]) => {
        const keyA = attempt(() => hashKey(a));
        const keyB = attempt(() => hashKey(b));
        fc.pre(keyA !== undefined && keyB !== undefined);
        expect(keyA === keyB).toBe(fingerprint(a) === fingerprint(b));
      }),
      { numRuns: 3000 },
    );
  });

  it("the in-memory key agrees with hashKey: same store key iff same hashKey (property)", () => {
    const storeKey = (v: unknown) => shortKey(v, "") ?? hashKey(v);
    fc.assert(
      fc.property(pair, ([a, b]) => {
        for (const v of [a, b]) {
          if (shortKey(v, "") !== undefined) expect(() => hashKey(v)).not.toThrow();
          if (shortKey([v], "") !== undefined) expect(() => hashKey([v])).not.toThrow();
        }
        const keyA = attempt(() => hashKey(a));
        const keyB = attempt(() => hashKey(b));
        fc.pre(keyA !== undefined && keyB !== undefined);
        expect(storeKey(a) === storeKey(b)).toBe(keyA === keyB);
        expect(storeKey([a, 1]) === storeKey([b, 1])).toBe(keyA === keyB);
      }),
      { numRuns: 3000 },
    );
  });
});
