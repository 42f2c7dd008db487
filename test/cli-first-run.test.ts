/**
 * The first run: `infercache serve` with nothing set (what `npm start` runs) serves the bundled
 * test model on the default SQLite store under the working directory, and prints the base URL,
 * the dashboard URL, a `curl` line that works, and what to pass for real answers. Also
 * `--version`, and `--model` with `--upstream`.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, runCliProcess, type ServeProcess, startServe } from "./helpers/cli.js";
import { MODEL_PATH } from "./helpers/llama-upstream.js";
import { until } from "./helpers/until.js";

describe("infercache serve with nothing set (npm start)", () => {
  const dir = mkdtempSync(join(tmpdir(), "infercache-first-run-"));
  let served: ServeProcess;
  let banner = "";

  beforeAll(async () => {
    served = await startServe(["--port", "0"], { cwd: dir });
    await until(() => /\n.*random-weight.*\n/.test(served.output()), "the whole banner");
    banner = served.output();
  }, 60_000);

  afterAll(async () => {
    await served?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves the bundled test model on the default SQLite store, and says where", () => {
    expect(banner).toContain("llama-2-tiny-random.gguf");
    expect(banner).toMatch(new RegExp(`^\\s*base URL\\s+${served.url}/v1$`, "m"));
    expect(banner).toMatch(new RegExp(`^\\s*dashboard\\s+${served.url}/$`, "m"));
    expect(existsSync(join(dir, ".infercache", "cache.db"))).toBe(true);
  });

  it("says it is a tiny random-weight test model and how to point it at a real one", () => {
    expect(banner).toMatch(/tiny random-weight test model/);
    expect(banner).toMatch(/--model PATH\.gguf/);
    expect(banner).toMatch(/--upstream URL/);
  });

  it("prints a curl line that works: run twice, the second answer comes from the cache", async () => {
    const line = /^\s*try\s+(curl .*)$/m.exec(banner)?.[1];
    expect(line).toBeDefined();
    // What curl would send: the URL, the headers and the JSON body of the printed line.
    const url = /curl (?:-\w+ )*(\S+)/.exec(line as string)?.[1] as string;
    const headers = Object.fromEntries(
      [...(line as string).matchAll(/-H '([^:']+): ([^']*)'/g)].map((m) => [m[1], m[2]]),
    );
    const body = /-d '([^']*)'/.exec(line as string)?.[1] as string;
    expect(url).toBe(`${served.url}/v1/chat/completions`);
    const first = await fetch(url, { method: "POST", headers, body });
    expect(first.status).toBe(200);
    expect(first.headers.get("x-infercache")).toBe("miss");
    const answer = (await first.json()) as { choices: { message: { content: string } }[] };
    expect(typeof answer.choices[0]?.message.content).toBe("string");
    const second = await fetch(url, { method: "POST", headers, body });
    expect(second.headers.get("x-infercache")).toBe("hit");
    await second.text();
  });

  it("answers a GET on the printed base URL with a JSON 404 that lists the routes", async () => {
    const base = /^\s*base URL\s+(\S+)$/m.exec(banner)?.[1] as string;
    const response = await fetch(base);
    expect(response.status).toBe(404);
    expect(response.headers.get("content-type")).toMatch(/application\/json/);
    const body = (await response.json()) as { error: { message: string } };
    expect(body.error.message).toMatch(/the routes are .*GET \/.*\/v1\/\*/);
  });
});

describe("infercache --version", () => {
  it("prints the package's version", async () => {
    const { version } = JSON.parse(
      readFileSync(new URL("../package.json", import.meta.url), "utf8"),
    ) as { version: string };
    expect(await runCli(["--version"])).toEqual({ code: 0, out: `${version}\n`, err: "" });
    expect(await runCli(["-v"])).toEqual({ code: 0, out: `${version}\n`, err: "" });
  });
});

describe("--model together with --upstream", () => {
  it("is refused with exit code 2, for serve and warm", async () => {
    const serve = await runCliProcess(
      ["serve", "--model", MODEL_PATH, "--upstream", "http://127.0.0.1:9/v1", "--store", "memory"],
      { timeoutMs: 30_000 },
    );
    expect(serve.code).toBe(2);
    expect(serve.err).toMatch(/pass --upstream URL or --model PATH, not both/);
    const warm = await runCli([
      "warm",
      "requests.jsonl",
      "--model",
      MODEL_PATH,
      "--upstream",
      "http://127.0.0.1:9/v1",
    ]);
    expect(warm.code).toBe(2);
    expect(warm.err).toMatch(/pass --upstream URL or --model PATH, not both/);
  }, 60_000);
});
