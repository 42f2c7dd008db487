/**
 * The tiny test model committed in models/: the file is the one its note describes (size and
 * sha256), the note names its origin and licence, and the tests' MODEL_PATH is that file.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { MODEL_PATH } from "./helpers/llama-upstream.js";

const SHA256 = "81f226c62d28ed4a1a9b9fa080fcd9f0cc40e0f9d5680036583ff98fbcd035cb";
const model = fileURLToPath(new URL("../models/llama-2-tiny-random.gguf", import.meta.url));

describe("the bundled test model", () => {
  it("is the llama-2-tiny-random GGUF its note describes", () => {
    const bytes = readFileSync(model);
    expect(bytes.length).toBe(1_750_560);
    expect(bytes.subarray(0, 4).toString("latin1")).toBe("GGUF");
    expect(createHash("sha256").update(bytes).digest("hex")).toBe(SHA256);
  });

  it("has its origin and licence noted beside it", () => {
    const note = readFileSync(new URL("../models/README.md", import.meta.url), "utf8");
    expect(note).toContain(SHA256);
    expect(note).toMatch(/ollama/);
    expect(note).toMatch(/MIT/);
    expect(note).toMatch(/random weights/);
  });

  it.skipIf(process.env.INFERCACHE_MODEL !== undefined)("is what the tests load", () => {
    expect(MODEL_PATH).toBe(model);
  });
});
