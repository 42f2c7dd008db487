/**
 * The dashboard in a real browser (Debian's Chromium, driven by playwright-core) at 1400 and
 * 360 px: charts drawn by uPlot with data, live cards, request badges, rows told apart by key,
 * route, model and age, user content shown as text, the admin panel only with an accepted token
 * and only when the admin API is on. Screenshots go to $INFERCACHE_ARTIFACTS (default: a folder
 * under the OS temp dir), named in the test output. `.ci/run` installs chromium.
 */
import { existsSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LlamaEngine } from "../src/llama.js";
import { createGateway, type Gateway } from "../src/server.js";
import { MODEL_PATH } from "./helpers/llama-upstream.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARTIFACTS = process.env.INFERCACHE_ARTIFACTS ?? join(tmpdir(), "infercache-dashboard");
const TOKEN = "dash-token";
const WIDE = { width: 1400, height: 1000 };
const NARROW = { width: 360, height: 800 };
/** The series colours of script.ts, to find each chart's lines on its canvas. */
const HIT = [0x3d, 0xdc, 0x97];
const BLUE = [0x7a, 0xa7, 0xff];
const VIOLET = [0xc7, 0x92, 0xea];
const ORANGE = [0xff, 0x9e, 0x64];
const STROKES: Record<string, number[][]> = {
  "chart-hit-rate": [HIT],
  "chart-requests": [BLUE],
  "chart-saved": [HIT, VIOLET],
  "chart-latency": [BLUE, ORANGE],
};

// The page's globals, as far as the functions that run in it use them: the tests are
// type-checked without the DOM library (it would retype Node's timers for all of src/).
interface PageElement {
  textContent: string | null;
  dataset: Record<string, string | undefined>;
  width: number;
  height: number;
  getBoundingClientRect(): { width: number };
  getContext(kind: "2d"): {
    getImageData(x: number, y: number, width: number, height: number): { data: Uint8ClampedArray };
  } | null;
}
declare const document: {
  getElementById(id: string): PageElement | null;
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): { length: number };
  documentElement: { scrollWidth: number };
};
declare const window: { pwned?: unknown };
declare const sessionStorage: { length: number };

let engine: LlamaEngine;
let gateway: Gateway;
let closed: Gateway;
let url: string;
let closedUrl: string;
let browser: Browser;
let openai: OpenAI;
const errors: string[] = [];

const request = {
  model: "tiny",
  messages: [{ role: "user" as const, content: "dashboard" }],
  temperature: 0,
  max_tokens: 6,
};

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `Chromium is missing at ${CHROMIUM}: apt-get install -y chromium (bash .ci/run does)`,
    );
  mkdirSync(ARTIFACTS, { recursive: true });
  console.log(`dashboard screenshots: ${ARTIFACTS}`);
  engine = await LlamaEngine.load({ modelPath: MODEL_PATH, modelName: "tiny" });
  gateway = createGateway({ upstream: (r) => engine.handle(r), adminToken: TOKEN });
  closed = createGateway({ upstream: (r) => engine.handle(r) });
  url = await gateway.listen();
  closedUrl = await closed.listen();
  openai = new OpenAI({ apiKey: "k", baseURL: `${url}/v1`, maxRetries: 0 });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}, 90_000);
afterAll(async () => {
  await browser?.close();
  await gateway?.close();
  await closed?.close();
  await engine?.close();
});

/** A page on the dashboard, its script errors (and failed loads, unless `refusals`) noted. */
async function open(
  at: string,
  viewport: { width: number; height: number },
  refusals = false,
): Promise<Page> {
  const page = await browser.newPage({ viewport });
  page.setDefaultTimeout(20_000);
  page.on("pageerror", (error) => errors.push(`${viewport.width} px: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error" && !refusals)
      errors.push(`${viewport.width} px: ${message.text()}`);
  });
  await page.goto(at);
  await page.waitForSelector("#status:has-text('live')");
  return page;
}

async function shoot(page: Page, name: string): Promise<void> {
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  console.log(`  ${path}`);
}

/** Waits until every chart has points, then checks that each canvas shows its first line. */
async function expectChartsDrawn(page: Page): Promise<void> {
  await page.waitForFunction(() => {
    const figure = (id: string) => (document.getElementById(id) as PageElement).dataset;
    return (
      Number(figure("chart-hit-rate").max) > 0 &&
      Number(figure("chart-requests").max) >= 1 &&
      Number(figure("chart-saved").max) > 0 &&
      Number(figure("chart-latency").points) >= 1
    );
  });
  for (const [id, colours] of Object.entries(STROKES)) {
    const drawn = await page.evaluate(
      ({ id, colours }) => {
        const canvas = document.querySelector(`#${id} canvas`) as PageElement;
        const { data } = (
          canvas.getContext("2d") as NonNullable<ReturnType<PageElement["getContext"]>>
        ).getImageData(0, 0, canvas.width, canvas.height);
        let matching = 0;
        for (let i = 0; i < data.length; i += 4) {
          const near = colours.some(
            ([r, g, b]) =>
              Math.abs((data[i] as number) - (r as number)) +
                Math.abs((data[i + 1] as number) - (g as number)) +
                Math.abs((data[i + 2] as number) - (b as number)) <
              60,
          );
          if ((data[i + 3] as number) > 128 && near) matching++;
        }
        return { matching, width: canvas.getBoundingClientRect().width };
      },
      { id, colours },
    );
    expect(drawn.matching, `${id} has pixels of its line`).toBeGreaterThan(10);
    expect(drawn.width).toBeLessThanOrEqual(page.viewportSize()?.width as number);
  }
}

async function expectNoSidewaysScroll(page: Page): Promise<void> {
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  expect(width).toBeLessThanOrEqual(page.viewportSize()?.width as number);
}

// Chromium on a loaded 2-core CI machine: a selector may take seconds; the page's own
// wait (20 s) fails first and names the selector, well inside the test's 60 s.
describe("the dashboard", { timeout: 60_000 }, () => {
  it("at 1400 px: charts with data, cards, badges, rows told apart, user content as text, purge refreshes the cards", async () => {
    const page = await open(url, WIDE);
    // The admin API is on: the page offers a sign-in, but no admin panel without a token.
    expect(await page.isVisible("#token")).toBe(true);
    expect(await page.isVisible("#admin")).toBe(false);
    expect(await page.isVisible("#models-section")).toBe(false);
    await openai.chat.completions.create(request);
    await openai.chat.completions.create(request);
    const hostile = '<img src=x onerror="window.pwned=1">';
    await openai.chat.completions.create({ ...request, model: hostile });
    // Anonymous viewers get aggregates only: no request rows, no keys, no model names.
    await page.waitForFunction(() => document.getElementById("hit-rate")?.textContent === "33%");
    await expectChartsDrawn(page);
    await page.waitForSelector("#routes td:has-text('chat')");
    expect(await page.textContent("#latency")).toMatch(/^[\d.]+( m?s)? · [\d.]+ m?s$/);
    expect(await page.locator("#recent .badge").count()).toBe(0);
    expect(await page.textContent("#recent")).toMatch(/shown to admins: sign in/);
    expect(await page.content()).not.toContain("tiny");
    await shoot(page, "anonymous-1400");

    // With the admin token: the per-request rows, the model breakdown and the admin panel.
    await page.fill("#token", TOKEN);
    await page.click("#signin-button");
    await page.waitForSelector("#status:has-text('live (admin)')");
    expect(await page.isVisible("#admin")).toBe(true);
    expect(await page.isVisible("#token")).toBe(false);
    await page.waitForSelector(".badge.hit");
    expect(await page.textContent(".badge.hit")).toMatch(/⚡ from cache: ~\d+\.\d+ s → \d+\.\d+ s/);
    await page.waitForFunction(() => document.querySelectorAll("#recent tr").length >= 3);
    expect(await page.textContent("#requests")).toBe("3");
    // Rows are told apart by a short key, route, model and age; no prompt text.
    const first = await page.locator("#recent tr").last().locator("td").allTextContents();
    expect(first[0]).toMatch(/^\d+ s$/);
    expect(first[1]).toMatch(/^[0-9a-f]{10}$/);
    expect(first.slice(2, 4)).toEqual(["chat", "tiny"]);
    expect(await page.textContent("#recent")).not.toContain("dashboard");
    await page.waitForSelector("#models td:has-text('tiny')");
    // The hostile model name is text in the cells, not markup.
    expect(await page.locator("#recent td.model", { hasText: "<img" }).count()).toBe(1);
    expect(await page.locator("#models td", { hasText: "<img" }).count()).toBe(1);
    expect(await page.locator("img").count()).toBe(0);
    expect(await page.evaluate(() => window.pwned)).toBeUndefined();
    // Search filters the table; "forget" deletes one answer with the admin token.
    await page.fill("#search", "<img");
    await page.waitForFunction(
      () => document.querySelectorAll("#recent tr:not(.hidden)").length === 1,
    );
    await page.fill("#search", "from cache");
    await page.waitForFunction(
      () => document.querySelectorAll("#recent tr:not(.hidden)").length === 1,
    );
    await page.click("#recent tr:not(.hidden) button.forget");
    await page.waitForSelector("#recent .forgot:has-text('forgotten')");
    const again = await openai.chat.completions.create(request).withResponse();
    expect(again.response.headers.get("x-infercache")).toBe("miss");
    await page.fill("#search", "");
    await page.waitForFunction(() =>
      document.getElementById("cache-size")?.textContent?.startsWith("2 "),
    );
    await shoot(page, "admin-1400");
    // A purge: the cards ask for the stats at once instead of waiting for the next tick.
    const refreshed = page.waitForResponse((response) => response.url().endsWith("/admin/stats"));
    await page.click("#purge-button");
    await page.waitForSelector("#purge-result:has-text('removed 2 entries')");
    expect((await refreshed).ok()).toBe(true);
    await page.waitForFunction(
      () => document.getElementById("cache-size")?.textContent === "0 · 0 B",
    );
    await page.close();
  }, 60_000);

  it("at 360 px: one column, no sideways scroll, charts drawn, the admin panel only after sign-in", async () => {
    await openai.chat.completions.create(request);
    const page = await open(url, NARROW);
    await expectChartsDrawn(page);
    await expectNoSidewaysScroll(page);
    expect(await page.isVisible("#admin")).toBe(false);
    expect(await page.isVisible("#models-section")).toBe(false);
    expect(await page.locator("#recent .badge").count()).toBe(0);
    await shoot(page, "anonymous-360");
    await page.fill("#token", TOKEN);
    await page.click("#signin-button");
    await page.waitForSelector("#status:has-text('live (admin)')");
    await page.waitForSelector("#recent .badge");
    expect(await page.isVisible("#admin")).toBe(true);
    await expectNoSidewaysScroll(page);
    await shoot(page, "admin-360");
    // The token lives for the tab's session: a reload stays signed in; signing out forgets it.
    await page.reload();
    await page.waitForSelector("#status:has-text('live (admin)')");
    await page.click("#signout");
    await page.waitForSelector("#status:text-is('live')");
    expect(await page.isVisible("#admin")).toBe(false);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    await page.close();
  }, 60_000);

  it("a refused token leaves the page anonymous and says so", async () => {
    const page = await open(url, WIDE, true);
    await page.fill("#token", "not-the-token");
    await page.click("#signin-button");
    await page.waitForSelector("#status:has-text('the admin token was refused')");
    expect(await page.isVisible("#admin")).toBe(false);
    expect(await page.isVisible("#token")).toBe(true);
    await page.close();
  }, 30_000);

  it("without an admin token on the gateway there is no sign-in and no admin panel", async () => {
    const page = await open(closedUrl, NARROW);
    await page.waitForSelector("#recent td:has-text('admin API is off')");
    expect(await page.isVisible("#signin")).toBe(false);
    expect(await page.isVisible("#admin")).toBe(false);
    expect(await page.isVisible("#models-section")).toBe(false);
    await shoot(page, "no-admin-api-360");
    await page.close();
  }, 30_000);

  it("ran without script errors in any page", () => {
    expect(errors).toEqual([]);
  });
});
