/**
 * The dashboard's files: the page, its script and style, and uPlot (the chart library, a
 * runtime dependency) read from the installed package once, when the gateway is created.
 *
 * Every file but the page is served under a name that holds a hash of its content
 * (`/dashboard/uplot.1a2b3c4d5e6f.js`), so browsers may keep it for a year without asking again,
 * and a new version is a new name. The page itself is `no-cache` (it names the current files)
 * and carries a Content-Security-Policy that allows scripts and styles from the gateway only:
 * nothing inline runs, so even a slip that put user content into the page as HTML could not
 * run a script. The page's own code sets user content as text only.
 */

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { Answer } from "../../../llm/answer.js";
import { HttpError } from "../../http/errors.js";
import type { HttpRequest } from "../../http/node-http.js";
import { dashboardPage } from "./page.js";
import { DASHBOARD_SCRIPT } from "./script.js";
import { DASHBOARD_STYLE } from "./style.js";

export const ASSET_PREFIX = "/dashboard/";

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

interface Asset {
  type: string;
  body: Uint8Array;
}

export interface DashboardAssets {
  /** GET / */
  page(): Answer;
  /** GET /dashboard/* */
  asset(request: HttpRequest): Answer;
  /** The files by path, e.g. `/dashboard/uplot.1a2b3c4d5e6f.js` (for tests and tooling). */
  readonly paths: readonly string[];
}

let installed: DashboardAssets | undefined;

/**
 * Reads uPlot from the installed package (resolved from `from`, this module by default: read
 * once per process) and builds the dashboard's files. Throws if uPlot cannot be found: the
 * gateway does not start with a dashboard that cannot draw.
 */
export function dashboardAssets(from?: string | URL): DashboardAssets {
  if (from === undefined) {
    installed ??= buildAssets(import.meta.url);
    return installed;
  }
  return buildAssets(from);
}

function buildAssets(from: string | URL): DashboardAssets {
  const uplot = readUplot(from);
  const files = new Map<string, Asset>();
  const add = (name: string, extension: string, type: string, body: Uint8Array | string) => {
    const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
    const hash = createHash("sha256").update(bytes).digest("hex").slice(0, 12);
    const path = `${ASSET_PREFIX}${name}.${hash}.${extension}`;
    files.set(path, { type, body: bytes });
    return path;
  };
  const javascript = "text/javascript; charset=utf-8";
  const css = "text/css; charset=utf-8";
  const html = dashboardPage({
    uplotScript: add("uplot", "js", javascript, uplot.script),
    uplotStyle: add("uplot", "css", css, uplot.style),
    script: add("app", "js", javascript, DASHBOARD_SCRIPT),
    style: add("app", "css", css, DASHBOARD_STYLE),
  });
  return {
    paths: [...files.keys()],
    page: () => ({
      status: 200,
      headers: {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-cache",
        "content-security-policy": CSP,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
      },
      body: html,
    }),
    asset: (request) => {
      const file = files.get(request.path);
      if (file === undefined) {
        throw new HttpError(
          404,
          "no such dashboard file; reload the page (GET /) for the current names",
        );
      }
      return {
        status: 200,
        headers: {
          "content-type": file.type,
          "cache-control": "public, max-age=31536000, immutable",
          "x-content-type-options": "nosniff",
        },
        body: file.body,
      };
    },
  };
}

function readUplot(from: string | URL): { script: Uint8Array; style: Uint8Array } {
  const require = createRequire(from);
  let script: string;
  let style: string;
  try {
    script = require.resolve("uplot/dist/uPlot.iife.min.js");
    style = require.resolve("uplot/dist/uPlot.min.css");
  } catch (error) {
    throw new Error(
      "infercache: the dashboard's chart library (the `uplot` package, a dependency of infercache) is not installed where infercache can find it; run `npm install` in the project (or `npm install uplot` next to infercache)",
      { cause: error },
    );
  }
  return { script: readFileSync(script), style: readFileSync(style) };
}
