/**
 * The dashboard's script, run by the browser (plain ES2020, no build step; uPlot is loaded
 * before it as the global `uPlot`). It follows `/events`, or `/admin/events` with the admin
 * token (kept in sessionStorage), with fetch: EventSource cannot send a token.
 *
 * Rules it keeps: what comes from requests (model names, keys, error messages) is set with
 * `textContent` or as a property, never parsed as HTML; the sign-in is offered only when the
 * gateway's admin API is on (`adminApi` in the snapshot), and the admin panel, the model
 * breakdown and the request rows only while the token is accepted. Each chart's figure carries
 * `data-points` (points with a value) and `data-max` (the largest), and a text summary as its
 * `aria-label`, for tests and screen readers.
 *
 * Written as a raw string: no backticks and no dollar-brace in it.
 */

export const DASHBOARD_SCRIPT = String.raw`"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = "infercache-admin-token";
  const WINDOW_SECONDS = 600;
  const ROWS = 50;
  const COLORS = {
    hit: "#3ddc97", total: "#7aa7ff", time: "#3ddc97", tokens: "#c792ea", p50: "#7aa7ff", p99: "#ff9e64",
    routes: ["#f5c451", "#c792ea", "#ff9e64", "#5ccfe6", "#ff7b7b", "#9ece6a", "#e0af68", "#bb9af7"],
  };
  const FIELDS = ["requests", "served", "cacheable", "timeSavedSeconds", "tokensSaved", "p50Ms", "p99Ms"];
  const state = { series: null, admin: false, adminApi: false, token: "", notice: "", offset: 0 };

  const seconds = (ms) => (ms >= 1000 ? (ms / 1000).toFixed(1) + " s" : (ms / 1000).toFixed(3) + " s");
  const bytes = (n) => (n > 1048576 ? (n / 1048576).toFixed(1) + " MiB" : n > 1024 ? (n / 1024).toFixed(1) + " KiB" : n + " B");
  const whole = (n) => Math.round(n).toLocaleString("en-US");
  const millis = (v) => (v == null ? "–" : v === 0 ? "0 ms" : v >= 1000 ? (v / 1000).toFixed(2) + " s" : (v >= 10 ? String(Math.round(v)) : v.toFixed(1)) + " ms");
  const rate = (served, cacheable) => (cacheable > 0 ? Math.round((100 * served) / cacheable) + "%" : "–");
  const shortKey = (key) => key.slice(0, 10);
  function age(at) {
    const s = Math.max(0, Math.round((Date.now() + state.offset - at) / 1000));
    return s < 60 ? s + " s" : s < 3600 ? Math.floor(s / 60) + " min" : Math.floor(s / 3600) + " h";
  }
  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }
  function placeholder(body, text, columns) {
    const tr = document.createElement("tr");
    const td = cell(text, "empty");
    td.colSpan = columns;
    tr.append(td);
    body.replaceChildren(tr);
  }

  // ---- the series: merged by time, at most 10 minutes ----
  function setSeries(window) {
    const series = { start: window.start, routes: {} };
    for (const field of FIELDS) series[field] = window[field].slice();
    for (const route of Object.keys(window.routes)) series.routes[route] = window.routes[route].slice();
    state.series = series;
  }
  function mergeSeries(window) {
    const series = state.series;
    if (series === null) return setSeries(window);
    for (const route of Object.keys(window.routes)) {
      if (!series.routes[route]) series.routes[route] = series.requests.map(() => 0);
    }
    for (let i = 0; i < window.requests.length; i++) {
      const second = window.start + i;
      // Closed points never change: those already held are skipped.
      if (second < series.start + series.requests.length) continue;
      // Seconds this page missed (a stalled connection) stay empty rather than read as zero.
      while (series.start + series.requests.length < second) {
        for (const field of FIELDS) series[field].push(null);
        for (const route of Object.keys(series.routes)) series.routes[route].push(null);
      }
      for (const field of FIELDS) series[field].push(window[field][i]);
      for (const route of Object.keys(series.routes)) {
        const values = window.routes[route];
        series.routes[route].push(values ? values[i] : 0);
      }
    }
    const excess = series.requests.length - WINDOW_SECONDS;
    if (excess > 0) {
      for (const field of FIELDS) series[field].splice(0, excess);
      for (const route of Object.keys(series.routes)) series.routes[route].splice(0, excess);
      series.start += excess;
    }
  }

  // ---- charts (uPlot) ----
  const charts = {};
  const axis = (extra) => Object.assign({
    stroke: "#9aa2b5", font: "11px system-ui, sans-serif",
    grid: { stroke: "#2c3140", width: 1 }, ticks: { stroke: "#2c3140", width: 1 },
  }, extra || {});
  const fromZero = (u, min, max) => [0, max > 0 ? max * 1.15 : 1];
  function sparse(u, index) {
    let values = 0;
    for (const value of u.data[index]) if (value != null) values++;
    return values <= 60;
  }
  const line = (label, stroke, format, extra) => Object.assign({
    label, stroke, width: 2, spanGaps: true,
    points: { show: sparse, size: 6, fill: stroke },
    value: (u, v) => (v == null ? "" : format(v)),
  }, extra || {});
  function plotOf(id) {
    return $(id).querySelector(".plot");
  }
  function draw(id, signature, build, data) {
    let chart = charts[id];
    if (chart && chart.signature !== signature) {
      chart.plot.destroy();
      chart = undefined;
    }
    const element = plotOf(id);
    if (!chart) {
      const options = build();
      options.width = Math.max(200, element.clientWidth);
      options.height = 200;
      options.cursor = { drag: { x: false, y: false } };
      // At least a minute across, so the first few points are not spread over fractions of a second.
      options.scales.x = { time: true, range: (u, min, max) => {
        const end = max == null ? Date.now() / 1000 : max;
        return [min == null ? end - 60 : Math.min(min, end - 60), end];
      } };
      chart = { signature, plot: new uPlot(options, data, element) };
      charts[id] = chart;
    } else chart.plot.setData(data);
  }
  function describe(id, title, values, format) {
    let points = 0;
    let max = null;
    let last = null;
    for (const value of values) {
      if (value == null) continue;
      points++;
      last = value;
      if (max === null || value > max) max = value;
    }
    const figure = $(id);
    figure.dataset.points = String(points);
    figure.dataset.max = max === null ? "" : String(max);
    plotOf(id).setAttribute("aria-label", points === 0 ? title + ": no data yet" :
      title + ", last 10 minutes: latest " + format(last) + ", highest " + format(max));
  }
  function drawCharts() {
    const s = state.series;
    if (s === null) return;
    const times = s.requests.map((_, i) => s.start + i);
    const hitRate = s.served.map((served, i) => (served == null || !s.cacheable[i] ? null : (100 * served) / s.cacheable[i]));
    const percent = (v) => Math.round(v) + "%";
    draw("chart-hit-rate", "hit", () => ({
      scales: { y: { range: [0, 100] } },
      axes: [axis(), axis({ values: (u, ticks) => ticks.map(percent) })],
      series: [{}, line("Hit rate", COLORS.hit, percent)],
    }), [times, hitRate]);
    describe("chart-hit-rate", "Hit rate", hitRate, percent);

    const routes = Object.keys(s.routes).sort();
    const perSecond = (v) => v + "/s";
    draw("chart-requests", "requests:" + routes.join(","), () => ({
      scales: { y: { range: fromZero } },
      axes: [axis(), axis()],
      series: [{}, line("All", COLORS.total, perSecond)].concat(routes.map((route, i) =>
        line(route, COLORS.routes[i % COLORS.routes.length], perSecond, { width: 1.5, dash: [6, 3] }))),
    }), [times, s.requests].concat(routes.map((route) => s.routes[route])));
    describe("chart-requests", "Requests per second", s.requests, perSecond);

    draw("chart-saved", "saved", () => ({
      scales: { s: { range: fromZero }, tokens: { range: fromZero } },
      axes: [axis(), axis({ scale: "s", values: (u, ticks) => ticks.map((v) => v + " s") }),
        axis({ scale: "tokens", side: 1, grid: { show: false } })],
      series: [{}, line("Time saved", COLORS.time, (v) => v.toFixed(1) + " s", { scale: "s", fill: "rgba(61, 220, 151, 0.12)" }),
        line("Tokens saved", COLORS.tokens, whole, { scale: "tokens" })],
    }), [times, s.timeSavedSeconds, s.tokensSaved]);
    describe("chart-saved", "Time saved", s.timeSavedSeconds, (v) => v.toFixed(1) + " s");

    draw("chart-latency", "latency", () => ({
      scales: { y: { range: fromZero } },
      axes: [axis(), axis({ values: (u, ticks) => ticks.map(millis), size: 64 })],
      series: [{}, line("p50", COLORS.p50, millis), line("p99", COLORS.p99, millis)],
    }), [times, s.p50Ms, s.p99Ms]);
    describe("chart-latency", "Upstream latency p50", s.p50Ms, millis);
  }
  new ResizeObserver(() => {
    for (const id of Object.keys(charts)) {
      const width = Math.max(200, plotOf(id).clientWidth);
      const plot = charts[id].plot;
      if (plot.width !== width) plot.setSize({ width, height: 200 });
    }
  }).observe(document.querySelector(".charts"));

  // ---- cards and breakdowns ----
  function stats(s) {
    const served = s.hits + s.coalesced + (s.stale || 0);
    const total = served + s.misses;
    $("hit-rate").textContent = total === 0 ? "–" : Math.round((100 * served) / total) + "%";
    $("requests").textContent = String(total + s.bypassed);
    $("time-saved").textContent = seconds(s.timeSavedSeconds * 1000);
    $("tokens-saved").textContent = String(s.tokensSaved);
    $("cache-size").textContent = s.entries + " · " + bytes(s.bytes);
    const latency = s.upstreamLatencyMs;
    $("latency").textContent = !latency || latency.p50 == null ? "–" : latency.p99 < 1000
      ? millis(latency.p50).replace(" ms", "") + " · " + millis(latency.p99)
      : millis(latency.p50) + " · " + millis(latency.p99);
    if (s.routes) breakdown($("routes").tBodies[0], s.routes, "route");
  }
  function breakdown(body, view, what) {
    if (view.rows.length === 0 && view.others === null) return placeholder(body, "No requests yet.", 7);
    const rows = view.rows.map((row) => [row.name === null ? "(no " + what + ")" : row.name, row]);
    if (view.others !== null) rows.push(["(other " + what + "s)", view.others]);
    body.replaceChildren(...rows.map(([name, row]) => {
      const tr = document.createElement("tr");
      const label = cell(name, "model");
      label.title = name;
      tr.append(label, cell(whole(row.requests)), cell(rate(row.served, row.cacheable)),
        cell(seconds(row.timeSavedSeconds * 1000)), cell(whole(row.tokensSaved)),
        cell(millis(row.p50Ms)), cell(millis(row.p99Ms)));
      return tr;
    }));
  }

  // ---- recent requests (admins) ----
  function badge(event) {
    if (event.status >= 400) return ["error", "error " + event.status];
    if (event.outcome === "hit" || event.outcome === "coalesced") return ["hit", "⚡ from cache: ~" + seconds(event.savedMs) + " → " + seconds(event.durationMs)];
    if (event.outcome === "partial") return ["partial", "used cache"];
    return [event.outcome, event.outcome];
  }
  function row(event) {
    const tr = document.createElement("tr");
    const when = cell(age(event.at), "age");
    when.dataset.at = String(event.at);
    when.title = new Date(event.at).toLocaleString();
    const key = cell(event.key ? shortKey(event.key) : "–", "key");
    if (event.key) key.title = event.key;
    const model = cell(event.model || "–", "model");
    if (event.model) model.title = event.model;
    const [kind, label] = badge(event);
    const result = document.createElement("td");
    const span = document.createElement("span");
    span.className = "badge " + kind;
    span.textContent = label;
    result.append(span);
    const action = document.createElement("td");
    if (event.key) {
      const button = document.createElement("button");
      button.className = "forget";
      button.type = "button";
      button.title = "Delete this answer from the cache";
      button.setAttribute("aria-label", "Forget the answer " + shortKey(event.key));
      button.textContent = "forget";
      button.addEventListener("click", () => forget(event.key, action));
      action.append(button);
    }
    tr.append(when, key, cell(event.route), model, result, cell(seconds(event.durationMs)), action);
    tr.dataset.search = [event.key || "", event.route, event.model || "", label].join(" ").toLowerCase();
    return tr;
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
    while (body.children.length > ROWS) body.lastElementChild.remove();
  }
  function ages() {
    for (const td of document.querySelectorAll("#recent td.age")) td.textContent = age(Number(td.dataset.at));
  }

  // ---- admin actions ----
  async function admin(path, init) {
    const response = await fetch(path, Object.assign({}, init, {
      headers: Object.assign({ authorization: "Bearer " + state.token }, (init && init.headers) || {}),
    }));
    const body = await response.json().catch(() => ({ error: { message: response.statusText } }));
    return { ok: response.ok, body };
  }
  // The cards follow a purge or a forget at once, not at the next tick.
  async function refreshCards() {
    const answer = await admin("/admin/stats");
    if (answer.ok) stats(answer.body);
  }
  async function forget(key, where) {
    const answer = await admin("/admin/entries/" + encodeURIComponent(key), { method: "DELETE" });
    const note = document.createElement("span");
    note.className = "forgot";
    note.textContent = answer.ok ? (answer.body.deleted ? "forgotten" : "already gone") : answer.body.error.message;
    where.replaceChildren(note);
    if (answer.ok) await refreshCards();
  }
  $("purge").addEventListener("submit", async (e) => {
    e.preventDefault();
    const namespace = $("namespace").value.trim();
    const answer = await admin("/admin/purge", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(namespace === "" ? {} : { namespace }),
    });
    $("purge-result").textContent = answer.ok ? "removed " + answer.body.removed + " entries" : answer.body.error.message;
    if (answer.ok) await refreshCards();
  });

  // ---- who is looking: anonymous, or admin with the token ----
  function showRole(adminApi, isAdmin) {
    state.adminApi = adminApi;
    state.admin = isAdmin;
    $("signin").hidden = !adminApi;
    for (const id of ["token", "signin-button"]) $(id).hidden = isAdmin;
    document.querySelector("label[for=token]").hidden = isAdmin;
    $("signout").hidden = !isAdmin;
    $("admin").hidden = !isAdmin;
    $("models-section").hidden = !isAdmin;
    $("search").disabled = !isAdmin;
    if (!isAdmin) {
      placeholder($("recent"), adminApi
        ? "Recent requests are shown to admins: sign in with the admin token above."
        : "Recent requests are shown to admins, and this gateway's admin API is off (start it with --admin-token).", 7);
    }
  }
  function status(text) {
    $("status").textContent = state.notice === "" ? text : text + " · " + state.notice;
  }
  function message(type, parsed) {
    if (typeof parsed.now === "number") state.offset = parsed.now - Date.now();
    if (type === "snapshot") {
      showRole(parsed.adminApi, parsed.admin);
      setSeries(parsed.series);
      if (parsed.admin) {
        $("recent").textContent = "";
        for (const event of parsed.recent) add(event);
      }
    } else if (type === "stats") mergeSeries(parsed.series);
    else if (type === "request") return add(parsed);
    else return;
    stats(parsed.stats);
    if (parsed.models) breakdown($("models").tBodies[0], parsed.models, "model");
    drawCharts();
    ages();
  }
  // Follows an event stream with fetch (EventSource cannot send the admin token).
  let following;
  async function follow(token) {
    if (following) following.abort();
    const controller = new AbortController();
    following = controller;
    const asAdmin = token !== "";
    for (;;) {
      try {
        const response = await fetch(asAdmin ? "/admin/events" : "/events", {
          headers: asAdmin ? { authorization: "Bearer " + token } : {},
          signal: controller.signal,
        });
        if (!response.ok) {
          const body = await response.json().catch(() => ({ error: { message: response.statusText } }));
          if (asAdmin && (response.status === 401 || response.status === 404)) {
            sessionStorage.removeItem(TOKEN_KEY);
            state.notice = response.status === 401 ? "the admin token was refused" : "the admin API is off";
            return follow("");
          }
          status(body.error.message);
          return;
        }
        state.token = token;
        if (asAdmin) state.notice = "";
        status(asAdmin ? "live (admin)" : "live");
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf("\n\n")) !== -1) {
            const frame = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let type = "message";
            let data = "";
            for (const line of frame.split("\n")) {
              if (line.startsWith("event: ")) type = line.slice(7);
              else if (line.startsWith("data: ")) data += line.slice(6);
            }
            if (data !== "") message(type, JSON.parse(data));
          }
        }
      } catch (error) {
        if (controller.signal.aborted) return;
      }
      status("reconnecting…");
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }

  $("signin").addEventListener("submit", (e) => {
    e.preventDefault();
    const token = $("token").value.trim();
    if (token === "") return;
    sessionStorage.setItem(TOKEN_KEY, token);
    follow(token);
  });
  $("signout").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    $("token").value = "";
    state.notice = "";
    follow("");
  });
  $("search").addEventListener("input", () => {
    for (const tr of $("recent").children) filter(tr);
  });
  follow(sessionStorage.getItem(TOKEN_KEY) || "");
})();
`;
