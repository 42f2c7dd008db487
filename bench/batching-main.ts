/** Runs the batching benchmark in a fresh process (its own heap) and prints the rows as JSON. */
import { batchingBench } from "./queue.js";

process.stdout.write(JSON.stringify(await batchingBench()));
