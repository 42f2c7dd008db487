/**
 * `export` and `import` with `--encryption-key`: the export file holds sealed values and keyed
 * hashes only (entries a store kept in the clear are sealed on the way out), the import opens
 * and seals them again into another store where they are hits, and a missing or wrong key is
 * said in so many words (exit codes 2 and 1), naming key ids, never keys.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cache } from "../src/index.js";
import { SqliteStore } from "../src/sqlite.js";
import { SealedStore } from "../src/store/sealed.js";
import { runCli } from "./helpers/cli.js";
import { findMarker } from "./helpers/marker-search.js";

const dir = mkdtempSync(join(tmpdir(), "infercache-sealed-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const K1 = randomBytes(32).toString("base64");
const K2 = randomBytes(32).toString("base64");
const PROMPT = "PROMPT-MARKER-cli-77aa the patient's name is";
const ANSWER = "ANSWER-MARKER-cli-bb01 Jane Roe";

async function fill(store: SqliteStore | SealedStore, prompt: string): Promise<void> {
  const ask = cache(async (p: string) => `${ANSWER} for ${p}`, { store, namespace: "gateway" });
  await ask(prompt);
}

describe("export and import of a sealed store", () => {
  let sealedSpec: string;
  beforeAll(async () => {
    const path = join(dir, "sealed.db");
    const store = new SealedStore(new SqliteStore({ path }), { keys: `k1:${K1}` });
    await store.check();
    await fill(store, PROMPT);
    await store.close();
    sealedSpec = `sqlite:${path}`;
  });

  it("exports sealed values and hashed keys; the import is a hit in a new store", async () => {
    const out = join(dir, "sealed.jsonl");
    const exported = await runCli([
      "export",
      "--store",
      sealedSpec,
      "--encryption-key",
      `k1:${K1}`,
      "--out",
      out,
    ]);
    expect(exported.code).toBe(0);
    expect(exported.err).toMatch(/exported 1 entries of namespace gateway, sealed with key id k1/);
    const text = readFileSync(out);
    expect(findMarker(text, PROMPT.slice(0, 24))).toEqual([]);
    expect(findMarker(text, ANSWER.slice(0, 24))).toEqual([]);

    // Into a new store, with the key rotated: opened with k1, sealed again with k2.
    const target = join(dir, "restored.db");
    const imported = await runCli([
      "import",
      out,
      "--store",
      `sqlite:${target}`,
      "--encryption-key",
      `k2:${K2},k1:${K1}`,
    ]);
    expect(imported.out).toMatch(/imported 1 entries, skipped 0/);
    expect(imported.code).toBe(0);
    const restored = new SealedStore(new SqliteStore({ path: target }), { keys: `k2:${K2}` });
    let calls = 0;
    const ask = cache(
      async (p: string) => {
        calls++;
        return p;
      },
      { store: restored, namespace: "gateway" },
    );
    expect(await ask(PROMPT)).toBe(`${ANSWER} for ${PROMPT}`);
    expect(calls).toBe(0);
    await restored.close();
  });

  it("without the key: export refuses (exit 2), import skips each sealed line by number", async () => {
    const out = join(dir, "refused.jsonl");
    const exported = await runCli(["export", "--store", sealedSpec, "--out", out]);
    expect(exported.code).toBe(2);
    expect(exported.err).toMatch(
      /holds sealed \(encrypted\) entries: pass the key they were written with/,
    );

    await runCli(["export", "--store", sealedSpec, "--encryption-key", `k1:${K1}`, "--out", out]);
    const imported = await runCli(["import", out, "--store", `sqlite:${join(dir, "keyless.db")}`]);
    expect(imported.code).toBe(1);
    expect(imported.err).toMatch(
      /line 1: the entry is sealed \(encrypted\): pass the --encryption-key it was written with/,
    );
  });

  it("with a wrong key: export and import say which key id, never the key", async () => {
    const out = join(dir, "wrong.jsonl");
    const exported = await runCli([
      "export",
      "--store",
      sealedSpec,
      "--encryption-key",
      `k1:${K2}`,
      "--out",
      out,
    ]);
    expect(exported.code).toBe(1);
    expect(exported.err).toMatch(/key id `k1` were sealed with another key/);
    expect(exported.err).not.toContain(K2);

    await runCli(["export", "--store", sealedSpec, "--encryption-key", `k1:${K1}`, "--out", out]);
    const unknownId = await runCli([
      "import",
      out,
      "--store",
      `sqlite:${join(dir, "wrong-target.db")}`,
      "--encryption-key",
      `k3:${K2}`,
    ]);
    expect(unknownId.code).toBe(1);
    expect(unknownId.err).toMatch(
      /line 1: sealed with key id `k1`, which --encryption-key does not hold/,
    );
    const sameIdWrongKey = await runCli([
      "import",
      out,
      "--store",
      `sqlite:${join(dir, "wrong-target-2.db")}`,
      "--encryption-key",
      `k1:${K2}`,
    ]);
    expect(sameIdWrongKey.code).toBe(1);
    expect(sameIdWrongKey.err).toMatch(/line 1: does not open: it does not open with key `k1`/);
  });

  it("a store kept in the clear is exported sealed when a key is given", async () => {
    const path = join(dir, "plain.db");
    const plain = new SqliteStore({ path });
    await fill(plain, PROMPT);
    await plain.close();
    const out = join(dir, "plain-sealed.jsonl");
    const clear = join(dir, "plain-clear.jsonl");
    await runCli(["export", "--store", `sqlite:${path}`, "--out", clear]);
    // The control: an export without a key has the answer in the clear.
    expect(findMarker(readFileSync(clear), ANSWER.slice(0, 24))).not.toEqual([]);
    const exported = await runCli([
      "export",
      "--store",
      `sqlite:${path}`,
      "--encryption-key",
      K1,
      "--out",
      out,
    ]);
    expect(exported.code).toBe(0);
    expect(findMarker(readFileSync(out), ANSWER.slice(0, 24))).toEqual([]);
    expect(findMarker(readFileSync(out), PROMPT.slice(0, 24))).toEqual([]);
  });
});
