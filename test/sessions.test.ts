import { describe, expect, it } from "vitest";
import { Cache, cache, currentSession, endSession, runInSession } from "../src/index.js";
import { collect } from "./helpers/collect.js";

describe("per-session caches", () => {
  it("isolate sessions: one session never reads another's entries", async () => {
    let calls = 0;
    const fn = cache((x: number) => `${currentSession()}:${x}:${++calls}`, { perSession: true });
    const a = runInSession("alice", () => fn(1));
    const b = runInSession("bob", () => fn(1));
    expect(a).toBe("alice:1:1");
    expect(b).toBe("bob:1:2");
    expect(runInSession("alice", () => fn(1))).toBe(a);
    expect(fn(1)).toBe("undefined:1:3");
  });

  it("endSession drops that session's entries in every cache, and only those (Gradio's conformance test)", async () => {
    let calls = 0;
    const decorated = cache((x: number) => ++calls + x * 0, { perSession: true });
    const manual = new Cache<{ value: number }>({ perSession: true });
    const global = new Cache<{ value: number }>();
    for (const [session, value] of [
      ["session-1", 1],
      ["session-2", 2],
    ] as const) {
      await runInSession(session, async () => {
        await manual.set("k", { value });
        decorated(1);
      });
    }
    await global.set("k", { value: 99 });
    expect(calls).toBe(2);
    expect(await endSession("session-1")).toBe(2);
    await runInSession("session-1", async () => {
      expect(await manual.get("k")).toBeUndefined();
      decorated(1);
    });
    expect(calls).toBe(3);
    await runInSession("session-2", async () => {
      expect(await manual.get("k")).toEqual({ value: 2 });
      decorated(1);
    });
    expect(calls).toBe(3);
    expect(await global.get("k")).toEqual({ value: 99 });
  });

  it("match session ids exactly: ending 'a' leaves 'a:b' alone", async () => {
    const c = new Cache<{ v: string }>({ perSession: true });
    await runInSession("a", () => c.set("k", { v: "a" }));
    await runInSession("a:b", () => c.set("k", { v: "a:b" }));
    await endSession("a");
    expect(await runInSession("a:b", () => c.get("k"))).toEqual({ v: "a:b" });
    expect(await runInSession("a", () => c.get("k"))).toBeUndefined();
  });

  it("keys() and size() agree: both count the current session", async () => {
    const c = new Cache({ perSession: true });
    await runInSession("s1", async () => {
      await c.set("x", {});
      await c.set("y", {});
    });
    await runInSession("s2", () => c.set("z", {}));
    await runInSession("s1", async () => {
      expect(await c.size()).toBe(2);
      expect(await collect(c.keys())).toEqual(["x", "y"]);
    });
    expect(await c.size()).toBe(0);
    expect(await collect(c.keys())).toEqual([]);
  });

  it("apply maxSize across all sessions, and a quota per session", async () => {
    const c = new Cache({ perSession: true, maxSize: 10, maxSizePerSession: 3 });
    await runInSession("quiet", () => c.set("mine", {}));
    await runInSession("greedy", async () => {
      for (let i = 0; i < 20; i++) await c.set(`k${i}`, {});
    });
    expect(await runInSession("quiet", () => c.has("mine"))).toBe(true);
    expect(await runInSession("greedy", () => c.size())).toBe(3);
  });

  it("keep a session through awaits and nested calls", async () => {
    const seen: (string | undefined)[] = [];
    await runInSession("deep", async () => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      seen.push(currentSession());
      await Promise.all([1, 2].map(async () => seen.push(currentSession())));
    });
    expect(seen).toEqual(["deep", "deep", "deep"]);
    expect(currentSession()).toBeUndefined();
  });

  it("rejects an empty session id", () => {
    expect(() => runInSession("", () => 1)).toThrow(/non-empty string/);
  });

  it("streams coalesce only within one session", async () => {
    let calls = 0;
    const gen = cache(
      async function* (_x: number) {
        calls++;
        await new Promise((resolve) => setImmediate(resolve));
        yield currentSession();
      },
      { perSession: true },
    );
    const collect = async () => {
      const out: unknown[] = [];
      for await (const v of gen(1)) out.push(v);
      return out;
    };
    const [a, b] = await Promise.all([runInSession("a", collect), runInSession("b", collect)]);
    expect(a).toEqual(["a"]);
    expect(b).toEqual(["b"]);
    expect(calls).toBe(2);
  });
});
