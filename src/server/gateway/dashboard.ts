/**
 * The gateway's dashboard: one self-contained HTML page (no build step) and its event feed.
 *
 * Who sees what: anyone who can reach the gateway sees aggregates (hit rate, requests, time and
 * tokens saved, cache size, failures) on `/events`; the per-request feed (route, model, badge,
 * store key) is on `/admin/events`, behind the admin token, because a request's key and model
 * belong to its tenant. The feed keeps the last 50 requests with model names cut to 64
 * characters, serves at most `maxViewers` streams at once, and drops a viewer that stops reading
 * (see `SseChannel`). User content is only ever set as text in the page, never as HTML.
 */

import type { Answer } from "../../llm/answer.js";
import type { LlmResult } from "../../llm/call.js";
import { HttpError } from "../http/errors.js";
import { SseChannel } from "../http/sse.js";
import type { GatewaySnapshot } from "./metrics.js";

export interface DashboardEvent {
  at: number;
  route: string;
  model: string | undefined;
  outcome: string;
  status: number;
  durationMs: number;
  savedMs: number;
  savedTokens: number;
  /** The store key (chat and text completions), for the admin's "forget" action. */
  key: string | undefined;
}

const MAX_MODEL = 64;
/** Streams for admins, on top of the anonymous viewers. */
const ADMIN_VIEWERS = 4;

/** Keeps the recent requests and pushes stats (to everyone) and requests (to admins). */
export class DashboardFeed {
  readonly recent: DashboardEvent[] = [];
  readonly #admins = new Set<SseChannel>();
  readonly #viewers = new Set<SseChannel>();
  readonly #keep: number;
  readonly #maxViewers: number;
  readonly #snapshot: () => GatewaySnapshot;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    snapshot: () => GatewaySnapshot,
    options: { keep?: number; maxViewers?: number } = {},
  ) {
    this.#snapshot = snapshot;
    this.#keep = options.keep ?? 50;
    this.#maxViewers = options.maxViewers ?? 16;
  }

  get viewers(): number {
    return this.#viewers.size;
  }

  record(result: LlmResult): void {
    const model =
      result.model === undefined
        ? undefined
        : result.model.length > MAX_MODEL
          ? `${result.model.slice(0, MAX_MODEL - 1)}…`
          : result.model;
    const event: DashboardEvent = {
      at: Date.now(),
      route: result.route,
      model,
      outcome: result.outcome,
      status: result.status,
      durationMs: result.durationMs,
      savedMs: result.savedMs,
      savedTokens: result.savedTokens,
      key: result.key,
    };
    this.recent.push(event);
    if (this.recent.length > this.#keep) this.recent.shift();
    if (this.#admins.size === 0) return;
    const data = JSON.stringify(event);
    for (const channel of this.#admins) channel.send(data, "request");
  }

  /** Ends every open stream (a shutdown does not wait for dashboards to disconnect). */
  closeAll(): void {
    for (const channel of [...this.#viewers]) channel.close();
  }

  /** A viewer's event stream: a snapshot first, then stats every second (and requests for admins). */
  stream(admin: boolean): Answer {
    // Admins have places of their own: anonymous viewers cannot lock them out.
    const anonymous = this.#viewers.size - this.#admins.size;
    if (admin ? this.#admins.size >= ADMIN_VIEWERS : anonymous >= this.#maxViewers) {
      throw new HttpError(
        503,
        `the dashboard has ${admin ? ADMIN_VIEWERS : this.#maxViewers} ${admin ? "admin " : ""}viewers already; close one and retry`,
      );
    }
    const channel = new SseChannel();
    this.#viewers.add(channel);
    if (admin) this.#admins.add(channel);
    channel.onClose(() => {
      this.#viewers.delete(channel);
      this.#admins.delete(channel);
      if (this.#viewers.size === 0) {
        clearInterval(this.#timer);
        this.#timer = undefined;
      }
    });
    channel.send(
      JSON.stringify({ stats: this.#snapshot(), recent: admin ? this.recent : [], admin }),
      "snapshot",
    );
    this.#timer ??= setInterval(() => {
      const data = JSON.stringify(this.#snapshot());
      for (const viewer of this.#viewers) viewer.send(data, "stats");
    }, 1000);
    this.#timer.unref();
    return {
      status: 200,
      headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
      body: channel.body(),
    };
  }
}

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>infercache</title>
<style>
  :root { --bg: #0f1117; --panel: #171a23; --line: #262b38; --text: #e6e8ee; --muted: #8b93a7; --hit: #3ddc97; --partial: #f5c451; --miss: #8b93a7; --bad: #ff6b6b; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg); color: var(--text); }
  header { display: flex; align-items: baseline; gap: 12px; padding: 20px 28px 8px; }
  header h1 { font-size: 20px; margin: 0; letter-spacing: 0.2px; }
  header .status { color: var(--muted); font-size: 13px; }
  main { padding: 8px 28px 28px; display: grid; gap: 18px; }
  .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; }
  .card { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 14px 16px; }
  .card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: 0.6px; }
  .card .value { font-size: 26px; font-weight: 600; margin-top: 4px; font-variant-numeric: tabular-nums; }
  section { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 14px 16px; }
  section h2 { margin: 0 0 10px; font-size: 14px; color: var(--muted); font-weight: 600; }
  table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
  th, td { text-align: left; padding: 7px 8px; border-top: 1px solid var(--line); white-space: nowrap; }
  th { color: var(--muted); font-weight: 500; font-size: 12px; border-top: none; }
  td.model { max-width: 280px; overflow: hidden; text-overflow: ellipsis; }
  .badge { display: inline-block; padding: 2px 8px; border-radius: 999px; font-size: 12px; font-weight: 600; }
  .badge.hit, .badge.coalesced { background: rgba(61, 220, 151, 0.14); color: var(--hit); }
  .badge.partial { background: rgba(245, 196, 81, 0.14); color: var(--partial); }
  .badge.miss, .badge.bypass { background: rgba(139, 147, 167, 0.14); color: var(--miss); }
  .badge.error { background: rgba(255, 107, 107, 0.14); color: var(--bad); }
  form { display: flex; gap: 8px; flex-wrap: wrap; align-items: center; }
  input { background: var(--bg); color: var(--text); border: 1px solid var(--line); border-radius: 6px; padding: 7px 10px; font: inherit; }
  button { background: #2d6cdf; color: white; border: 0; border-radius: 6px; padding: 8px 14px; font: inherit; cursor: pointer; }
  #purge-result, .forgot { color: var(--muted); }
  .section-head { display: flex; justify-content: space-between; align-items: center; gap: 12px; margin-bottom: 10px; }
  .section-head h2 { margin: 0; }
  #search { min-width: 260px; }
  button.forget { background: transparent; color: var(--muted); border: 1px solid var(--line); padding: 2px 8px; font-size: 12px; }
  button.forget:hover { color: var(--text); border-color: var(--muted); }
  tr.hidden { display: none; }
  .empty { color: var(--muted); padding: 10px 8px; }
</style>
</head>
<body>
<header><h1>⚡ infercache</h1><span class="status" id="status">connecting…</span></header>
<main>
  <div class="cards">
    <div class="card"><div class="label">Hit rate</div><div class="value" id="hit-rate">–</div></div>
    <div class="card"><div class="label">Requests</div><div class="value" id="requests">0</div></div>
    <div class="card"><div class="label">Time saved</div><div class="value" id="time-saved">0 s</div></div>
    <div class="card"><div class="label">Tokens saved</div><div class="value" id="tokens-saved">0</div></div>
    <div class="card"><div class="label">Cache</div><div class="value" id="cache-size">0</div></div>
  </div>
  <section>
    <div class="section-head"><h2>Recent requests</h2>
      <input id="search" type="search" placeholder="Search model, result or key" autocomplete="off"></div>
    <table><thead><tr><th>When</th><th>Route</th><th>Model</th><th>Result</th><th>Time</th><th></th></tr></thead>
    <tbody id="recent"><tr><td class="empty" colspan="6">No requests yet.</td></tr></tbody></table>
  </section>
  <section>
    <h2>Admin: purge a namespace, or forget one answer with a row's "forget"</h2>
    <form id="purge">
      <input id="token" type="password" placeholder="Admin token" autocomplete="off">
      <input id="namespace" placeholder="Namespace (default: gateway)">
      <button type="submit">Purge</button>
      <span id="purge-result"></span>
    </form>
  </section>
</main>
<script>
  const $ = (id) => document.getElementById(id);
  const seconds = (ms) => (ms >= 1000 ? (ms / 1000).toFixed(1) + " s" : (ms / 1000).toFixed(3) + " s");
  const bytes = (n) => (n > 1048576 ? (n / 1048576).toFixed(1) + " MiB" : n > 1024 ? (n / 1024).toFixed(1) + " KiB" : n + " B");
  function badge(event) {
    if (event.status >= 400) return ["error", "error " + event.status];
    if (event.outcome === "hit" || event.outcome === "coalesced") return ["hit", "⚡ from cache: ~" + seconds(event.savedMs) + " → " + seconds(event.durationMs)];
    if (event.outcome === "partial") return ["partial", "used cache"];
    return [event.outcome, event.outcome];
  }
  function row(event) {
    const tr = document.createElement("tr");
    const cells = [new Date(event.at).toLocaleTimeString(), event.route, event.model || "–"];
    for (const [i, text] of cells.entries()) {
      const td = document.createElement("td");
      td.textContent = text;
      if (i === 2) td.className = "model";
      tr.append(td);
    }
    const [kind, label] = badge(event);
    const td = document.createElement("td");
    const span = document.createElement("span");
    span.className = "badge " + kind;
    span.textContent = label;
    td.append(span);
    const time = document.createElement("td");
    time.textContent = seconds(event.durationMs);
    const action = document.createElement("td");
    if (event.key) {
      const button = document.createElement("button");
      button.className = "forget";
      button.type = "button";
      button.title = "Delete this answer from the cache (admin token)";
      button.textContent = "forget";
      button.addEventListener("click", () => forget(event.key, action));
      action.append(button);
    }
    tr.append(td, time, action);
    tr.dataset.search = [event.route, event.model || "", label, event.key || ""].join(" ").toLowerCase();
    return tr;
  }
  async function forget(key, cell) {
    const response = await fetch("/admin/entries/" + encodeURIComponent(key), {
      method: "DELETE",
      headers: { authorization: "Bearer " + $("token").value },
    });
    const body = await response.json();
    const note = document.createElement("span");
    note.className = "forgot";
    note.textContent = response.ok ? (body.deleted ? "forgotten" : "already gone") : body.error.message;
    cell.textContent = "";
    cell.append(note);
  }
  function filter(tr) {
    const query = $("search").value.trim().toLowerCase();
    tr.classList.toggle("hidden", query !== "" && !(tr.dataset.search || "").includes(query));
  }
  function add(event) {
    const body = $("recent");
    if (body.querySelector(".empty")) body.textContent = "";
    const tr = row(event);
    filter(tr);
    body.prepend(tr);
    while (body.children.length > 50) body.lastElementChild.remove();
  }
  function stats(s) {
    const served = s.hits + s.coalesced;
    const total = served + s.misses;
    $("hit-rate").textContent = total === 0 ? "–" : Math.round((100 * served) / total) + "%";
    $("requests").textContent = String(total + s.bypassed);
    $("time-saved").textContent = seconds(s.timeSavedSeconds * 1000);
    $("tokens-saved").textContent = String(s.tokensSaved);
    $("cache-size").textContent = s.entries + " · " + bytes(s.bytes);
  }
  // Follows an event stream with fetch (EventSource cannot send the admin token).
  let following;
  async function follow(token) {
    following?.abort();
    const controller = new AbortController();
    following = controller;
    const admin = token !== "";
    for (;;) {
      try {
        const response = await fetch(admin ? "/admin/events" : "/events", {
          headers: admin ? { authorization: "Bearer " + token } : {},
          signal: controller.signal,
        });
        if (!response.ok) {
          const body = await response.json().catch(() => ({ error: { message: response.statusText } }));
          $("status").textContent = body.error.message;
          if (admin) return follow("");
          return;
        }
        $("status").textContent = admin ? "live (admin)" : "live";
        $("recent").textContent = "";
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf("\\n\\n")) !== -1) {
            const frame = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let type = "message";
            let data = "";
            for (const line of frame.split("\\n")) {
              if (line.startsWith("event: ")) type = line.slice(7);
              else if (line.startsWith("data: ")) data += line.slice(6);
            }
            if (data === "") continue;
            const parsed = JSON.parse(data);
            if (type === "snapshot") {
              stats(parsed.stats);
              if (!parsed.admin) empty("Recent requests are shown to admins: enter the admin token below.");
              for (const event of parsed.recent) add(event);
            } else if (type === "stats") stats(parsed);
            else if (type === "request") add(parsed);
          }
        }
      } catch (error) {
        if (controller.signal.aborted) return;
      }
      $("status").textContent = "reconnecting…";
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
  function empty(text) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.className = "empty";
    td.colSpan = 6;
    td.textContent = text;
    tr.append(td);
    $("recent").textContent = "";
    $("recent").append(tr);
  }
  follow(sessionStorage.getItem("infercache-admin-token") || "");
  $("token").value = sessionStorage.getItem("infercache-admin-token") || "";
  $("token").addEventListener("change", () => {
    sessionStorage.setItem("infercache-admin-token", $("token").value);
    follow($("token").value);
  });
  $("search").addEventListener("input", () => { for (const tr of $("recent").children) filter(tr); });
  $("purge").addEventListener("submit", async (e) => {
    e.preventDefault();
    const namespace = $("namespace").value.trim();
    const response = await fetch("/admin/purge", {
      method: "POST",
      headers: { authorization: "Bearer " + $("token").value, "content-type": "application/json" },
      body: JSON.stringify(namespace === "" ? {} : { namespace }),
    });
    const body = await response.json();
    $("purge-result").textContent = response.ok ? "removed " + body.removed + " entries" : body.error.message;
  });
</script>
</body>
</html>
`;
