import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RadixTree } from "../src/prefix/radix-tree.js";

/** The scan Gradio's KV demo does: the reference the tree must agree with. */
function scan(
  keys: Map<string, number>,
  query: string,
): { length: number; value: number } | undefined {
  let best: { length: number; value: number } | undefined;
  for (const [key, value] of keys) {
    if (query.startsWith(key) && (best === undefined || key.length > best.length))
      best = { length: key.length, value };
  }
  return best;
}

/** The reference for longestCommonPrefix: the most shared leading units, then the shortest key. */
function scanCommon(
  keys: Map<string, number>,
  query: string,
): { length: number; key: string } | undefined {
  let best: { length: number; key: string } | undefined;
  for (const key of keys.keys()) {
    let shared = 0;
    while (shared < key.length && shared < query.length && key[shared] === query[shared]) shared++;
    if (shared === 0) continue;
    if (
      best === undefined ||
      shared > best.length ||
      (shared === best.length && key.length < best.key.length)
    )
      best = { length: shared, key };
  }
  return best;
}

describe("RadixTree", () => {
  it("agrees with a linear scan under random inserts, deletes and lookups (property)", () => {
    const alphabet = fc.constantFrom(..."abc");
    const word = fc.string({ unit: alphabet, maxLength: 8 });
    const op = fc.oneof(
      fc.record({ kind: fc.constant("set" as const), key: word, value: fc.integer() }),
      fc.record({ kind: fc.constant("delete" as const), key: word }),
      fc.record({ kind: fc.constant("query" as const), key: word }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const tree = new RadixTree<number>();
        const model = new Map<string, number>();
        for (const o of ops) {
          if (o.kind === "set") {
            tree.set(o.key, o.value);
            model.set(o.key, o.value);
          } else if (o.kind === "delete") {
            expect(tree.delete(o.key)).toBe(model.delete(o.key));
          } else {
            expect(tree.longestPrefix(o.key)).toEqual(scan(model, o.key));
            expect(tree.get(o.key)).toBe(model.get(o.key));
          }
          expect(tree.size).toBe(model.size);
        }
      }),
      { numRuns: 500 },
    );
  });

  it("finds the stored sequence sharing the most with a query, the shortest of equals (property)", () => {
    const alphabet = fc.constantFrom(..."abc");
    const word = fc.string({ unit: alphabet, maxLength: 8 });
    const op = fc.oneof(
      fc.record({ kind: fc.constant("set" as const), key: word }),
      fc.record({ kind: fc.constant("delete" as const), key: word }),
      fc.record({ kind: fc.constant("query" as const), key: word }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const tree = new RadixTree<string>();
        const model = new Map<string, number>();
        for (const o of ops) {
          if (o.kind === "set") {
            tree.set(o.key, o.key);
            model.set(o.key, 0);
          } else if (o.kind === "delete") {
            tree.delete(o.key);
            model.delete(o.key);
          } else {
            const expected = scanCommon(model, o.key);
            const found = tree.longestCommonPrefix(o.key);
            expect(found?.length).toBe(expected?.length);
            // Ties between keys of the same length may go either way; the length may not.
            expect(found?.value.length).toBe(expected?.key.length);
            if (found !== undefined) {
              expect(model.has(found.value)).toBe(true);
              expect(found.value.slice(0, found.length)).toBe(o.key.slice(0, found.length));
            }
          }
        }
      }),
      { numRuns: 1000 },
    );
  });

  it("finds longer and diverging sequences, not only prefixes", () => {
    const tree = new RadixTree<string>();
    tree.set([1, 2, 3, 4, 5, 6], "user one: system prompt, question, reply");
    tree.set([1, 2, 3, 9], "shorter, diverging later");
    expect(tree.longestPrefix([1, 2, 3, 7])).toBeUndefined();
    expect(tree.longestCommonPrefix([1, 2, 3, 7])).toEqual({
      length: 3,
      value: "shorter, diverging later",
    });
    expect(tree.longestCommonPrefix([1, 2, 3, 4])).toEqual({
      length: 4,
      value: "user one: system prompt, question, reply",
    });
    expect(tree.longestCommonPrefix([2, 2])).toBeUndefined();
    tree.delete([1, 2, 3, 9]);
    expect(tree.longestCommonPrefix([1, 2, 3, 7])?.value).toBe(
      "user one: system prompt, question, reply",
    );
  });

  it("lists every stored prefix, longest first", () => {
    const tree = new RadixTree<string>();
    for (const key of ["", "a", "abc", "abcd", "abx"]) tree.set(key, key);
    expect(tree.prefixes("abcde").map((m) => m.value)).toEqual(["abcd", "abc", "a", ""]);
  });

  it("works over token ids", () => {
    const tree = new RadixTree<string>();
    tree.set([1, 2, 3], "three");
    tree.set(new Uint32Array([1, 2]), "two");
    expect(tree.longestPrefix([1, 2, 3, 4])).toEqual({ length: 3, value: "three" });
    expect(tree.longestPrefix(new Uint32Array([1, 2, 9]))).toEqual({ length: 2, value: "two" });
    expect(tree.longestPrefix([2])).toBeUndefined();
  });
});
