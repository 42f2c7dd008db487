/** Runs the LLM benchmark in a fresh process and prints the result as JSON. */
import { llmBench } from "./llm.js";

process.stdout.write(JSON.stringify(await llmBench()));
