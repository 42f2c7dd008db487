import { execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { Cache, cache } from "../src/index.js";
import { SqliteStore } from "../src/sqlite.js";
import { FakeClock } from "./helpers/fake-clock.js";
import { runStoreContract } from "./store-contract.js";

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), "infercache-sqlite-"));
let files = 0;
const freshPath = () => join(dir, `db-${++files}`, "cache.db");
const opened: SqliteStore[] = [];
const open = (options: Partial<ConstructorParameters<typeof SqliteStore>[0]> = {}) => {
  const store = new SqliteStore({ path: freshPath(), ...options });
  opened.push(store);
  return store;
};
afterAll(async () => {
  for (const store of opened) await store.close();
});

runStoreContract("SqliteStore", () => new SqliteStore({ path: freshPath() }));

const scope = { namespace: "n" };
const entry = (value: unknown) => ({ value, createdAt: Date.now() });

describe("SqliteStore limits", () => {
  it("evicts the least recently used entries beyond maxSize", async () => {
    // Reads' access times are written before this process evicts, not only by the timer.
    const store = open({ maxSize: 3, accessFlushMs: 60_000 });
    for (const k of ["a", "b", "c"]) await store.set(k, scope, entry(k));
    await store.get("a", scope);
    await store.set("d", scope, entry("d"));
    expect(await store.get("b", scope)).toBeUndefined();
    expect((await store.get("a", scope))?.value).toBe("a");
    expect(store.totals().entries).toBe(3);
  });

  it("evicts by bytes and keeps the totals exact", async () => {
    const store = open({ maxMemory: "64kb" });
    const evictions: string[] = [];
    store.subscribe((event) => evictions.push(`${event.key}:${event.reason}`));
    for (let i = 0; i < 20; i++) await store.set(`k${i}`, scope, entry(new Uint8Array(10_000)));
    const totals = store.totals();
    expect(totals.bytes).toBeLessThanOrEqual(64 * 1024);
    expect(totals.entries).toBeGreaterThan(3);
    expect(evictions[0]).toBe("k0:memory");
    expect(store.usage("n")).toEqual(totals);
    await store.clear();
    expect(store.totals()).toEqual({ entries: 0, bytes: 0 });
  });

  it("refuses an entry bigger than maxMemory and keeps the others", async () => {
    const store = open({ maxMemory: "16kb" });
    await store.set("small", scope, entry("x"));
    expect(await store.set("big", scope, entry(new Uint8Array(100_000)))).toBe("too-large");
    expect((await store.get("small", scope))?.value).toBe("x");
  });

  it("reports values it cannot serialize instead of storing a different type", async () => {
    const store = open();
    class Model {}
    expect(await store.set("m", scope, entry({ model: new Model() }))).toBe("not-serializable");
    expect(await store.get("m", scope)).toBeUndefined();
  });

  it("expires entries by the store ttl", async () => {
    const clock = new FakeClock();
    const store = open({ ttl: "1m", clock });
    await store.set("k", scope, { value: 1, createdAt: clock.now() });
    clock.advance(59_000);
    expect((await store.get("k", scope))?.value).toBe(1);
    clock.advance(1000);
    expect(await store.get("k", scope)).toBeUndefined();
    expect(store.totals().entries).toBe(0);
  });

  it("takes LRU access times from the injected clock", async () => {
    const clock = new FakeClock(1_000_000);
    const path = freshPath();
    const store = new SqliteStore({ path, clock });
    await store.set("k", scope, { value: 1, createdAt: clock.now() });
    clock.advance(5);
    await store.get("k", scope);
    await store.close();
    const Driver = (await import("better-sqlite3")).default;
    const raw = new Driver(path, { readonly: true });
    const accessedAt = raw.prepare("SELECT accessed_at FROM entries").pluck().get() as number;
    raw.close();
    // Microseconds of the fake clock, not of the wall clock.
    expect(accessedAt).toBe(1_000_005_000);
  });

  it("rejects a missing path and bad limits at construction", () => {
    expect(() => new SqliteStore({} as never)).toThrow(/Expected `path` to be the database file/);
    expect(() => new SqliteStore({ path: freshPath(), maxMemory: "huge" })).toThrow(/`maxMemory`/);
    expect(() => new SqliteStore({ path: freshPath(), busyTimeoutMs: -1 })).toThrow(
      /Expected `busyTimeoutMs` to be a non-negative integer/,
    );
  });
});

describe("SqliteStore persistence", () => {
  it("survives a restart: a cached function hits after reopening the file", async () => {
    const path = freshPath();
    let calls = 0;
    const work = async (text: string) => {
      calls++;
      return { embedding: new Float32Array([text.length, 1, 2]) };
    };
    const first = new SqliteStore({ path });
    const embed = cache(work, { store: first, namespace: "embed" });
    const before = await embed("hello");
    await first.close();
    const second = new SqliteStore({ path });
    const embedAgain = cache(work, { store: second, namespace: "embed" });
    const after = await embedAgain("hello");
    await second.close();
    expect(calls).toBe(1);
    expect(after).toEqual(before);
    expect(after.embedding).toBeInstanceOf(Float32Array);
  });

  it("keeps manual caches, sessions and longestPrefix across a restart", async () => {
    const path = freshPath();
    const a = new SqliteStore({ path });
    const c = new Cache<{ n: number }>({ store: a, namespace: "kv" });
    await c.set("hello", { n: 1 });
    await c.set([1, 2, 3], { n: 2 });
    await a.close();
    const b = new SqliteStore({ path });
    const again = new Cache<{ n: number }>({ store: b, namespace: "kv" });
    expect(await again.longestPrefix("hello world")).toMatchObject({
      key: "hello",
      value: { n: 1 },
    });
    expect(await again.longestPrefix([1, 2, 3, 4])).toMatchObject({
      key: [1, 2, 3],
      value: { n: 2 },
    });
    await b.close();
  });

  it("detects bytes flipped on disk: the entry is a miss and is removed", async () => {
    const path = freshPath();
    const store = new SqliteStore({ path });
    const marker = "MARKER-0123456789-MARKER";
    await store.set("victim", scope, entry({ text: marker }));
    await store.set("bystander", scope, entry({ text: "fine" }));
    await store.close();
    // Checkpoint so the row is in the main file, then flip a byte inside the stored value.
    const Driver = (await import("better-sqlite3")).default;
    const raw = new Driver(path);
    raw.pragma("wal_checkpoint(TRUNCATE)");
    raw.close();
    const bytes = readFileSync(path);
    const at = bytes.indexOf(Buffer.from(marker));
    expect(at).toBeGreaterThan(0);
    bytes[at + 3] = (bytes[at + 3] as number) ^ 0x20;
    writeFileSync(path, bytes);
    const reopened = new SqliteStore({ path });
    const reasons: string[] = [];
    reopened.subscribe((event) => reasons.push(event.reason));
    expect(await reopened.get("victim", scope)).toBeUndefined();
    expect(reasons).toEqual(["corrupt"]);
    expect(await reopened.size({ namespace: "n" })).toBe(1);
    expect((await reopened.get("bystander", scope))?.value).toEqual({ text: "fine" });
    await reopened.close();
  });
});

const worker = ["--import", "tsx", "test/helpers/sqlite-worker.ts"];

describe("SqliteStore shared by processes", () => {
  for (const processes of [2, 4]) {
    it(`${processes} processes write and read one file at once: no errors, no lost writes`, async () => {
      const path = freshPath();
      await new SqliteStore({ path }).close();
      const count = 150;
      const results = await Promise.all(
        Array.from({ length: processes }, (_, id) =>
          run(process.execPath, [...worker, "write", path, String(id), String(count)], {
            timeout: 60_000,
          }),
        ),
      );
      for (const result of results) expect(JSON.parse(result.stdout).wrote).toBe(count);
      const store = new SqliteStore({ path });
      expect(await store.size({ namespace: "multi" })).toBe(processes * count);
      for (let id = 0; id < processes; id++) {
        for (const i of [0, 77, count - 1]) {
          const got = await store.get(`${id}:${i}`, { namespace: "multi" });
          expect(got?.value).toMatchObject({ writer: String(id), i });
        }
      }
      expect(store.totals().entries).toBe(processes * count);
      await store.close();
    }, 90_000);
  }

  it("a writer killed with SIGKILL mid-storm leaves only intact entries", async () => {
    const path = freshPath();
    const child = spawn(process.execPath, [...worker, "storm", path], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("exit", resolve));
    const store = new SqliteStore({ path });
    let read = 0;
    for await (const [key, stored] of store.entries({ namespace: "multi" })) {
      const value = stored.value as { i: number; blob: Uint8Array; text: string };
      expect(key).toBe(`storm:${value.i % 500}`);
      expect(value.blob).toHaveLength(200_000);
      expect(value.blob.every((b) => b === value.i % 251)).toBe(true);
      expect(value.text).toHaveLength(value.i % 5000);
      read++;
    }
    expect(read).toBeGreaterThan(0);
    expect(store.totals().entries).toBe(read);
    await store.close();
  }, 60_000);
});
