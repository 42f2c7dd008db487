/**
 * The dashboard's style sheet. Colours keep a contrast of at least 4.5:1 against the panels
 * (WCAG AA for text); the layout is one column up to 720 px and stays within 360 px (tables
 * scroll inside their box rather than widening the page).
 */

export const DASHBOARD_STYLE = `
:root { --bg: #0f1117; --panel: #171a23; --line: #2c3140; --text: #e6e8ee; --muted: #9aa2b5; --hit: #3ddc97; --partial: #f5c451; --miss: #9aa2b5; --bad: #ff7b7b; --accent: #2d6cdf; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg); color: var(--text); }
[hidden] { display: none !important; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
:focus-visible { outline: 2px solid #7aa7ff; outline-offset: 2px; }
header { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 16px; padding: 18px 24px 8px; }
header h1 { font-size: 20px; margin: 0; letter-spacing: 0.2px; }
header .status { color: var(--muted); font-size: 13px; margin: 0; flex: 1 1 auto; }
.signin { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; }
.signin label, #purge label { color: var(--muted); font-size: 13px; }
main { padding: 8px 24px 28px; display: grid; gap: 16px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; min-width: 0; }
.card .label { margin: 0; color: var(--muted); font-size: 12px; font-weight: 500; text-transform: uppercase; letter-spacing: 0.6px; }
.card .value { margin: 4px 0 0; font-size: 24px; font-weight: 600; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 520px), 1fr)); gap: 12px; }
.chart { margin: 0; background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; min-width: 0; }
.chart figcaption { color: var(--muted); font-size: 13px; font-weight: 600; margin-bottom: 6px; }
.chart .plot { width: 100%; min-height: 200px; }
.u-legend { color: var(--text); font-size: 12px; }
.u-legend .u-marker { border-radius: 2px; }
.u-legend .u-series:first-child { display: none; }
section:not(.cards):not(.charts) { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; min-width: 0; }
section h2 { margin: 0 0 10px; font-size: 14px; color: var(--muted); font-weight: 600; }
section h2 .note { font-weight: 400; }
.table-wrap { overflow-x: auto; max-width: 100%; position: relative; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 7px 8px; border-top: 1px solid var(--line); white-space: nowrap; }
th { color: var(--muted); font-weight: 500; font-size: 12px; border-top: none; }
td.model { max-width: 260px; overflow: hidden; text-overflow: ellipsis; }
td.key { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; color: var(--muted); }
.badge { display: inline-block; padding: 2px 8px; border-radius: 999px; font-size: 12px; font-weight: 600; }
.badge.hit, .badge.coalesced { background: rgba(61, 220, 151, 0.14); color: var(--hit); }
.badge.partial { background: rgba(245, 196, 81, 0.14); color: var(--partial); }
.badge.miss, .badge.bypass { background: rgba(154, 162, 181, 0.14); color: var(--miss); }
.badge.error { background: rgba(255, 123, 123, 0.14); color: var(--bad); }
form { display: flex; gap: 8px; flex-wrap: wrap; align-items: center; }
input { background: var(--bg); color: var(--text); border: 1px solid var(--line); border-radius: 6px; padding: 7px 10px; font: inherit; max-width: 100%; }
input::placeholder { color: #7d8598; }
button { background: var(--accent); color: white; border: 0; border-radius: 6px; padding: 8px 14px; font: inherit; cursor: pointer; }
button.quiet, button.forget { background: transparent; color: var(--muted); border: 1px solid var(--line); }
button.forget { padding: 2px 8px; font-size: 12px; }
button.quiet:hover, button.forget:hover { color: var(--text); border-color: var(--muted); }
#purge-result, .forgot { color: var(--muted); }
.section-head { display: flex; flex-wrap: wrap; justify-content: space-between; align-items: center; gap: 8px 12px; margin-bottom: 10px; }
.section-head h2 { margin: 0; }
.search { flex: 0 1 300px; min-width: 0; position: relative; }
.search input { width: 100%; }
tr.hidden { display: none; }
.empty { color: var(--muted); padding: 10px 8px; white-space: normal; }
@media (max-width: 720px) {
  header { padding: 14px 12px 6px; }
  main { padding: 6px 12px 20px; gap: 12px; }
  .card .value { font-size: 20px; }
  .chart, section:not(.cards):not(.charts) { padding: 10px; }
}
`;
