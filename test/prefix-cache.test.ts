import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PrefixCache } from "../src/index.js";

const tokens = (...ids: number[]) => ids;

describe("PrefixCache lookups", () => {
  it("finds the longest stored prefix of a prompt, by token", () => {
    const cache = new PrefixCache<string>({ capacityBytes: "1mb" });
    cache.set(tokens(1, 2), "two");
    cache.set(tokens(1, 2, 3, 4), "four");
    cache.set(tokens(1, 9), "other branch");
    expect(cache.longestPrefix(tokens(1, 2, 3, 4, 5, 6))).toMatchObject({
      length: 4,
      value: "four",
    });
    expect(cache.longestPrefix(tokens(1, 2, 3))).toMatchObject({ length: 2, value: "two" });
    expect(cache.longestPrefix(tokens(2, 1))).toBeUndefined();
    expect(cache.get(tokens(1, 2, 3, 4))).toBe("four");
    expect(cache.get(tokens(1, 2, 3))).toBeUndefined();
  });

  it("can leave the last tokens out (maxLength), so at least one token is evaluated", () => {
    const cache = new PrefixCache<string>({ capacityBytes: "1mb" });
    cache.set(tokens(1, 2, 3), "full");
    cache.set(tokens(1, 2), "shorter");
    expect(cache.longestPrefix(tokens(1, 2, 3), { maxLength: 2 })).toMatchObject({
      length: 2,
      value: "shorter",
    });
  });

  it("works on strings and on Uint32Array token ids", () => {
    const cache = new PrefixCache<number>({ capacityBytes: "1mb" });
    cache.set("You are a helpful assistant.", 1);
    cache.set(new Uint32Array([7, 8, 9]), 2);
    expect(cache.longestPrefix("You are a helpful assistant. Hi!")?.value).toBe(1);
    expect(cache.longestPrefix(new Uint32Array([7, 8, 9, 10]))?.value).toBe(2);
  });

  it("keeps namespaces apart: a state from another model is never found", () => {
    const cache = new PrefixCache<string>({ capacityBytes: "1mb" });
    cache.set(tokens(1, 2, 3), "model A state", { namespace: "model-a" });
    expect(cache.longestPrefix(tokens(1, 2, 3, 4), { namespace: "model-b" })).toBeUndefined();
    expect(cache.longestPrefix(tokens(1, 2, 3, 4), { namespace: "model-a" })?.value).toBe(
      "model A state",
    );
  });

  it("finds the entry sharing the most tokens, also a longer or diverging one", () => {
    const cache = new PrefixCache<string>({ capacityBytes: "1mb" });
    cache.set(tokens(1, 2, 3, 4, 5, 6, 7), "user one's whole conversation");
    cache.set(tokens(1, 2, 3, 4, 8), "user two, shorter");
    cache.set(tokens(1, 2), "the system prompt alone");
    // A third user shares the system prompt and more with both conversations; the shorter loads faster.
    expect(cache.longestCommonPrefix(tokens(1, 2, 3, 4, 9))).toMatchObject({
      length: 4,
      value: "user two, shorter",
    });
    expect(cache.longestPrefix(tokens(1, 2, 3, 4, 9))?.length).toBe(2);
    // An exact repeat of a stored prompt, and a prompt shorter than a stored conversation.
    expect(cache.longestCommonPrefix(tokens(1, 2, 3, 4, 8))?.length).toBe(5);
    expect(cache.longestCommonPrefix(tokens(1, 2, 3, 4, 5))?.value).toBe(
      "user one's whole conversation",
    );
    expect(cache.longestCommonPrefix(tokens(1, 2, 3, 4, 5), { maxLength: 3 })).toMatchObject({
      length: 3,
      value: "user two, shorter",
    });
    expect(cache.longestCommonPrefix(tokens(9))).toBeUndefined();
    expect(cache.longestCommonPrefix(tokens(1), { namespace: "other" })).toBeUndefined();
  });

  it("deletes the stored strict prefixes of a sequence, but not pinned ones", () => {
    const cache = new PrefixCache<string>({ capacityBytes: "1mb" });
    cache.set(tokens(1, 2), "turn 1");
    cache.set(tokens(1, 2, 3, 4), "turn 2");
    cache.set(tokens(1, 5), "another conversation");
    const release = cache.acquire(tokens(1, 2));
    cache.set(tokens(1, 2, 3, 4, 5, 6), "turn 3");
    expect(cache.deletePrefixes(tokens(1, 2, 3, 4, 5, 6))).toBe(1);
    expect([...cache.entries()].map((e) => e.value).sort()).toEqual([
      "another conversation",
      "turn 1",
      "turn 3",
    ]);
    release?.();
    expect(cache.deletePrefixes(tokens(1, 2, 3, 4, 5, 6))).toBe(1);
    expect(cache.get(tokens(1, 2, 3, 4, 5, 6))).toBe("turn 3");
  });

  it("agrees with a linear scan (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 8 }), { maxLength: 30 }),
        fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 10 }),
        (keys, query) => {
          const cache = new PrefixCache<string>({ capacityBytes: "10mb" });
          for (const key of keys) cache.set(key, key.join(","));
          let best: number[] | undefined;
          for (const key of keys) {
            if (
              key.length <= query.length &&
              key.every((t, i) => t === query[i]) &&
              (best === undefined || key.length > best.length)
            )
              best = key;
          }
          const hit = cache.longestPrefix(query);
          expect(hit?.length).toBe(best?.length);
          if (best !== undefined) expect(hit?.value).toBe(best.join(","));
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe("PrefixCache capacity", () => {
  const entry = 256 + 4 * 2; // bookkeeping + two tokens, with a value of 0 bytes

  it("accounts bytes exactly: value bytes given, plus tokens and bookkeeping", () => {
    const cache = new PrefixCache<string>({ capacityBytes: "1mb" });
    cache.set(tokens(1, 2), "a", { bytes: 1000 });
    expect(cache.bytes).toBe(1000 + entry);
    cache.set(tokens(1, 2), "b", { bytes: 10 });
    expect(cache.bytes).toBe(10 + entry);
    cache.delete(tokens(1, 2));
    expect(cache.bytes).toBe(0);
    expect(cache.size).toBe(0);
  });

  it("evicts least recently used leaves first, keeping shared prefixes", () => {
    const cache = new PrefixCache<string>({ capacityBytes: 3 * (1000 + entry) + 500 });
    cache.set(tokens(1, 2), "shared prefix", { bytes: 1000 - 8 });
    cache.set(tokens(1, 2, 3), "leaf a", { bytes: 1000 - 12 });
    cache.set(tokens(1, 2, 4), "leaf b", { bytes: 1000 - 12 });
    cache.longestPrefix(tokens(1, 2, 3, 9)); // leaf a used
    cache.set(tokens(5, 6), "new", { bytes: 1000 - 8 });
    expect(cache.get(tokens(1, 2))).toBe("shared prefix"); // oldest, but a prefix of others: kept
    expect(cache.get(tokens(1, 2, 4))).toBeUndefined(); // least recently used leaf: evicted
    expect(cache.get(tokens(1, 2, 3))).toBe("leaf a");
    expect(cache.bytes).toBeLessThanOrEqual(cache.capacityBytes);
  });

  it("tells whether an entry would fit without evicting anything", () => {
    const cache = new PrefixCache<string>({ capacityBytes: 2 * (1000 + entry) });
    expect(cache.fits(tokens(1, 2), 1000)).toBe(true);
    cache.set(tokens(1, 2), "a", { bytes: 1000 });
    expect(cache.fits(tokens(3, 4), 1000)).toBe(true);
    expect(cache.fits(tokens(3, 4), 1001)).toBe(false);
  });

  it("refuses an entry larger than the capacity instead of flushing the cache", () => {
    const cache = new PrefixCache<string>({ capacityBytes: "10kb" });
    cache.set(tokens(1), "small", { bytes: 100 });
    const refused: string[] = [];
    cache.on("evict", (e) => refused.push(`${e.value}:${e.reason}`));
    expect(cache.set(tokens(2), "huge", { bytes: 50_000 })).toBe(false);
    expect(cache.get(tokens(1))).toBe("small");
    expect(refused).toEqual(["huge:refused"]);
  });

  it("never evicts a pinned entry; refuses a newcomer when everything else is pinned", () => {
    const cache = new PrefixCache<string>({ capacityBytes: 2 * (1000 + 256 + 4) });
    cache.set(tokens(1), "in use", { bytes: 1000 });
    const release = cache.acquire(tokens(1));
    cache.set(tokens(2), "idle", { bytes: 1000 });
    cache.set(tokens(3), "newer", { bytes: 1000 });
    expect(cache.get(tokens(1))).toBe("in use");
    expect(cache.get(tokens(2))).toBeUndefined();
    const second = cache.acquire(tokens(3));
    expect(cache.set(tokens(4), "no room", { bytes: 1000 })).toBe(false);
    expect(cache.get(tokens(4))).toBeUndefined();
    release?.();
    second?.();
    expect(cache.set(tokens(4), "room now", { bytes: 1000 })).toBe(true);
  });

  it("holds the byte bound under random use (property)", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            key: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 5 }),
            bytes: fc.integer({ min: 0, max: 3000 }),
            pin: fc.boolean(),
          }),
          { maxLength: 60 },
        ),
        (ops) => {
          const cache = new PrefixCache<number>({ capacityBytes: 8000 });
          const releases: (() => void)[] = [];
          for (const [i, op] of ops.entries()) {
            cache.set(op.key, i, { bytes: op.bytes });
            expect(cache.bytes).toBeLessThanOrEqual(cache.capacityBytes);
            if (op.pin) {
              const release = cache.acquire(op.key);
              if (release !== undefined) releases.push(release);
            }
            if (releases.length > 2) releases.shift()?.();
          }
          let total = 0;
          for (const e of cache.entries()) total += e.bytes;
          expect(total).toBe(cache.bytes);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("needs a capacity", () => {
    expect(() => new PrefixCache({} as never)).toThrow(/needs `capacityBytes`/);
    expect(() => new PrefixCache({ capacityBytes: "lots" })).toThrow(/`capacityBytes`/);
  });
});
