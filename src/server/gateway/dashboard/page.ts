/**
 * The dashboard's HTML: the skeleton that `script.ts` fills. Nothing here comes from a request;
 * the only values put in are the gateway's own file names.
 */

export interface PageFiles {
  uplotScript: string;
  uplotStyle: string;
  script: string;
  style: string;
}

const CHARTS: [id: string, title: string][] = [
  ["chart-hit-rate", "Hit rate, per second"],
  ["chart-requests", "Requests per second, by route"],
  ["chart-saved", "Time and tokens saved (running total)"],
  ["chart-latency", "Upstream latency p50 / p99"],
];

export function dashboardPage(files: PageFiles): string {
  const charts = CHARTS.map(
    ([id, title]) =>
      `<figure class="chart" id="${id}"><figcaption>${title}</figcaption><div class="plot" role="img" aria-label="${title}: no data yet"></div></figure>`,
  ).join("\n    ");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="dark">
<title>infercache</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${files.uplotStyle}">
<link rel="stylesheet" href="${files.style}">
</head>
<body>
<header>
  <h1>⚡ infercache</h1>
  <p class="status" id="status" role="status" aria-live="polite">connecting…</p>
  <form id="signin" class="signin" hidden>
    <label for="token">Admin token</label>
    <input id="token" type="password" autocomplete="off" spellcheck="false">
    <button type="submit" id="signin-button">Sign in</button>
    <button type="button" id="signout" class="quiet" hidden>Sign out</button>
  </form>
</header>
<main>
  <section class="cards" aria-label="Totals since the gateway started">
    <div class="card"><h2 class="label">Hit rate</h2><p class="value" id="hit-rate">–</p></div>
    <div class="card"><h2 class="label">Requests</h2><p class="value" id="requests">0</p></div>
    <div class="card"><h2 class="label">Time saved</h2><p class="value" id="time-saved">0 s</p></div>
    <div class="card"><h2 class="label">Tokens saved</h2><p class="value" id="tokens-saved">0</p></div>
    <div class="card"><h2 class="label">Upstream p50 · p99</h2><p class="value" id="latency">–</p></div>
    <div class="card"><h2 class="label">Cache</h2><p class="value" id="cache-size">0</p></div>
  </section>
  <section class="charts" aria-label="The last 10 minutes">
    ${charts}
  </section>
  <section id="routes-section">
    <h2>By route</h2>
    <div class="table-wrap"><table id="routes"><thead><tr><th scope="col">Route</th><th scope="col">Requests</th><th scope="col">Hit rate</th><th scope="col">Time saved</th><th scope="col">Tokens saved</th><th scope="col">Upstream p50</th><th scope="col">p99</th></tr></thead>
    <tbody><tr><td class="empty" colspan="7">No requests yet.</td></tr></tbody></table></div>
  </section>
  <section id="models-section" hidden>
    <h2>By model <span class="note">(admins only: models belong to tenants)</span></h2>
    <div class="table-wrap"><table id="models"><thead><tr><th scope="col">Model</th><th scope="col">Requests</th><th scope="col">Hit rate</th><th scope="col">Time saved</th><th scope="col">Tokens saved</th><th scope="col">Upstream p50</th><th scope="col">p99</th></tr></thead>
    <tbody><tr><td class="empty" colspan="7">No requests yet.</td></tr></tbody></table></div>
  </section>
  <section id="recent-section">
    <div class="section-head"><h2>Recent requests</h2>
      <label class="search"><span class="visually-hidden">Search the recent requests</span>
      <input id="search" type="search" placeholder="Search key, route, model or result" autocomplete="off" disabled></label></div>
    <div class="table-wrap"><table><thead><tr><th scope="col">Age</th><th scope="col">Key</th><th scope="col">Route</th><th scope="col">Model</th><th scope="col">Result</th><th scope="col">Time</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
    <tbody id="recent"><tr><td class="empty" colspan="7">No requests yet.</td></tr></tbody></table></div>
  </section>
  <section id="admin" hidden>
    <h2>Admin: purge a namespace, or forget one answer with a row's "forget"</h2>
    <form id="purge">
      <label for="namespace">Namespace</label>
      <input id="namespace" placeholder="gateway" autocomplete="off">
      <button type="submit" id="purge-button">Purge</button>
      <span id="purge-result" role="status"></span>
    </form>
  </section>
</main>
<script src="${files.uplotScript}"></script>
<script src="${files.script}"></script>
</body>
</html>
`;
}
