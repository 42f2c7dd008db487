/**
 * The gateway benchmark's load generator, in its own process: autocannon, 50 connections, POST of
 * the body read from stdin. Usage: node --import tsx bench/load.ts URL SECONDS < body.json
 */
import autocannon from "autocannon";

const [url, seconds] = process.argv.slice(2);
if (url === undefined || seconds === undefined) {
  process.stderr.write("usage: node --import tsx bench/load.ts URL SECONDS < body.json\n");
  process.exit(2);
}
let body = "";
for await (const chunk of process.stdin) body += String(chunk);
const result = await autocannon({
  url,
  method: "POST",
  headers: { "content-type": "application/json", authorization: "Bearer bench" },
  body,
  connections: 50,
  duration: Number(seconds),
});
process.stdout.write(
  JSON.stringify({
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx,
  }),
);
