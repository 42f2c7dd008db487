import { describe, expect, it } from "vitest";
import { parseDuration } from "../src/base/duration.js";
import { parseSize } from "../src/base/size.js";

describe("size strings", () => {
  it.each([
    ["512mb", 512 * 1024 ** 2],
    ["2gb", 2 * 1024 ** 3],
    ["1.5GiB", 1.5 * 1024 ** 3],
    ["100kb", 100 * 1024],
    ["64 MB", 64 * 1024 ** 2],
    ["1kb", 1024],
    ["100b", 100],
    ["512", 512],
    ["1K", 1024],
    [".5mb", 512 * 1024],
  ])("parses %s", (text, bytes) => {
    expect(parseSize(text, "maxMemory")).toBe(bytes);
  });

  it("takes plain numbers of bytes", () => {
    expect(parseSize(4096, "maxMemory")).toBe(4096);
    expect(parseSize(0, "maxMemory")).toBe(0);
  });

  it.each(["", "mb", "1.5.5gb", "12 parsecs", "-1kb", "1e3"])(
    "rejects %j naming the option",
    (text) => {
      expect(() => parseSize(text, "maxMemory")).toThrow(
        /`maxMemory`.*"100kb", "512mb", "2gb" or "1.5GiB"/,
      );
    },
  );

  it("rejects negative and non-finite numbers", () => {
    expect(() => parseSize(-1, "maxMemory")).toThrow("non-negative");
    expect(() => parseSize(Number.NaN, "maxMemory")).toThrow("non-negative");
    expect(() => parseSize(Number.POSITIVE_INFINITY, "maxMemory")).toThrow("non-negative");
  });
});

describe("duration strings", () => {
  it.each([
    ["10m", 600_000],
    ["1h30m", 5_400_000],
    ["250ms", 250],
    ["2s", 2000],
    ["1.5h", 5_400_000],
    ["1d", 86_400_000],
    ["1h 30m", 5_400_000],
  ])("parses %s", (text, ms) => {
    expect(parseDuration(text, "ttl")).toBe(ms);
  });

  it("takes plain milliseconds", () => {
    expect(parseDuration(1500, "ttl")).toBe(1500);
  });

  it.each(["", "10", "ten minutes", "10mins", "m10", "-5s"])(
    "rejects %j naming the option",
    (text) => {
      expect(() => parseDuration(text, "ttl")).toThrow(
        /`ttl`.*"250ms", "10s", "10m", "1h30m" or "2d"/,
      );
    },
  );
});
