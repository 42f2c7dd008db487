import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import keyvTestSuite, { keyvIteratorTests } from "@keyv/test-suite";
import Keyv from "keyv";
import * as vitest from "vitest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cache, fromKeyv, MemoryStore, toKeyv } from "../src/index.js";
import { RedisStore } from "../src/redis.js";
import { SqliteStore } from "../src/sqlite.js";
import { RedisServer } from "./helpers/redis-server.js";
import { runStoreContract } from "./store-contract.js";

const dir = mkdtempSync(join(tmpdir(), "infercache-keyv-"));
let server: RedisServer;
beforeAll(async () => {
  server = await RedisServer.start();
});
afterAll(async () => {
  await server?.kill();
});

// The peer's own suite, run against our stores through toKeyv. One store per file, as Keyv's
// adapters share one backend across the suite's instances.
describe("@keyv/test-suite on toKeyv(MemoryStore)", () => {
  const store = new MemoryStore({ maxSize: 0 });
  keyvTestSuite(vitest, Keyv, () => toKeyv(store));
});

describe("@keyv/test-suite on toKeyv(SqliteStore)", () => {
  const store = new SqliteStore({ path: join(dir, "keyv.db") });
  keyvTestSuite(vitest, Keyv, () => toKeyv(store));
  keyvIteratorTests(vitest, Keyv, () => toKeyv(store));
});

describe("@keyv/test-suite on toKeyv(RedisStore)", () => {
  let store: RedisStore | undefined;
  const lazy = () => {
    store ??= new RedisStore({ url: server.url, prefix: "keyv-suite:", commandTimeoutMs: 2000 });
    return toKeyv(store);
  };
  keyvTestSuite(vitest, Keyv, lazy);
  keyvIteratorTests(vitest, Keyv, lazy);
});

// And the other way: Keyv stores behind infercache, through our own contract.
runStoreContract("fromKeyv(new Keyv())", () => fromKeyv(new Keyv()), { lruOrder: false });

describe("fromKeyv", () => {
  it("backs a cached function with a Keyv store", async () => {
    let calls = 0;
    const store = fromKeyv(new Keyv());
    const fn = cache(async (x: number) => ({ x, tensor: new Float32Array([x]), run: ++calls }), {
      store,
      namespace: "k",
    });
    await fn(2);
    const again = await fn(2);
    expect(again.run).toBe(1);
    expect(again.tensor).toBeInstanceOf(Float32Array);
  });

  it("rejects something that is not a Keyv", () => {
    expect(() => fromKeyv({} as never)).toThrow(/takes a Keyv instance/);
  });
});
