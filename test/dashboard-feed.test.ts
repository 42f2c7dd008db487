/**
 * The dashboard's feed and files without a browser: who is sent what (aggregates for anyone,
 * models and rows for admins, whether the admin API is on), the per-second ticks, and the page's
 * files served with content-hashed names, long cache lifetimes and a strict CSP.
 */
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import type { LlmResult } from "../src/llm/call.js";
import { dashboardAssets } from "../src/server/gateway/dashboard/assets.js";
import { DashboardFeed } from "../src/server/gateway/dashboard/feed.js";
import { DASHBOARD_SCRIPT } from "../src/server/gateway/dashboard/script.js";
import { Metrics } from "../src/server/gateway/metrics.js";
import { createGateway } from "../src/server.js";

const result: LlmResult = {
  route: "chat",
  outcome: "miss",
  status: 200,
  stream: false,
  durationMs: 40,
  savedMs: 0,
  savedTokens: 0,
  model: "tenant-model",
  key: "a".repeat(64),
  tenant: "t1",
};

interface Frame {
  event: string;
  data: Record<string, unknown>;
}

/** Reads SSE frames from a body until `enough` says so (or 5 s pass), then stops reading. */
async function frames(
  body: AsyncIterable<Uint8Array> & { cancel(): void },
  enough: (frames: Frame[]) => boolean,
): Promise<Frame[]> {
  const seen: Frame[] = [];
  let text = "";
  const deadline = Date.now() + 5000;
  const iterator = body[Symbol.asyncIterator]();
  while (!enough(seen) && Date.now() < deadline) {
    const next = await iterator.next();
    if (next.done === true) break;
    text += new TextDecoder().decode(next.value);
    let end = text.indexOf("\n\n");
    while (end !== -1) {
      const frame = text.slice(0, end);
      text = text.slice(end + 2);
      const event = /^event: (.*)$/m.exec(frame)?.[1];
      const data = /^data: (.*)$/m.exec(frame)?.[1];
      if (event !== undefined && data !== undefined) seen.push({ event, data: JSON.parse(data) });
      end = text.indexOf("\n\n");
    }
  }
  body.cancel();
  return seen;
}

describe("the dashboard feed", () => {
  const metrics = new Metrics();
  const feed = new DashboardFeed(metrics, { adminApi: true });
  metrics.record(result);
  feed.record(result);
  afterAll(() => feed.closeAll());

  it("sends anyone aggregates and the series, and admins the model breakdown and rows too", async () => {
    const anonymous = feed.stream(false).body as AsyncIterable<Uint8Array> & { cancel(): void };
    const [first] = await frames(anonymous, (seen) => seen.length >= 1);
    expect(first?.event).toBe("snapshot");
    const snapshot = first?.data as Record<string, unknown>;
    expect(snapshot.adminApi).toBe(true);
    expect(snapshot.admin).toBe(false);
    expect(snapshot.recent).toEqual([]);
    expect(snapshot).not.toHaveProperty("models");
    expect(snapshot.series).toMatchObject({
      requests: expect.any(Array),
      routes: expect.any(Object),
    });
    expect(JSON.stringify(snapshot)).not.toContain("tenant-model");
    expect(JSON.stringify(snapshot)).not.toContain("aaaa");

    const admin = feed.stream(true).body as AsyncIterable<Uint8Array> & { cancel(): void };
    const [adminFirst] = await frames(admin, (seen) => seen.length >= 1);
    const adminSnapshot = adminFirst?.data as Record<string, unknown>;
    expect(adminSnapshot.admin).toBe(true);
    expect((adminSnapshot.recent as unknown[]).length).toBe(1);
    expect(JSON.stringify(adminSnapshot.models)).toContain("tenant-model");
  });

  it("ticks every second with the last few points, models for admins only", async () => {
    const admin = feed.stream(true).body as AsyncIterable<Uint8Array> & { cancel(): void };
    const anonymous = feed.stream(false).body as AsyncIterable<Uint8Array> & { cancel(): void };
    const [adminFrames, anonymousFrames] = await Promise.all([
      frames(admin, (seen) => seen.some((frame) => frame.event === "stats")),
      frames(anonymous, (seen) => seen.some((frame) => frame.event === "stats")),
    ]);
    const tick = (list: Frame[]) => list.find((frame) => frame.event === "stats")?.data;
    expect(tick(adminFrames)).toHaveProperty("models");
    expect(tick(anonymousFrames)).not.toHaveProperty("models");
    const series = tick(anonymousFrames)?.series as { requests: number[]; start: number };
    expect(series.requests.length).toBeLessThanOrEqual(5);
    expect(typeof series.start).toBe("number");
    expect(tick(anonymousFrames)).toHaveProperty("stats.routes.rows");
  });
});

describe("the dashboard's files", () => {
  const gateway = createGateway({ upstream: "http://127.0.0.1:9/v1" });
  const get = (path: string) => gateway.handle(new Request(`http://gateway.test${path}`));
  afterAll(() => gateway.close());

  it("serve the page with a strict CSP and everything else under content-hashed names for a year", async () => {
    const page = await get("/");
    expect(page.headers.get("cache-control")).toBe("no-cache");
    expect(page.headers.get("content-security-policy")).toMatch(/script-src 'self';/);
    const html = await page.text();
    // No inline script or style: the CSP would refuse it.
    expect(html).not.toMatch(/<script>|<style|\sstyle=|\son\w+=/);
    const files = [...html.matchAll(/(?:src|href)="(\/dashboard\/[^"]+)"/g)].map((m) => m[1]);
    expect(files.length).toBe(4);
    for (const file of files) {
      expect(file).toMatch(/^\/dashboard\/(uplot|app)\.[0-9a-f]{12}\.(js|css)$/);
      const response = await get(file as string);
      expect(response.status).toBe(200);
      expect(response.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
      expect(response.headers.get("content-type")).toMatch(
        (file as string).endsWith(".js") ? /^text\/javascript/ : /^text\/css/,
      );
    }
    const uplot = files.find((file) => /uplot\.\w+\.js$/.test(file as string)) as string;
    const installed = readFileSync(join("node_modules", "uplot", "dist", "uPlot.iife.min.js"));
    expect(Buffer.from(await (await get(uplot)).arrayBuffer()).equals(installed)).toBe(true);
    expect((await get("/dashboard/uplot.000000000000.js")).status).toBe(404);
  });

  it("say whether the admin API is on, so the page offers a sign-in only then", async () => {
    const withToken = createGateway({
      upstream: "http://127.0.0.1:9/v1",
      adminToken: "x".repeat(8),
    });
    try {
      for (const [where, adminApi] of [
        [gateway, false],
        [withToken, true],
      ] as const) {
        const response = await where.handle(new Request("http://gateway.test/events"));
        const reader = (response.body as ReadableStream<Uint8Array>).getReader();
        const { value } = await reader.read();
        await reader.cancel();
        const data = new TextDecoder().decode(value).split("data: ")[1] as string;
        expect(JSON.parse(data).adminApi).toBe(adminApi);
      }
    } finally {
      await withToken.close();
    }
  });

  it("refuse to start without uPlot, naming the package and the fix", () => {
    const nowhere = pathToFileURL(join(tmpdir(), "infercache-no-modules", "here.js"));
    expect(() => dashboardAssets(nowhere)).toThrow(
      /infercache: the dashboard's chart library \(the `uplot` package.*run `npm install`/,
    );
  });

  it("ship a script that parses and keeps out of template syntax", () => {
    expect(() => new Function(DASHBOARD_SCRIPT)).not.toThrow();
    expect(DASHBOARD_SCRIPT).not.toContain("innerHTML");
    expect(DASHBOARD_SCRIPT).not.toContain("insertAdjacentHTML");
  });
});
