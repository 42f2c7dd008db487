/** Runs the per-family streamed-hit benchmark in a fresh process and prints the rows as JSON. */
import { protocolHitsBench } from "./protocol-hits.js";

process.stdout.write(JSON.stringify(await protocolHitsBench(5, 3)));
