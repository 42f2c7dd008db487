/** Runs the gateway load benchmark in a fresh process and prints the rows as JSON. */
import { gatewayBench } from "./gateway.js";

process.stdout.write(JSON.stringify(await gatewayBench(5)));
