/** Runs the prefix-cache memory and TTFT benchmarks in a fresh process (node --expose-gc). */
import { memoryBench, ttftBench } from "./prefix.js";

const memory = memoryBench();
const ttft = await ttftBench();
process.stdout.write(JSON.stringify({ memory, ttft }));
