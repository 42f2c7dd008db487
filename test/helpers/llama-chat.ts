/**
 * A chat against the local engine, as a client drives one: a 200-token system prompt, ~30-token
 * user turns, replies of up to 40 tokens at temperature 0, each reply sent back in the next
 * turn's history. Shared by the state-cache tests and the chat benchmark.
 */
import type { EvaluationReport } from "../../src/llama.js";

/** What a chat needs of an engine (LlamaEngine, or the benchmark's copy of an older one). */
export interface ChatEngine {
  handle(request: Request): Promise<Response>;
  readonly lastEvaluation:
    | (Omit<EvaluationReport, "afterAnswerTokens" | "savedTokens"> &
        Partial<Pick<EvaluationReport, "afterAnswerTokens" | "savedTokens">>)
    | undefined;
}

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/** About 200 tokens with the tiny model's (llama-2) tokenizer. */
export const SYSTEM_PROMPT = `You are a careful assistant for an engineering team. ${"Answer with facts about caching model calls, keys, stores, queues and prefixes. ".repeat(10)}Be brief.`;

/** About 30 tokens each. */
export const QUESTIONS = [
  "What is a radix tree, and why does a prefix cache look prompts up in one instead of scanning?",
  "How large is the KV state of a conversation, and where should a server keep it between turns?",
  "Why does a reply have to be part of the saved state when the next turn sends it back?",
  "What goes wrong when two users share a system prompt but ask different questions of it?",
  "How would you test that a restored state answers exactly like a cold evaluation does?",
  "What should happen to the saved states when the server restarts with a disk folder?",
  "Which numbers would you put in a benchmark table to show that the reuse pays off?",
];

/** The engine's chat rendering ("role: content" lines, then "assistant:"), for counting tokens. */
export function render(messages: ChatMessage[]): string {
  return `${messages.map((m) => `${m.role}: ${m.content}`).join("\n")}\nassistant:`;
}

export interface ChatTurn {
  text: string;
  usage: {
    prompt_tokens: number;
    completion_tokens: number;
    prompt_tokens_details?: { cached_tokens: number };
  };
  report: ChatEngine["lastEvaluation"];
  /** Milliseconds from the request to the first streamed chunk of text. */
  ttftMs: number;
}

/** One streamed chat completion through `engine.handle`, read to the end. */
export async function chatTurn(
  engine: ChatEngine,
  messages: ChatMessage[],
  maxTokens = 40,
): Promise<ChatTurn> {
  const started = performance.now();
  const response = await engine.handle(
    new Request("http://local/v1/chat/completions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "tiny",
        messages,
        max_tokens: maxTokens,
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true },
      }),
    }),
  );
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let text = "";
  let ttftMs = Number.NaN;
  let usage: ChatTurn["usage"] | undefined;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end = buffer.indexOf("\n\n");
    while (end >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf("\n\n");
      const data = frame.replace(/^data: /, "");
      if (data === "[DONE]") continue;
      const chunk = JSON.parse(data) as {
        choices: { delta: { content?: string } }[];
        usage?: ChatTurn["usage"];
      };
      const content = chunk.choices[0]?.delta.content;
      if (content !== undefined && content !== "") {
        if (Number.isNaN(ttftMs)) ttftMs = performance.now() - started;
        text += content;
      }
      if (chunk.usage !== undefined) usage = chunk.usage;
    }
  }
  if (usage === undefined) throw new Error("the stream carried no usage");
  return { text, usage, report: engine.lastEvaluation, ttftMs };
}

export interface ChatRun {
  turns: ChatTurn[];
  /** Per turn: tokens the prompt adds to the previous turn's prompt and reply (the first: all). */
  newTokens: number[];
}

/**
 * A conversation of `questions.length` turns, each reply sent back in the next turn. `count`
 * counts tokens (default: the engine's own `countTokens`).
 */
export async function runChat(
  engine: ChatEngine & { countTokens?(text: string): number },
  questions: string[],
  options: {
    system?: string;
    history?: ChatMessage[];
    beforeTurn?: () => Promise<void>;
    count?: (text: string) => number;
  } = {},
): Promise<ChatRun & { history: ChatMessage[] }> {
  const count =
    options.count ??
    ((text: string) => {
      if (engine.countTokens === undefined) throw new Error("runChat needs `count`");
      return engine.countTokens(text);
    });
  const history: ChatMessage[] = options.history ?? [
    { role: "system", content: options.system ?? SYSTEM_PROMPT },
  ];
  const turns: ChatTurn[] = [];
  const newTokens: number[] = [];
  for (const question of questions) {
    const before =
      history.length > 1 && history.at(-1)?.role === "assistant"
        ? count(`${render(history.slice(0, -1))} ${(history.at(-1) as ChatMessage).content}`)
        : 0;
    history.push({ role: "user", content: question });
    newTokens.push(count(render(history)) - before);
    await options.beforeTurn?.();
    const turn = await chatTurn(engine, history);
    turns.push(turn);
    history.push({ role: "assistant", content: turn.text });
  }
  return { turns, newTokens, history };
}
