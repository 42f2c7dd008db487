/** Runs the chat-reuse benchmark in a fresh process and prints its result as JSON. */
import { chatBench } from "./prefix-chat.js";

const rounds = Number(process.env.INFERCACHE_CHAT_ROUNDS ?? 5);
process.stdout.write(JSON.stringify(await chatBench(rounds)));
