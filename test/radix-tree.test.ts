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
