/**
 * Where a gateway request's CPU goes: runs one server under load (its own process, the load
 * generator in another), samples its CPU every 100 µs over the load only (the inspector's
 * profiler, what `--cpu-prof` uses, after a 2 s warm-up) and prints the functions with the most
 * self time per request served, the self time by source file, and the src/ functions' inclusive
 * synchronous time. `INFERCACHE_BENCH_DIST=1` (after `npm run build`) profiles `dist/`, whose
 * line numbers are right.
 *
 *   node --import tsx bench/gateway-profile.ts hit [memory|sqlite] [plain|stream]
 *   node --import tsx bench/gateway-profile.ts miss [memory|sqlite]
 *   node --import tsx bench/gateway-profile.ts bare
 *   node --import tsx bench/gateway-profile.ts proxy
 *
 * Options after the mode: `--seconds=10`, `--connections=50` (10 for misses), `--rate=N`
 * (requests/s overall; without it, as fast as the server goes), `--interval=250` (µs between
 * samples; sampling costs the process CPU time of its own, so the "measured CPU" line is only a
 * ceiling: take CPU figures from the benchmark, shares from here), `--top=30`, `--keep=DIR` (leave
 * the .cpuprofile there, for Chrome DevTools or speedscope).
 *
 * Profile at a fixed rate to compare servers: at saturation a slower server leaves its client
 * idle more often, so each loopback write also pays for waking the client (on a VM, an
 * inter-processor interrupt), which the profile books to `writev`.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runLoad, type ServerProcess, startServer, stopLoad } from "./gateway-procs.js";
import type { ServerConfig } from "./gateway-server.js";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const args = process.argv.slice(2);
const flag = (name: string, fallback: string) =>
  args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const [mode = "hit", storeArg = "memory", shape = "plain"] = args.filter(
  (a) => !a.startsWith("--"),
);
const store = storeArg === "sqlite" ? "sqlite" : "memory";
const seconds = Number(flag("seconds", "10"));
const connections = Number(flag("connections", mode === "miss" ? "10" : "50"));
const top = Number(flag("top", "30"));
const keep = flag("keep", "");
const rate = flag("rate", "");
const interval = Number(flag("interval", "250"));

const HEADERS = { "content-type": "application/json", authorization: "Bearer bench" };
const PLAIN = JSON.stringify({
  model: "bench",
  messages: [
    { role: "system", content: "You are a benchmark." },
    { role: "user", content: "Which answer is cached?" },
  ],
  temperature: 0,
  max_tokens: 200,
});
// A streamed request has a prompt of its own, so its record is an SSE body (the key does not
// depend on `stream`: the plain prompt would be served from the plain record, converted).
const STREAM = JSON.stringify({
  ...JSON.parse(PLAIN),
  messages: [
    { role: "system", content: "You are a benchmark." },
    { role: "user", content: "Which streamed answer is cached?" },
  ],
  stream: true,
});
const body = shape === "stream" ? STREAM : PLAIN;

const dir = keep === "" ? mkdtempSync(join(tmpdir(), "infercache-profile-")) : keep;
const servers: ServerProcess[] = [];
try {
  const upstream = await startServer("upstream", { kind: "upstream" });
  servers.push(upstream);
  let target: ServerProcess;
  if (mode === "bare" || mode === "proxy") {
    let config: ServerConfig;
    if (mode === "proxy") config = { kind: "proxy", upstream: upstream.url };
    else {
      // The gateway's own hit, byte for byte, as in the benchmark.
      const gateway = await startServer("gateway", {
        kind: "gateway",
        store: "memory",
        upstream: `${upstream.url}/v1`,
      });
      servers.push(gateway);
      const answer = async () => {
        const response = await fetch(`${gateway.url}/v1/chat/completions`, {
          method: "POST",
          headers: HEADERS,
          body,
        });
        const headers: Record<string, string> = {};
        response.headers.forEach((value, name) => {
          if (!["date", "connection", "keep-alive", "content-length"].includes(name))
            headers[name] = value;
        });
        return { status: response.status, headers, body: await response.text() };
      };
      await answer();
      config = { kind: "bare", ...(await answer()) };
    }
    target = await startServer(mode, config);
  } else {
    target = await startServer(`gateway ${store}`, {
      kind: "gateway",
      store,
      upstream: `${upstream.url}/v1`,
    });
    if (mode === "hit") {
      await fetch(`${target.url}/v1/chat/completions`, {
        method: "POST",
        headers: HEADERS,
        body,
      }).then((r) => r.text());
    }
  }
  servers.push(target);
  // Warm up (JIT, connections), then profile the load only.
  await runLoad({
    kind: mode === "miss" || mode === "proxy" ? "distinct" : "throughput",
    url: `${target.url}/v1/chat/completions`,
    body,
    headers: HEADERS,
    connections,
    seconds: 2,
  });
  const before = await target.stats();
  const cpuBefore = await target.cpu();
  await target.profileStart(interval);
  const result = await runLoad({
    kind: mode === "miss" || mode === "proxy" ? "distinct" : "throughput",
    url: `${target.url}/v1/chat/completions`,
    body,
    headers: HEADERS,
    connections,
    seconds,
    ...(rate !== "" && { rate: Number(rate) }),
  });
  const file = join(dir, `${mode}-${store}-${shape}.cpuprofile`);
  await target.profileStop(file);
  const cpuAfter = await target.cpu();
  const after = await target.stats();
  const requests = cpuAfter.requests - cpuBefore.requests;
  const per = (us: number) => (us / requests).toFixed(1);
  console.log(
    `measured CPU (process.cpuUsage, profiler on): ${per(cpuAfter.cpuUs - cpuBefore.cpuUs)} µs per request (user ${per(cpuAfter.userUs - cpuBefore.userUs)}, system ${per(cpuAfter.systemUs - cpuBefore.systemUs)})`,
  );
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  report(profile, requests, result, after.hits - before.hits, after.misses - before.misses);
} finally {
  await stopLoad();
  await Promise.all(servers.map((s) => s.stop()));
  if (keep === "") rmSync(dir, { recursive: true, force: true });
  else console.log(`profile kept in ${dir}`);
}

function report(
  profile: CpuProfile,
  requests: number,
  load: { rps: number; errors: number },
  hits: number,
  misses: number,
): void {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (const [i, id] of profile.samples.entries()) {
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const total = profile.endTime - profile.startTime;
  const idleName = new Set(["(idle)", "(program)", "(garbage collector)", "(root)"]);
  const fn = (n: ProfileNode) => {
    const url = n.callFrame.url.replace(/^.*\/(src|dist|bench|node_modules)\//, "$1/");
    const name = n.callFrame.functionName || "(anonymous)";
    return url === "" ? name : `${name} ${url}:${n.callFrame.lineNumber + 1}`;
  };
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  let busy = 0;
  for (const [id, us] of self) {
    const n = byId.get(id) as ProfileNode;
    const name = fn(n);
    byFunction.set(name, (byFunction.get(name) ?? 0) + us);
    if (n.callFrame.functionName === "(idle)") continue;
    busy += us;
    const url = n.callFrame.url;
    const file =
      url === ""
        ? n.callFrame.functionName.startsWith("(")
          ? n.callFrame.functionName
          : "(native)"
        : url.startsWith("node:")
          ? url
          : url.replace(/^.*\/(src|dist|bench|node_modules\/[^/]+)\//, "$1/");
    byFile.set(file, (byFile.get(file) ?? 0) + us);
  }
  // Inclusive (synchronous) time of every function: its self time plus its callees'.
  const inclusive = new Map<string, number>();
  const walk = (id: number, onStack: Set<string>): number => {
    const n = byId.get(id) as ProfileNode;
    let sum = self.get(id) ?? 0;
    const name = fn(n);
    const seen = onStack.has(name);
    if (!seen) onStack.add(name);
    for (const child of n.children ?? []) sum += walk(child, onStack);
    if (!seen) {
      onStack.delete(name);
      inclusive.set(name, (inclusive.get(name) ?? 0) + sum);
    }
    return sum;
  };
  walk(profile.nodes[0]?.id ?? 1, new Set());
  const per = (us: number) => (us / Math.max(1, requests)).toFixed(2);
  console.log(
    `${mode} ${mode === "hit" || mode === "miss" ? `${store} ${shape}` : ""}: ${requests} requests served (${hits} hits, ${misses} misses), ${Math.round(load.rps)} req/s, ${load.errors} errors; profile ${(total / 1e6).toFixed(1)} s, busy ${(busy / 1e6).toFixed(2)} s = ${per(busy)} µs of CPU per request (sampled)`,
  );
  console.log("\nself time by file (µs per request, share of busy):");
  for (const [file, us] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
    console.log(
      `  ${per(us).padStart(8)}  ${((100 * us) / busy).toFixed(1).padStart(5)}%  ${file}`,
    );
  }
  console.log(`\ntop ${top} functions by self time (µs per request, share of busy):`);
  for (const [name, us] of [...byFunction]
    .filter(
      ([name]) => !idleName.has(name) || name === "(garbage collector)" || name === "(program)",
    )
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)) {
    console.log(
      `  ${per(us).padStart(8)}  ${((100 * us) / busy).toFixed(1).padStart(5)}%  ${name}`,
    );
  }
  console.log(`\ntop ${top} infercache functions by inclusive synchronous time (µs per request):`);
  for (const [name, us] of [...inclusive]
    .filter(([name]) => name.includes(" src/") || name.includes(" dist/"))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)) {
    console.log(`  ${per(us).padStart(8)}  ${name}`);
  }
}
