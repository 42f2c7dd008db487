/**
 * Prefix reuse of model state, like Gradio's cache_kv_demo, with `longestPrefix` (a radix tree)
 * instead of scanning every key. The "model" here is a toy whose state after a prefix is a running
 * hash over its tokens, and whose cost is proportional to the tokens it must evaluate: a prompt
 * that extends an earlier one evaluates only its new tokens. `infercache/llama` does the same with
 * real KV state from node-llama-cpp.
 */
import { Cache } from "infercache";

interface ModelState {
  /** Tokens evaluated so far. */
  tokens: number;
  /** Stands for the KV cache: a digest of everything evaluated. */
  digest: number;
}

const states = new Cache<{ state: ModelState }>({ maxMemory: "64mb" });
let evaluated = 0;

function evaluate(from: ModelState, text: string): ModelState {
  let digest = from.digest;
  for (const char of text) {
    digest = (Math.imul(digest, 31) + char.charCodeAt(0)) >>> 0;
    evaluated++;
  }
  return { tokens: from.tokens + text.length, digest };
}

async function generate(prompt: string): Promise<ModelState> {
  const hit = await states.longestPrefix(prompt);
  const start: ModelState = hit?.value.state ?? { tokens: 0, digest: 7 };
  const state = evaluate(start, prompt.slice(hit?.length ?? 0));
  await states.set(prompt, { state: { ...state } }); // a copy: the live state keeps changing
  return state;
}

export async function main(): Promise<void> {
  const system = "You are a helpful assistant. Answer briefly.\n";
  const turns = [
    `${system}User: What is a radix tree?\n`,
    `${system}User: What is a radix tree?\nAssistant: A compressed trie.\nUser: Why use one?\n`,
    `${system}User: What is a KV cache?\n`,
  ];
  for (const prompt of turns) {
    const before = evaluated;
    const state = await generate(prompt);
    console.log(
      `prompt of ${prompt.length} chars: evaluated ${evaluated - before} new, state ${state.digest.toString(16)}`,
    );
  }
  const cold = evaluate({ tokens: 0, digest: 7 }, turns[1] as string);
  const warm = await generate(turns[1] as string);
  console.log(
    `state restored from a prefix equals a cold evaluation: ${cold.digest === warm.digest}`,
  );
}
