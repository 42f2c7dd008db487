/**
 * A child process for the cross-process purge test: a TieredStore over RedisStore that reads the
 * keys it is given (so its memory tier holds them), prints `ready`, then answers each `check`
 * line on stdin with the keys its memory tier still holds (JSON), until stdin ends.
 */
import { createInterface } from "node:readline";
import { TieredStore } from "../../src/index.js";
import { RedisStore } from "../../src/redis.js";

const [url, prefix, ...keys] = process.argv.slice(2);
if (url === undefined || prefix === undefined) throw new Error("usage: <url> <prefix> <keys…>");
const scope = { namespace: "a" };
const store = new TieredStore({ store: new RedisStore({ url, prefix, commandTimeoutMs: 2000 }) });
await store.ready();
for (const key of keys) await store.get(key, scope);
process.stdout.write("ready\n");
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() !== "check") continue;
  const held = keys.filter((key) => store.memory.peekSync(key, scope) !== undefined);
  process.stdout.write(`${JSON.stringify(held)}\n`);
}
await store.close();
