/**
 * `export` and `import` never claim what they did not do: an export that cannot be written, or
 * fails part-way (a file size limit stands for a full disk), exits non-zero with the cause and
 * leaves no file; `import` creates a new SQLite store (a backup restored on a new machine), and a
 * line it cannot store — a 600 MB line, a value nested too deep to encode — is reported by
 * number while the later lines are still read, and the summary always comes.
 */
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SqliteStore } from "../src/sqlite.js";
import { runCli, runCliProcess } from "./helpers/cli.js";

const dir = mkdtempSync(join(tmpdir(), "infercache-export-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A SQLite file with `count` entries in namespace gateway, each value about `bytes` long. */
async function fillStore(path: string, count: number, bytes: number): Promise<string> {
  const store = new SqliteStore({ path });
  for (let i = 0; i < count; i++) {
    await store.set(
      `key-${i}`,
      { namespace: "gateway" },
      { value: { n: i, text: "x".repeat(bytes) }, createdAt: Date.now() },
    );
  }
  await store.close();
  return `sqlite:${path}`;
}

function entryLine(key: string, value: unknown): string {
  return JSON.stringify({ key, namespace: "gateway", createdAt: Date.now(), value });
}

describe("infercache export", () => {
  let small: string;
  beforeAll(async () => {
    small = await fillStore(join(dir, "small.db"), 7, 10);
  });

  it("to a directory that does not exist: exits 1 with the cause, writes nothing", async () => {
    const out = join(dir, "missing", "x.jsonl");
    const result = await runCli(["export", "--store", small, "--out", out]);
    expect(result.code).toBe(1);
    expect(result.err).toMatch(/cannot write .*missing\/x\.jsonl.*no such file or directory/);
    expect(result.err).not.toMatch(/exported/);
    expect(existsSync(join(dir, "missing"))).toBe(false);
  });

  it("that fails part-way (a full disk): exits 1 with the cause and leaves no partial file", async () => {
    const big = await fillStore(join(dir, "big.db"), 3000, 1000);
    const target = mkdtempSync(join(dir, "out-"));
    // `ulimit -f 512`: files of this process stop at 512 KiB, writes past it fail with EFBIG.
    const result = await runCliProcess(
      ["export", "--store", big, "--out", join(target, "x.jsonl")],
      { shellPrefix: "ulimit -f 512", timeoutMs: 60_000 },
    );
    expect(result.code).toBe(1);
    expect(result.err).toMatch(/cannot write .*x\.jsonl.*file too large/);
    expect(result.err).not.toMatch(/exported/);
    expect(readdirSync(target)).toEqual([]);
  }, 90_000);

  it("that succeeds: the file appears whole, with nothing left beside it", async () => {
    const target = mkdtempSync(join(dir, "ok-"));
    const out = join(target, "backup.jsonl");
    const result = await runCli(["export", "--store", small, "--out", out]);
    expect(result).toMatchObject({
      code: 0,
      err: expect.stringMatching(/exported 7 entries of namespace gateway/),
    });
    expect(readFileSync(out, "utf8").trim().split("\n")).toHaveLength(7);
    expect(readdirSync(target)).toEqual(["backup.jsonl"]);
  });
});

describe("infercache import", () => {
  const backup = join(dir, "backup.jsonl");
  beforeAll(() => {
    writeFileSync(
      backup,
      `${Array.from({ length: 5 }, (_, i) => entryLine(`restored-${i}`, { i })).join("\n")}\n`,
    );
  });

  it("into a new SQLite file creates the store, says so, and restores the entries", async () => {
    const fresh = join(dir, "new-machine", "other.db");
    const result = await runCli(["import", backup, "--store", `sqlite:${fresh}`]);
    expect(result.code).toBe(0);
    expect(result.out).toMatch(/created a new SQLite store at .*other\.db/);
    expect(result.out).toMatch(/imported 5 entries, skipped 0/);
    const stats = await runCli(["stats", "--store", `sqlite:${fresh}`]);
    expect(stats.out).toMatch(/namespace gateway: 5 entries/);
  });

  it("reports a 600 MB line and a too-deep value by number, reads on, and ends with the summary", async () => {
    const file = join(dir, "damaged.jsonl");
    const depth = 100_000;
    const deep = `{"key":"deep","namespace":"gateway","createdAt":1,"value":${"[".repeat(depth)}${"]".repeat(depth)}}`;
    const first = `${entryLine("first", 1)}\n`;
    const rest = `\n${entryLine("third", 3)}\n${deep}\n${entryLine("fifth", 5)}\n`;
    // Line 2 is 600 MB of zero bytes: a hole in a sparse file, so the test writes almost nothing.
    const fd = openSync(file, "w");
    writeSync(fd, first);
    writeSync(fd, rest, Buffer.byteLength(first) + 600 * 1024 * 1024);
    closeSync(fd);
    const store = `sqlite:${join(dir, "damaged.db")}`;
    const result = await runCliProcess(["import", file, "--store", store], { timeoutMs: 120_000 });
    expect(result.out).toMatch(/imported 3 entries, skipped 2/);
    expect(result.err).toMatch(/line 2: 600\.0 MiB, longer than the 256 MiB a line may have/);
    expect(result.err).toMatch(/line 4: not stored: the value is nested too deeply/);
    expect(result.code).toBe(1);
    const stats = await runCli(["stats", "--store", store]);
    expect(stats.out).toMatch(/namespace gateway: 3 entries/);
  }, 180_000);
});
