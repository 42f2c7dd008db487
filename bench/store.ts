/** MemoryStore get/set with string keys against lru-cache, same entry count bound. */
import { LRUCache } from "lru-cache";
import { MemoryStore } from "../src/index.js";
import { measureSync, type Result } from "./measure.js";

const N = 10_000;
const keys = Array.from({ length: N }, (_, i) => `key:${i}:${"k".repeat(20)}`);

export function storeOps(): Result[] {
  const ours = new MemoryStore({ maxSize: N });
  const theirs = new LRUCache<string, number>({ max: N });
  const scope = { namespace: "bench" };
  for (const [i, key] of keys.entries()) {
    ours.setSync(key, scope, { value: i, createdAt: 0 });
    theirs.set(key, i);
  }
  const entry = { value: 1, createdAt: 0 };
  // Sets go to a key space twice the bound, so half of them evict.
  const evicting = Array.from({ length: 2 * N }, (_, i) => `new:${i}:${"k".repeat(20)}`);
  return [
    measureSync("MemoryStore.getSync (hit)", (i) => ours.getSync(keys[i % N] as string, scope)),
    measureSync("lru-cache get (hit)", (i) => theirs.get(keys[i % N] as string)),
    measureSync("MemoryStore.setSync (replace)", (i) =>
      ours.setSync(keys[i % N] as string, scope, entry),
    ),
    measureSync("lru-cache set (replace)", (i) => theirs.set(keys[i % N] as string, 1)),
    measureSync("MemoryStore.setSync (insert + evict)", (i) =>
      ours.setSync(evicting[i % (2 * N)] as string, scope, entry),
    ),
    measureSync("lru-cache set (insert + evict)", (i) =>
      theirs.set(evicting[i % (2 * N)] as string, 1),
    ),
  ];
}
