import { randomBytes } from "node:crypto";
import zlib from "node:zlib";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CorruptEntryError, NotSerializableError } from "../src/sqlite.js";
import {
  crc32InJs,
  decodeEntry,
  decodeOrUndefined,
  ENVELOPE_VERSION,
  encodeEntry,
} from "../src/store/envelope.js";
import type { Entry } from "../src/store/store.js";
import { encodeEntryV1, V1_FIXTURE } from "./helpers/legacy-formats.js";

const roundTrip = (value: unknown) => decodeEntry(encodeEntry({ value, createdAt: 1 })).value;

describe("the entry envelope", () => {
  it("round-trips every kind of value hashKey accepts, and more", () => {
    const values: unknown[] = [
      undefined,
      null,
      true,
      0,
      -0,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      12345678901234567890n,
      "",
      "héllo 🔑",
      "\ud800",
      [1, [2, [3]]],
      { a: undefined, b: null, nested: { deep: [1, "x"] } },
      new Date(1234),
      /ab+c/gi,
      new Map<unknown, unknown>([
        ["k", { v: 1 }],
        [1, [2]],
      ]),
      new Set([1, "1", 1n]),
      Buffer.from("buffer bytes"),
      new ArrayBuffer(8),
      new DataView(new ArrayBuffer(4)),
      new Int8Array([-1]),
      new Uint8Array([255]),
      new Uint8ClampedArray([300]),
      new Int16Array([-300]),
      new Uint16Array([65535]),
      new Int32Array([-70000]),
      new Uint32Array([4e9]),
      new Float32Array([0.5]),
      new Float64Array([Math.PI]),
      new BigInt64Array([-5n]),
      new BigUint64Array([5n]),
      { yields: ["a", "b"], returnValue: { tokens: 2 } },
    ];
    for (const value of values) {
      const back = roundTrip(value);
      expect(back, String(value)).toEqual(value);
      if (typeof value === "object" && value !== null) {
        expect(Object.getPrototypeOf(back)).toBe(Object.getPrototypeOf(value));
      }
    }
    expect(Object.is(roundTrip(-0), -0)).toBe(true);
    expect(roundTrip({ a: undefined })).toHaveProperty("a");
  });

  it("keeps entry metadata", () => {
    const entry = decodeEntry(
      encodeEntry({ value: 1, createdAt: 5, expiresAt: 10, computeMs: 2.5, rawKey: [1, 2] }),
    );
    expect(entry).toEqual({
      value: 1,
      createdAt: 5,
      expiresAt: 10,
      computeMs: 2.5,
      rawKey: [1, 2],
    });
  });

  it("keeps tags and the stale time, with and without a raw key, in both codecs", () => {
    const big = "x".repeat(5000); // past the JSON budget: the V8 codec
    for (const value of [1, { a: "b" }, big, new Map([[1, 2]])]) {
      for (const rawKey of [undefined, ["k", 1]]) {
        for (const tags of [undefined, [], ["model:gpt-4o", "a,b"]]) {
          const entry: Entry = { value, createdAt: 5, expiresAt: 20, staleAt: 10 };
          if (rawKey !== undefined) entry.rawKey = rawKey;
          if (tags !== undefined) entry.tags = tags;
          expect(decodeEntry(encodeEntry(entry))).toEqual(entry);
        }
      }
    }
  });

  it("refuses class instances and functions, naming where they are", () => {
    class Handle {}
    expect(() => encodeEntry({ value: { out: [new Handle()] }, createdAt: 0 })).toThrow(
      NotSerializableError,
    );
    expect(() => encodeEntry({ value: { out: [new Handle()] }, createdAt: 0 })).toThrow(
      /value\.out\[0\] \(instance of Handle\)/,
    );
    expect(() => encodeEntry({ value: { f: () => 1 }, createdAt: 0 })).toThrow(
      /value\.f \(function\)/,
    );
  });

  it("detects every single flipped bit and truncation, in both codecs", () => {
    const entries = [
      { value: { text: "model output", tensor: new Float32Array([1, 2, 3]) }, createdAt: 1 },
      { value: { text: "model output", tokens: [1, 2, 3] }, createdAt: 1, expiresAt: 9 },
    ];
    for (const entry of entries) {
      const bytes = encodeEntry(entry);
      for (let i = 0; i < bytes.length; i++) {
        for (let bit = 0; bit < 8; bit++) {
          const damaged = Buffer.from(bytes);
          damaged[i] = (damaged[i] as number) ^ (1 << bit);
          expect(() => decodeEntry(damaged), `byte ${i} bit ${bit}`).toThrow(CorruptEntryError);
        }
      }
      for (const cut of [0, 5, 12, 13, bytes.length - 1]) {
        expect(() => decodeEntry(bytes.subarray(0, cut))).toThrow(CorruptEntryError);
      }
    }
  });

  it("stores small values JSON carries exactly as JSON, and everything else through V8", () => {
    const codec = (value: unknown) => encodeEntry({ value, createdAt: 1 })[12];
    const shared = { n: 1 };
    // biome-ignore lint/suspicious/noSparseArray: a hole is the point
    const holey = [1, , 3];
    const extraKey = Object.assign([1, 2], { note: "kept" });
    for (const value of [
      "text",
      1.5,
      true,
      null,
      [1, "x", null, { a: [true] }],
      { a: { b: "c" } },
    ]) {
      expect(codec(value), JSON.stringify(value)).toBe(1);
    }
    const v8Only: unknown[] = [
      -0,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      undefined,
      1n,
      { a: undefined },
      [1, undefined],
      holey,
      extraKey,
      { a: shared, b: shared },
      new Date(0),
      new Map([[1, 2]]),
      "x".repeat(2000),
      Array.from({ length: 100 }, (_, i) => i),
    ];
    for (const [i, value] of v8Only.entries()) expect(codec(value), `v8Only[${i}]`).toBe(0);
    // And each comes back as it was: -0, the hole, the extra key, the shared object.
    const back = (value: unknown) => decodeEntry(encodeEntry({ value, createdAt: 1 })).value;
    expect(Object.is(back(-0), -0)).toBe(true);
    expect(1 in (back(holey) as unknown[])).toBe(false);
    expect((back(extraKey) as { note?: string }).note).toBe("kept");
    const pair = back({ a: shared, b: shared }) as { a: unknown; b: unknown };
    expect(pair.a).toBe(pair.b);
    // As V8 has always done here: a null-prototype object reads back as a plain one.
    const bare = back(Object.assign(Object.create(null), { a: 1 }));
    expect(Object.getPrototypeOf(bare)).toBe(Object.prototype);
    expect(bare).toEqual({ a: 1 });
    expect(decodeEntry(encodeEntry({ value: "v", createdAt: 1.5, rawKey: ["k", 1] }))).toEqual({
      value: "v",
      createdAt: 1.5,
      rawKey: ["k", 1],
    });
  });

  it("round-trips any value exactly, whichever codec it takes (property)", () => {
    const values = fc.anything({
      withBigInt: true,
      withDate: true,
      withMap: true,
      withSet: true,
      withTypedArray: true,
      withSparseArray: true,
      withObjectString: true,
      withBoxedValues: false,
    });
    fc.assert(
      fc.property(values, fc.option(fc.double(), { nil: undefined }), (value, expiresAt) => {
        const entry = { value, createdAt: 5, ...(expiresAt !== undefined && { expiresAt }) };
        const back = decodeEntry(encodeEntry(entry));
        expect(back.value).toStrictEqual(value);
        expect(Object.is(back.expiresAt, expiresAt)).toBe(true);
        if (typeof value === "object" && value !== null) {
          expect(Object.getPrototypeOf(back.value)).toBe(Object.getPrototypeOf(value));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("detects flipped bits and truncation in a large payload too", () => {
    const bytes = encodeEntry({ value: { blob: randomBytes(100_000), n: 1 }, createdAt: 1 });
    // Every bit of the header and of both ends, and a stride through the middle.
    const positions = new Set<number>();
    for (let i = 0; i < 64; i++) positions.add(i).add(bytes.length - 1 - i);
    for (let i = 64; i < bytes.length - 64; i += 997) positions.add(i);
    const half = bytes.length >>> 1;
    for (const i of positions) {
      for (let bit = 0; bit < 8; bit++) {
        const damaged = Buffer.from(bytes);
        damaged[i] = (damaged[i] as number) ^ (1 << bit);
        expect(() => decodeEntry(damaged), `byte ${i} bit ${bit}`).toThrow(CorruptEntryError);
      }
    }
    for (const cut of [12, half, bytes.length - 1]) {
      expect(() => decodeEntry(bytes.subarray(0, cut))).toThrow(CorruptEntryError);
    }
    expect(() => decodeEntry(Buffer.concat([bytes, Buffer.from([0])]))).toThrow(CorruptEntryError);
  });

  it("writes version 2 and still reads version 1 envelopes (files and exports made before it)", () => {
    expect(encodeEntry({ value: 1, createdAt: 1 })[3]).toBe(ENVELOPE_VERSION);
    expect(ENVELOPE_VERSION).toBe(2);
    // Bytes written by the version 1 code, kept verbatim.
    expect(decodeEntry(Buffer.from(V1_FIXTURE.base64, "base64"))).toEqual(V1_FIXTURE.entry);
    // The helper writes what version 1 wrote (it reproduces the verbatim bytes) ...
    expect(encodeEntryV1(V1_FIXTURE.entry).toString("base64")).toBe(V1_FIXTURE.base64);
    // ... so its large form (SHA-256 beyond 16 KiB) stands for version 1's large entries.
    const large = { value: { blob: new Uint8Array(20_000).fill(9), text: "v1" }, createdAt: 7 };
    const v1 = encodeEntryV1(large);
    expect(decodeEntry(v1)).toEqual(large);
    const damaged = Buffer.from(v1);
    damaged[10_000] = (damaged[10_000] as number) ^ 1;
    expect(() => decodeEntry(damaged)).toThrow(CorruptEntryError);
  });

  it("reads an unknown envelope version as corrupt, never as a value", () => {
    const bytes = encodeEntry({ value: "x", createdAt: 1 });
    const future = Buffer.from(bytes);
    future[3] = 3;
    expect(() => decodeEntry(future)).toThrow(/envelope version 3/);
    expect(decodeOrUndefined(future)).toBeUndefined();
    expect(decodeOrUndefined(bytes)?.value).toBe("x");
  });

  it("computes the same CRC-32 as zlib on Node releases without zlib.crc32", () => {
    for (const length of [0, 1, 3, 16, 100, 1000, 65_537]) {
      const bytes = randomBytes(length);
      expect(crc32InJs(bytes)).toBe(zlib.crc32(bytes));
    }
  });
});
