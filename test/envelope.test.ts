import { describe, expect, it } from "vitest";
import { CorruptEntryError, NotSerializableError } from "../src/sqlite.js";
import { decodeEntry, encodeEntry } from "../src/store/envelope.js";

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

  it("detects every single flipped bit and truncation", () => {
    const bytes = encodeEntry({
      value: { text: "model output", tensor: new Float32Array([1, 2, 3]) },
      createdAt: 1,
    });
    for (let i = 0; i < bytes.length; i++) {
      for (const bit of [0x01, 0x80]) {
        const damaged = Buffer.from(bytes);
        damaged[i] = (damaged[i] as number) ^ bit;
        expect(() => decodeEntry(damaged)).toThrow(CorruptEntryError);
      }
    }
    for (const cut of [0, 5, bytes.length - 1]) {
      expect(() => decodeEntry(bytes.subarray(0, cut))).toThrow(CorruptEntryError);
    }
  });
});
