/**
 * Encryption at rest (`SealedStore`): what a cached call leaves in a SQLite file (and its WAL) and
 * in a Redis dump holds neither the prompt, the answer, the raw key, the session nor a tag in any
 * form, and not the canonical key either (which would confirm a guessed prompt); hits still work;
 * a rotated key ring still opens what older keys sealed while new writes use the new key; a
 * flipped byte, or a sealed value moved under another key, is a miss and never a wrong value; a
 * wrong key is refused by `check()` with the key ids, never the keys.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cache, cache, runInSession, TieredStore } from "../src/index.js";
import { RedisStore } from "../src/redis.js";
import { SqliteStore } from "../src/sqlite.js";
import { EncryptionKeyError, parseEncryptionKeys, SealedStore } from "../src/store/sealed.js";
import type { Entry, PurgeFilter, Scope, Store } from "../src/store/store.js";
import { findMarker } from "./helpers/marker-search.js";
import { RedisServer } from "./helpers/redis-server.js";
import { until } from "./helpers/until.js";

const dir = mkdtempSync(join(tmpdir(), "infercache-sealed-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const K1 = randomBytes(32).toString("base64");
const K2 = randomBytes(32).toString("base64");
const PROMPT = "PROMPT-MARKER-4c1f9e what is my diagnosis";
const ANSWER = "ANSWER-MARKER-8d2b07 you have";
const RAW_KEY = "RAWKEY-MARKER-0a7c55 for alice";
const SESSION = "SESSION-MARKER-alice@example.com";
const TAG = "TAG-MARKER-patient-1234";
const MARKERS = [PROMPT, ANSWER, RAW_KEY, SESSION, TAG];

/** The bytes of a SQLite store at rest: the database file and its WAL. */
function sqliteBytes(path: string): Buffer {
  const parts = [readFileSync(path)];
  if (existsSync(`${path}-wal`)) parts.push(readFileSync(`${path}-wal`));
  return Buffer.concat(parts);
}

function found(bytes: Buffer, markers: readonly string[]): string[] {
  return markers.flatMap((marker) =>
    findMarker(bytes, marker).map((form) => `${marker} as ${form}`),
  );
}

/** Writes everything a cache writes: a cached call, a manual entry, a session's, a tag. */
async function writeMarkers(
  store: Store,
): Promise<{ calls: () => number; hits: () => Promise<void>; canonicalKey: string }> {
  let calls = 0;
  const ask = cache(
    async (prompt: string) => {
      calls++;
      return { text: `${ANSWER} for ${prompt}` };
    },
    { store, namespace: "ask" },
  );
  await ask(PROMPT);
  const manual = new Cache<{ answer: string }>({ store, namespace: "manual", perSession: true });
  await manual.set(RAW_KEY, { answer: ANSWER });
  await runInSession(SESSION, () => manual.set(RAW_KEY, { answer: `${ANSWER} in session` }));
  await store.set(
    "tagged",
    { namespace: "tags" },
    { value: ANSWER, createdAt: Date.now(), tags: [TAG] },
  );
  return {
    canonicalKey: ask.cache.key(PROMPT),
    calls: () => calls,
    hits: async () => {
      expect(await ask(PROMPT)).toEqual({ text: `${ANSWER} for ${PROMPT}` });
      expect(calls).toBe(1);
      expect(await manual.get(RAW_KEY)).toEqual({ answer: ANSWER });
      expect(await runInSession(SESSION, () => manual.get(RAW_KEY))).toEqual({
        answer: `${ANSWER} in session`,
      });
      const keys: unknown[] = [];
      for await (const key of manual.keys()) keys.push(key);
      expect(keys).toEqual([RAW_KEY]);
      expect((await store.get("tagged", { namespace: "tags" }))?.tags).toEqual([TAG]);
    },
  };
}

describe("a SQLite file sealed at rest", () => {
  it("a plain store holds every marker (the search finds what is there)", async () => {
    const path = join(dir, "plain.db");
    const store = new SqliteStore({ path });
    await writeMarkers(store);
    const bytes = sqliteBytes(path);
    await store.close();
    for (const marker of MARKERS) expect(findMarker(bytes, marker), marker).not.toEqual([]);
  });

  it("holds no marker, nor the canonical key, in the file or its WAL; hits still work", async () => {
    const path = join(dir, "sealed.db");
    const store = new SealedStore(new SqliteStore({ path }), { keys: K1 });
    const written = await writeMarkers(store);
    await written.hits();
    const canonical = written.canonicalKey;
    expect(canonical).toMatch(/^[0-9a-f]{64}$/);
    const open = sqliteBytes(path);
    expect(found(open, MARKERS)).toEqual([]);
    expect(open.includes(Buffer.from(canonical))).toBe(false);
    await store.close();
    // Closed: checkpointed into the file.
    expect(found(sqliteBytes(path), MARKERS)).toEqual([]);
    const again = new SealedStore(new SqliteStore({ path }), { keys: K1 });
    const ask = cache(async (_prompt: string) => ({ text: "recomputed" }), {
      store: again,
      namespace: "ask",
    });
    expect(await ask(PROMPT)).toEqual({ text: `${ANSWER} for ${PROMPT}` });
    await again.close();
  });

  it("behind a TieredStore: the memory tier serves, the file stays sealed", async () => {
    const path = join(dir, "tiered.db");
    const store = new TieredStore({
      store: new SealedStore(new SqliteStore({ path }), { keys: K1 }),
    });
    const written = await writeMarkers(store);
    await written.hits();
    expect(found(sqliteBytes(path), MARKERS)).toEqual([]);
    await store.close();
  });
});

describe("a Redis dump sealed at rest", () => {
  let redis: RedisServer;
  beforeAll(async () => {
    // Uncompressed dump strings: the search would miss an LZF-compressed marker.
    redis = await RedisServer.start(["--rdbcompression", "no"]);
  });
  afterAll(async () => redis?.kill());

  function dump(name: string): Buffer {
    const file = join(dir, name);
    execFileSync("redis-cli", ["-h", "127.0.0.1", "-p", String(redis.port), "--rdb", file], {
      stdio: "ignore",
    });
    return readFileSync(file);
  }

  it("holds no marker (a plain store's control marker is found in the same dump)", async () => {
    const plain = new RedisStore({ url: redis.url });
    const control = "CONTROL-MARKER-plain-redis-entry";
    await plain.set("control", { namespace: "control" }, { value: control, createdAt: Date.now() });
    const store = new SealedStore(new RedisStore({ url: redis.url }), { keys: K1 });
    const written = await writeMarkers(store);
    await written.hits();
    const bytes = dump("sealed.rdb");
    expect(findMarker(bytes, control)).not.toEqual([]);
    expect(found(bytes, MARKERS)).toEqual([]);
    expect(bytes.includes(Buffer.from(written.canonicalKey))).toBe(false);
    await store.close();
    await plain.close();
  });
});

describe("invalidations between processes through a sealed Redis store", () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(async () => redis?.kill());

  it("a delete in one process drops the other's memory copy (keys sealed in the message)", async () => {
    const tier = () =>
      new TieredStore({ store: new SealedStore(new RedisStore({ url: redis.url }), { keys: K1 }) });
    const [a, b] = [tier(), tier()];
    await Promise.all([a.ready(), b.ready()]);
    const scope = { namespace: "inv", session: SESSION };
    await a.set("k", scope, { value: "v1", createdAt: 1 });
    expect((await b.get("k", scope))?.value).toBe("v1"); // now in b's memory tier
    await a.delete("k", scope);
    await until(() => b.memory.getSync("k", scope) === undefined, "b to drop its copy");
    expect(await b.get("k", scope)).toBeUndefined();
    // A process with other keys cannot read the message: it drops the namespace instead.
    const other = new TieredStore({
      store: new SealedStore(new RedisStore({ url: redis.url }), { keys: K2 }),
    });
    await other.ready();
    other.memory.setSync("x", { namespace: "inv" }, { value: "kept?", createdAt: 1 });
    await a.set("k", scope, { value: "v2", createdAt: 2 });
    await until(
      () => other.memory.getSync("x", { namespace: "inv" }) === undefined,
      "the other ring to drop the namespace",
    );
    await Promise.all([a.close(), b.close(), other.close()]);
  });
});

/** The key id a stored (inner) entry was sealed with, read from its header. */
function keyIdOf(entry: Entry): string {
  const bytes = entry.value as Buffer;
  return bytes.toString("utf8", 5, 5 + (bytes[4] as number));
}

async function innerEntries(store: Store, scope: Scope): Promise<Map<string, Entry>> {
  const out = new Map<string, Entry>();
  for await (const [key, entry] of store.entries(scope)) out.set(key, entry);
  return out;
}

describe("key rotation", () => {
  it("older keys still open what they sealed; new writes use the newest key", async () => {
    const inner = new SqliteStore({ path: join(dir, "rotation.db") });
    const scope = { namespace: "r" };
    const first = new SealedStore(inner, { keys: `k1:${K1}` });
    await first.set("old", scope, { value: "old answer", createdAt: 1 });

    const rotated = new SealedStore(inner, { keys: `k2:${K2},k1:${K1}` });
    expect(rotated.currentKeyId).toBe("k2");
    expect((await rotated.get("old", scope))?.value).toBe("old answer");
    await rotated.set("new", scope, { value: "new answer", createdAt: 2 });
    const ids = [...(await innerEntries(inner, scope)).values()].map(keyIdOf).sort();
    expect(ids).toEqual(["k1", "k2"]);

    // The old key retired: what it sealed is a miss (and left for whoever still holds it).
    const retired = new SealedStore(inner, { keys: `k2:${K2}` });
    expect(await retired.get("old", scope)).toBeUndefined();
    expect((await retired.get("new", scope))?.value).toBe("new answer");
    expect(await inner.size(scope)).toBe(2);

    // Rewriting an old entry seals it with the new key and drops the old copy.
    await rotated.set("old", scope, { value: "old answer, again", createdAt: 3 });
    expect([...(await innerEntries(inner, scope)).values()].map(keyIdOf)).toEqual(["k2", "k2"]);
    expect((await retired.get("old", scope))?.value).toBe("old answer, again");
    await inner.close();
  });

  it("keys without an id get a fingerprint id, so `NEW,OLD` rotates too", () => {
    const [a, b] = parseEncryptionKeys(`${K2},${K1}`);
    expect(a?.id).toMatch(/^[0-9a-f]{8}$/);
    expect(a?.id).not.toBe(b?.id);
    expect(parseEncryptionKeys(K1)[0]?.id).toBe(b?.id);
  });
});

describe("tampering reads as corrupt: a miss, never a wrong value", () => {
  it("a flipped byte in a sealed value: the call computes again and the entry is dropped", async () => {
    const inner = new SqliteStore({ path: join(dir, "tamper.db") });
    const store = new SealedStore(inner, { keys: K1 });
    let calls = 0;
    const ask = cache(
      async (prompt: string) => {
        calls++;
        return `answer ${calls} to ${prompt}`;
      },
      { store, namespace: "t" },
    );
    expect(await ask("q")).toBe("answer 1 to q");
    const [[innerKey, stored]] = [...(await innerEntries(inner, { namespace: "t" }))] as [
      [string, Entry],
    ];
    const bytes = Buffer.from(stored.value as Buffer);
    bytes[bytes.length - 20] = (bytes[bytes.length - 20] as number) ^ 1; // in the ciphertext
    // Written back through the store: its own checksum is valid, only the seal can tell.
    await inner.set(innerKey, { namespace: "t" }, { ...stored, value: bytes });
    const evictions: string[] = [];
    store.subscribe((event) => evictions.push(event.reason));
    expect(await ask("q")).toBe("answer 2 to q");
    expect(evictions).toContain("corrupt");
    expect(await ask("q")).toBe("answer 2 to q");
    await inner.close();
  });

  it("a sealed value moved under another key does not open there", async () => {
    const inner = new SqliteStore({ path: join(dir, "moved.db") });
    const store = new SealedStore(inner, { keys: K1 });
    const scope = { namespace: "m" };
    await store.set("alice", scope, { value: "alice's answer", createdAt: 1 });
    await store.set("bob", scope, { value: "bob's answer", createdAt: 1 });
    const stored = await innerEntries(inner, scope);
    const [aliceKey, bobKey] = [...stored.keys()] as [string, string];
    await inner.set(bobKey, scope, stored.get(aliceKey) as Entry);
    expect(await store.get("bob", scope)).toBeUndefined();
    expect((await store.get("alice", scope))?.value).toBe("alice's answer");
    await inner.close();
  });
});

describe("a wrong key is refused clearly", () => {
  it("check() names the key ids, never a key; the right ring passes", async () => {
    const inner = new SqliteStore({ path: join(dir, "wrong.db") });
    const right = new SealedStore(inner, { keys: `k1:${K1}` });
    await right.check();
    await right.set("x", { namespace: "w" }, { value: "secret", createdAt: 1 });

    const sameIdOtherKey = new SealedStore(inner, { keys: `k1:${K2}` });
    await expect(sameIdOtherKey.check()).rejects.toThrow(EncryptionKeyError);
    await expect(sameIdOtherKey.check()).rejects.toThrow(
      /key id `k1` were sealed with another key/,
    );
    expect(await sameIdOtherKey.get("x", { namespace: "w" })).toBeUndefined();

    const otherId = new SealedStore(inner, { keys: `k9:${K2}` });
    const error = await otherId.check().then(
      () => undefined,
      (caught: Error) => caught,
    );
    expect(error?.message).toMatch(/sealed with key id `k1`, and the keys given are `k9`/);
    expect(error?.message).not.toContain(K1);
    expect(error?.message).not.toContain(K2);

    await new SealedStore(inner, { keys: `k2:${K2},k1:${K1}` }).check();
    await inner.close();
  });

  it("bad keys are refused at construction, naming the entry and the fix", () => {
    const inner = new SqliteStore({ path: join(dir, "bad-keys.db") });
    expect(() => new SealedStore(inner, { keys: "short" })).toThrow(
      /Expected `keys` to be 32 bytes \(44 characters of base64, or 64 hex digits\), got 5 characters; make one with `openssl rand -base64 32`/,
    );
    expect(() => new SealedStore(inner, { keys: `a:${K1},a:${K2}` })).toThrow(/`a` twice/);
    expect(() => new SealedStore(inner, { keys: `bad id:${K1}` })).toThrow(/id of `keys`/);
    expect(() => new SealedStore(inner, { keys: "" })).toThrow(/at least one 32-byte key/);
    void inner.close();
  });
});

describe("purge by tag through a sealed store", () => {
  /** A SqliteStore that records the filters its (indexed) `purge` is given. */
  class PurgeableSqlite extends SqliteStore {
    readonly filters: PurgeFilter[] = [];
    override async purge(filter: PurgeFilter): Promise<number> {
      this.filters.push(filter);
      return super.purge(filter);
    }
  }

  it("hashes the filter's tags as it hashed them on write, under every key of the ring", async () => {
    const inner = new PurgeableSqlite({ path: join(dir, "purge.db") });
    const scope = { namespace: "p" };
    await new SealedStore(inner, { keys: `k1:${K1}` }).set("old", scope, {
      value: 1,
      createdAt: 1,
      tags: [TAG],
    });
    const store = new SealedStore(inner, { keys: `k2:${K2},k1:${K1}` });
    await store.set("new", scope, { value: 2, createdAt: 2, tags: [TAG, "other"] });
    await store.set("kept", scope, { value: 3, createdAt: 3, tags: ["other"] });
    expect(await store.purge?.({ namespace: "p", tags: [TAG] })).toBe(2);
    expect(await store.get("old", scope)).toBeUndefined();
    expect(await store.get("new", scope)).toBeUndefined();
    expect((await store.get("kept", scope))?.value).toBe(3);
    expect(JSON.stringify(inner.filters)).not.toContain(TAG);
    await inner.close();
  });

  it("matches allTags (the gateway's model AND tenant) under the key that sealed each entry", async () => {
    const inner = new PurgeableSqlite({ path: join(dir, "purge-all.db") });
    const scope = { namespace: "p" };
    await new SealedStore(inner, { keys: `k1:${K1}` }).set("old", scope, {
      value: 1,
      createdAt: 1,
      tags: ["model:m", "tenant:a"],
    });
    const store = new SealedStore(inner, { keys: `k2:${K2},k1:${K1}` });
    await store.set("new", scope, { value: 2, createdAt: 2, tags: ["model:m", "tenant:a"] });
    await store.set("other", scope, { value: 3, createdAt: 3, tags: ["model:m", "tenant:b"] });
    expect(await store.purge?.({ namespace: "p", allTags: ["model:m", "tenant:a"] })).toBe(2);
    expect(await store.get("old", scope)).toBeUndefined();
    expect(await store.get("new", scope)).toBeUndefined();
    expect((await store.get("other", scope))?.value).toBe(3);
    expect(JSON.stringify(inner.filters)).not.toContain("tenant:a");
    await inner.close();
  });
});
