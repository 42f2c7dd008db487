/**
 * The package as users get it: `npm pack` (what `npm publish` uploads), installed from the
 * tarball into temporary projects, one per entry point, each with only the peer dependencies that
 * entry point needs (linked from this repository's node_modules, so nothing is downloaded). In
 * each, a consumer is type-checked as a strict project does it (`strict`, `skipLibCheck: false`)
 * and run, imported as ESM and required as CommonJS (Node >= 20.19 requires ES modules). The
 * installed `infercache` command runs too: `--version`, what `serve` says with nothing to cache
 * (the package has no bundled model), and the default SQLite store without better-sqlite3.
 * `npm test` builds dist first; this test packs what was built.
 */
import { execFileSync, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MODEL_PATH } from "./helpers/llama-upstream.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const npm = process.platform === "win32" ? "npm.cmd" : "npm";
const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
const work = mkdtempSync(join(tmpdir(), "infercache-package-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  version: string;
  files: string[];
  scripts: Record<string, string>;
  exports: Record<string, unknown>;
  repository?: { url: string };
  homepage?: string;
  bugs?: { url: string };
};

let tarball = "";
let packed: string[] = [];

beforeAll(() => {
  const out = execFileSync(
    npm,
    ["pack", "--ignore-scripts", "--json", "--pack-destination", work],
    { cwd: root, encoding: "utf8" },
  );
  const [info] = JSON.parse(out) as { filename: string; files: { path: string }[] }[];
  tarball = join(work, info?.filename as string);
  packed = (info?.files ?? []).map((file) => file.path);
}, 120_000);

describe("npm pack", () => {
  it("ships dist, built by prepack, with the fields a registry page shows", () => {
    expect(pkg.scripts.prepack).toMatch(/npm run build/);
    for (const file of ["dist/index.js", "dist/index.d.ts", "dist/cli/main.js", "LICENSE"])
      expect(packed, file).toContain(file);
    for (const subpath of Object.keys(pkg.exports).filter(
      (key) => key.endsWith("package.json") === false,
    )) {
      const name = subpath === "." ? "index" : subpath.slice(2);
      expect(packed, subpath).toContain(`dist/${name}.js`);
      expect(packed, subpath).toContain(`dist/${name}.d.ts`);
    }
    expect(pkg.repository?.url).toMatch(/^git\+https:\/\//);
    expect(pkg.homepage).toMatch(/^https:\/\//);
    expect(pkg.bugs?.url).toMatch(/^https:\/\//);
    expect(packed.some((file) => file.startsWith("test/") || file.startsWith("src/"))).toBe(false);
    expect(packed.some((file) => file.endsWith(".gguf"))).toBe(false);
  });

  it("ships every file the shipped documents link to", () => {
    for (const doc of packed.filter((file) => file.endsWith(".md") && !file.includes("/"))) {
      const text = readFileSync(join(root, doc), "utf8");
      for (const [, target] of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        if (/^[a-z]+:/.test(target as string)) continue;
        expect(packed, `${doc} links to ${target}`).toContain(target);
      }
    }
  });
});

interface Consumer {
  /** Peer packages linked into the project (each with its own dependencies where they lie). */
  peers: string[];
  /** An ES module consumer, type-checked and run; prints "ok" when all went well. */
  esm: string;
  /** The names `require(subpath)` must give. */
  requires: Record<string, string[]>;
}

const CONSUMERS: Record<string, Consumer> = {
  infercache: {
    peers: [],
    esm: `import { cache, MemoryStore, hashKey } from "infercache";
const double = cache((x: number) => x * 2, { store: new MemoryStore({ maxSize: 10 }), namespace: "double" });
if (double(2) !== 4 || double(2) !== 4 || hashKey(1).length !== 64) throw new Error("root");
console.log("ok");`,
    requires: { infercache: ["cache", "Cache", "MemoryStore"] },
  },
  "infercache/sqlite": {
    peers: ["better-sqlite3", "@types/better-sqlite3"],
    esm: `import { SqliteStore } from "infercache/sqlite";
const store = new SqliteStore({ path: ":memory:" });
await store.set("k", { namespace: "n" }, { value: { a: 1 }, createdAt: Date.now() });
const entry = await store.get("k", { namespace: "n" });
if ((entry?.value as { a: number }).a !== 1) throw new Error("sqlite");
await store.close();
console.log("ok");`,
    requires: { "infercache/sqlite": ["SqliteStore"] },
  },
  "infercache/redis": {
    peers: ["redis"],
    esm: `import { RedisStore, type RedisStoreOptions } from "infercache/redis";
const options: RedisStoreOptions = { url: "redis://127.0.0.1:1", logger: { warn() {} } };
const store = new RedisStore(options);
await store.close();
console.log("ok");`,
    requires: { "infercache/redis": ["RedisStore"] },
  },
  "infercache/llm": {
    peers: [],
    esm: `import { cachingFetch, chatKey } from "infercache/llm";
let calls = 0;
const fetch = cachingFetch({
  fetch: async () => {
    calls++;
    return new Response(JSON.stringify({ id: "x", object: "chat.completion", created: 0, model: "m",
      choices: [{ index: 0, message: { role: "assistant", content: "hi" }, finish_reason: "stop" }] }),
      { headers: { "content-type": "application/json" } });
  },
});
const body = JSON.stringify({ model: "m", messages: [{ role: "user", content: "q" }], temperature: 0 });
const init = { method: "POST", headers: { "content-type": "application/json" }, body };
await (await fetch("http://127.0.0.1:9/v1/chat/completions", init)).text();
const second = await fetch("http://127.0.0.1:9/v1/chat/completions", init);
if (second.headers.get("x-infercache") !== "hit" || calls !== 1) throw new Error("llm");
if (typeof chatKey({ model: "m", messages: [] }) !== "string") throw new Error("chatKey");
console.log("ok");`,
    requires: { "infercache/llm": ["cachingFetch", "chatKey"] },
  },
  "infercache/ai-sdk": {
    peers: ["@ai-sdk/provider"],
    esm: `import type { LanguageModelV3Middleware } from "@ai-sdk/provider";
import { cacheMiddleware } from "infercache/ai-sdk";
const middleware: LanguageModelV3Middleware = cacheMiddleware();
if (typeof middleware.wrapGenerate !== "function") throw new Error("ai-sdk");
console.log("ok");`,
    requires: { "infercache/ai-sdk": ["cacheMiddleware"] },
  },
  "infercache/langchain": {
    peers: ["@langchain/core"],
    esm: `import type { BaseCache } from "@langchain/core/caches";
import { langChainCache } from "infercache/langchain";
const cache: BaseCache = langChainCache();
await cache.update("prompt", "llm", [{ text: "answer" }]);
if ((await cache.lookup("prompt", "llm"))?.[0]?.text !== "answer") throw new Error("lookup");
console.log("ok");`,
    requires: { "infercache/langchain": ["langChainCache"] },
  },
  "infercache/llama": {
    peers: ["node-llama-cpp"],
    esm: `import { LlamaEngine } from "infercache/llama";
const engine = await LlamaEngine.load({ modelPath: ${JSON.stringify(MODEL_PATH)} });
const response = await engine.handle(new Request("http://local/v1/chat/completions", {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ messages: [{ role: "user", content: "hi" }], max_tokens: 2, temperature: 0 }),
}));
if (response.status !== 200) throw new Error(\`llama \${response.status}\`);
await response.text();
await engine.close();
console.log("ok");`,
    requires: { "infercache/llama": ["LlamaEngine", "LlamaStateCache"] },
  },
  "infercache/server": {
    peers: [],
    esm: `import { createGateway, serve } from "infercache/server";
const gateway = createGateway({ upstream: async () => new Response("{}") });
const health = await gateway.handle(new Request("http://local/healthz"));
if (health.status !== 200 || typeof serve !== "function") throw new Error("server");
await gateway.close();
console.log("ok");`,
    requires: { "infercache/server": ["createGateway", "serve", "Router"] },
  },
};

/** A project with the tarball installed and `peers` linked: what a user's project looks like. */
function project(name: string, peers: string[]): string {
  const dir = join(work, name.replaceAll("/", "-"));
  mkdirSync(dir);
  writeFileSync(
    join(dir, "package.json"),
    JSON.stringify({ name: "consumer", private: true, type: "module" }),
  );
  execFileSync(
    npm,
    ["install", "--offline", "--ignore-scripts", "--no-audit", "--no-fund", tarball],
    { cwd: dir, stdio: "pipe" },
  );
  for (const peer of [...peers, "@types/node"]) {
    const link = join(dir, "node_modules", peer);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(join(root, "node_modules", peer), link, "dir");
  }
  writeFileSync(
    join(dir, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: "ES2022",
        lib: ["ES2023"],
        module: "NodeNext",
        moduleResolution: "NodeNext",
        types: ["node"],
        strict: true,
        skipLibCheck: false,
        outDir: "out",
      },
      include: ["index.ts"],
    }),
  );
  return dir;
}

/**
 * tsc's errors that are infercache's or the consumer's: errors inside a peer's own declarations
 * (node-llama-cpp's and @ai-sdk/provider's do not pass `skipLibCheck: false` on their own) are
 * the peer's, and left out. Each error keeps its continuation lines.
 */
function ownErrors(output: string, peers: string[]): string[] {
  const errors: string[] = [];
  for (const line of output.split("\n")) {
    if (line.trim() === "") continue;
    if (/^\s/.test(line) && errors.length > 0) errors[errors.length - 1] += `\n${line}`;
    else errors.push(line);
  }
  const inPeer = (error: string) =>
    [...peers, "@types/node"].some((peer) =>
      new RegExp(`(^|/)node_modules/${peer}/`).test(error.split("(")[0] as string),
    );
  return errors.filter((error) => !inPeer(error));
}

function run(dir: string, args: string[]): { status: number | null; out: string; err: string } {
  const result = spawnSync(process.execPath, args, {
    cwd: dir,
    encoding: "utf8",
    env: { ...process.env, INFERCACHE_MODEL: "", INFERCACHE_UPSTREAM: "" },
    timeout: 60_000,
  });
  return { status: result.status, out: result.stdout, err: result.stderr };
}

describe("installed from the tarball", () => {
  for (const [subpath, consumer] of Object.entries(CONSUMERS)) {
    it(`${subpath}: type-checks strictly and runs with only ${consumer.peers.join(", ") || "no peers"}`, () => {
      const dir = project(subpath, consumer.peers);
      writeFileSync(join(dir, "index.ts"), consumer.esm);
      const check = spawnSync(process.execPath, [tsc, "-p", dir], { cwd: dir, encoding: "utf8" });
      expect(ownErrors(check.stdout + check.stderr, consumer.peers), "tsc").toEqual([]);
      expect(existsSync(join(dir, "out", "index.js")), "tsc emitted").toBe(true);
      const ran = run(dir, ["out/index.js"]);
      expect(ran, ran.err).toMatchObject({ status: 0, out: "ok\n" });
      const names = Object.entries(consumer.requires)
        .map(
          ([id, list]) =>
            `for (const n of ${JSON.stringify(list)}) if (require(${JSON.stringify(id)})[n] === undefined) throw new Error(n);`,
        )
        .join("\n");
      writeFileSync(join(dir, "require.cjs"), `${names}\nconsole.log("ok");\n`);
      const required = run(dir, ["require.cjs"]);
      expect(required, required.err).toMatchObject({ status: 0, out: "ok\n" });
    }, 120_000);
  }

  describe("the infercache command, with no peers installed", () => {
    let dir = "";
    beforeAll(() => {
      dir = project("cli", []);
    }, 120_000);
    const bin = () => join(dir, "node_modules", ".bin", "infercache");

    it("--version", () => {
      expect(existsSync(bin())).toBe(true);
      expect(run(dir, [bin(), "--version"])).toMatchObject({ status: 0, out: `${pkg.version}\n` });
    });

    it("serve with nothing to cache says what to set (the package has no bundled model)", () => {
      const result = run(dir, [bin(), "serve", "--port", "0"]);
      expect(result.status).toBe(2);
      expect(result.err).toMatch(
        /nothing to cache: set --upstream URL \(or INFERCACHE_UPSTREAM\).*\n.*--model PATH \(or INFERCACHE_MODEL\)/,
      );
    });

    it("serve on the default SQLite store without better-sqlite3 says to install it or use --store memory", () => {
      const result = run(dir, [
        bin(),
        "serve",
        "--upstream",
        "http://127.0.0.1:9/v1",
        "--port",
        "0",
      ]);
      expect(result.status).toBe(1);
      expect(result.err).toMatch(
        /needs the package better-sqlite3: run `npm install better-sqlite3`/,
      );
      expect(result.err).toMatch(/--store memory/);
    });
  });
});
