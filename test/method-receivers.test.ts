/**
 * A cached method's receiver (`this`) is part of its key: regression tests for the wrong hit
 * where two objects sharing a cached method got each other's results.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cache, HASH_HOOK, MemoryStore } from "../src/index.js";
import { SqliteStore } from "../src/sqlite.js";

interface Scaled {
  scale: number;
  run(x: number): number;
}

describe("a cached method's receiver is part of the key", () => {
  it("two objects sharing a cached method get their own results (was a wrong hit)", () => {
    let calls = 0;
    const run = cache(function (this: { scale: number }, x: number) {
      calls++;
      return x * this.scale;
    });
    const ten: Scaled = { scale: 10, run };
    const five: Scaled = { scale: 5, run };
    expect(ten.run(2)).toBe(20);
    expect(five.run(2)).toBe(10);
    expect(ten.run(2)).toBe(20);
    expect(five.run(2)).toBe(10);
    expect(calls).toBe(2);
  });

  it("a call without a receiver keeps its own entry, apart from method calls", () => {
    let calls = 0;
    const f = cache(function (this: unknown, x: number) {
      calls++;
      return this === undefined ? `plain ${x}` : `method ${x}`;
    });
    const holder = { f };
    expect(f(1)).toBe("plain 1");
    expect(holder.f(1)).toBe("method 1");
    expect(f(1)).toBe("plain 1");
    expect(calls).toBe(2);
  });

  it("primitive receivers (strict mode) are keyed by value: 0 and -0, 1 and '1' differ", () => {
    let calls = 0;
    const f = cache(function (this: unknown, x: number) {
      calls++;
      return `${typeof this}:${Object.is(this, -0) ? "-0" : String(this)}:${x}`;
    });
    expect(f.call(1, 1)).toBe("number:1:1");
    expect(f.call("1", 1)).toBe("string:1:1");
    expect(f.call(1n, 1)).toBe("bigint:1:1");
    expect(f.call(0, 1)).toBe("number:0:1");
    expect(f.call(-0, 1)).toBe("number:-0:1");
    expect(f.call(true, 1)).toBe("boolean:true:1");
    expect(f.call(null, 1)).toBe("object:null:1");
    expect(calls).toBe(7);
    expect(f.call(1, 1)).toBe("number:1:1");
    expect(f.call(-0, 1)).toBe("number:-0:1");
    expect(calls).toBe(7);
  });

  it("a version string cannot make a plain call and a method call share a key", () => {
    let calls = 0;
    const body = function (this: unknown) {
      calls++;
      return this === undefined ? "plain" : "method";
    };
    // The receiver part of a key must not be forgeable from the version's text: one store and
    // namespace, two versions, one of them spelling out the other's receiver context.
    const store = new MemoryStore();
    const forged = cache(body, { store, namespace: "n", version: "x\u0000this=sB" });
    const honest = cache(body, { store, namespace: "n", version: "x" });
    expect(forged()).toBe("plain");
    expect(honest.call("B")).toBe("method");
    expect(calls).toBe(2);
  });

  it("a receiver with a hash hook is keyed by content: equal models share, others do not", () => {
    class Model {
      constructor(
        readonly name: string,
        readonly temperature: number,
      ) {}
      [HASH_HOOK]() {
        return { name: this.name, temperature: this.temperature };
      }
    }
    let calls = 0;
    const generate = cache(function (this: Model, prompt: string) {
      calls++;
      return `${this.name}@${this.temperature}: ${prompt}`;
    });
    const a = new Model("tiny", 0);
    const b = new Model("tiny", 0);
    const hot = new Model("tiny", 1);
    expect(generate.call(a, "hi")).toBe("tiny@0: hi");
    expect(generate.call(b, "hi")).toBe("tiny@0: hi");
    expect(generate.call(hot, "hi")).toBe("tiny@1: hi");
    expect(calls).toBe(2);
  });

  it("an object's identity never outlives it into another object's key", () => {
    let calls = 0;
    const run = cache(function (this: { id: number }) {
      calls++;
      return this.id;
    });
    // Many short-lived receivers: each is its own key, however many come and go.
    for (let i = 0; i < 1000; i++) expect(run.call({ id: i })).toBe(i);
    expect(calls).toBe(1000);
  });

  it("with a persistent store, an object receiver without a hook is refused with the fix", async () => {
    const store = new SqliteStore({ path: join(mkdtempSync(join(tmpdir(), "ic-this-")), "c.db") });
    try {
      const run = cache(
        async function (this: { scale: number }, x: number) {
          return x * this.scale;
        },
        { store, namespace: "methods" },
      );
      const holder = { scale: 3, run };
      await expect(holder.run(2)).rejects.toThrow(
        /called as a method of an object .*identity cannot be found again in another process or after a restart, so pass a `key` option .*or give the class a \[Symbol\.for\("infercache\.hash"\)\]\(\) method/,
      );
      // Nothing unreachable was stored.
      expect(await store.size({ namespace: "methods" })).toBe(0);
    } finally {
      await store.close();
    }
  });

  it("with a persistent store, a key option covers the receiver and is called with it", async () => {
    const store = new SqliteStore({ path: join(mkdtempSync(join(tmpdir(), "ic-this-")), "c.db") });
    try {
      let calls = 0;
      const run = cache(
        async function (this: { scale: number }, x: number) {
          calls++;
          return x * this.scale;
        },
        {
          store,
          namespace: "methods",
          key(this: { scale: number }, x: number) {
            return [this.scale, x];
          },
        },
      );
      const three = { scale: 3, run };
      const four = { scale: 4, run };
      expect(await three.run(2)).toBe(6);
      expect(await four.run(2)).toBe(8);
      const anotherThree = { scale: 3, run };
      expect(await anotherThree.run(2)).toBe(6);
      expect(calls).toBe(2);
    } finally {
      await store.close();
    }
  });

  it("a shared MemoryStore keeps identity keys (in-process), a store of your own or not", () => {
    let calls = 0;
    const store = new MemoryStore();
    const run = cache(
      function (this: { n: number }) {
        calls++;
        return this.n;
      },
      { store, namespace: "m" },
    );
    expect(run.call({ n: 1 })).toBe(1);
    expect(run.call({ n: 2 })).toBe(2);
    expect(calls).toBe(2);
  });
});
