/**
 * Runs the gateway benchmark (it starts every server in its own process) and prints the result
 * as JSON. `GATEWAY_BENCH_QUICK=1` runs one short round, to try the benchmark itself.
 */
import { defaults, gatewayBench } from "./gateway.js";

const quick = process.env.GATEWAY_BENCH_QUICK === "1";
const options = quick
  ? {
      ...defaults,
      rounds: 1,
      seconds: 2,
      warmupSeconds: 1,
      cpuSeconds: 2,
      missSamples: 60,
      missWarmup: 10,
    }
  : defaults;
process.stdout.write(JSON.stringify(await gatewayBench(options)));
