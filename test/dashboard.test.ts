/**
 * The dashboard in a real browser (Debian's Chromium, driven by playwright-core): live numbers,
 * request badges, and user content shown as text. `.ci/run` installs chromium.
 */
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LlamaEngine } from "../src/llama.js";
import { createGateway, type Gateway } from "../src/server.js";
import { MODEL_PATH } from "./helpers/llama-upstream.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
let engine: LlamaEngine;
let gateway: Gateway;
let served: { url: string };
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `Chromium is missing at ${CHROMIUM}: apt-get install -y chromium (bash .ci/run does)`,
    );
  engine = await LlamaEngine.load({ modelPath: MODEL_PATH, modelName: "tiny" });
  gateway = createGateway({
    upstream: (request) => engine.handle(request),
    adminToken: "dash-token",
  });
  served = { url: await gateway.listen() };
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
  await engine?.close();
});

describe("the dashboard", () => {
  it("shows live hit rate, savings and request badges, and escapes user content", async () => {
    const page = await browser.newPage();
    await page.goto(served.url);
    await page.waitForSelector("#status:has-text('live')");
    const openai = new OpenAI({ apiKey: "k", baseURL: `${served.url}/v1`, maxRetries: 0 });
    const request = {
      model: "tiny",
      messages: [{ role: "user" as const, content: "dashboard" }],
      temperature: 0,
      max_tokens: 6,
    };
    await openai.chat.completions.create(request);
    await openai.chat.completions.create(request);
    const hostile = '<img src=x onerror="window.pwned=1">';
    await openai.chat.completions.create({ ...request, model: hostile });
    // Anonymous viewers get aggregates only: no request rows, no keys, no model names.
    await page.waitForFunction("document.getElementById('hit-rate')?.textContent === '33%'");
    expect(await page.locator("#recent .badge").count()).toBe(0);
    expect(await page.textContent("#recent")).toMatch(/shown to admins/);
    // With the admin token the per-request feed appears.
    await page.fill("#token", "dash-token");
    await page.dispatchEvent("#token", "change");
    await page.waitForSelector("#status:has-text('live (admin)')");
    await page.waitForSelector(".badge.hit");
    expect(await page.textContent(".badge.hit")).toMatch(/⚡ from cache: ~\d+\.\d+ s → \d+\.\d+ s/);
    await page.waitForFunction("document.querySelectorAll('#recent tr').length >= 3");
    expect(await page.textContent("#requests")).toBe("3");
    // The hostile model name is text in a cell, not markup.
    expect(await page.locator("#recent td.model", { hasText: "<img" }).count()).toBe(1);
    expect(await page.locator("#recent img").count()).toBe(0);
    expect(await page.evaluate("window.pwned")).toBeUndefined();
    // Search filters the table; "forget" deletes one answer with the admin token.
    await page.fill("#search", "<img");
    await page.waitForFunction(
      "[...document.querySelectorAll('#recent tr')].filter((tr) => !tr.classList.contains('hidden')).length === 1",
    );
    await page.fill("#search", "from cache");
    await page.waitForFunction(
      "[...document.querySelectorAll('#recent tr')].filter((tr) => !tr.classList.contains('hidden')).length === 1",
    );
    await page.click("#recent tr:not(.hidden) button.forget");
    await page.waitForSelector("#recent .forgot:has-text('forgotten')");
    const again = await openai.chat.completions.create(request).withResponse();
    expect(again.response.headers.get("x-infercache")).toBe("miss");
    await page.fill("#search", "");
    // The admin purge box.
    await page.fill("#token", "dash-token");
    await page.click("button[type=submit]");
    await page.waitForSelector("#purge-result:has-text('removed')");
    await page.screenshot({ path: join(tmpdir(), "infercache-dashboard.png"), fullPage: true });
    await page.close();
  }, 60_000);
});
