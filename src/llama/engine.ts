/**
 * `LlamaEngine`: an OpenAI-compatible inference handler backed by node-llama-cpp —
 * `/v1/chat/completions` (streaming and not), `/v1/completions`, `/v1/embeddings`, `/v1/models`,
 * and the OpenAI Responses and Anthropic Messages formats (`/v1/responses`, `/v1/messages`,
 * `/v1/messages/count_tokens`; see `responses-api.ts`, `messages-api.ts`) — with a concurrency
 * limit (one context sequence by default, like Gradio's default of 1). It is
 * the real upstream of the LLM layer's tests and the gateway's embedded default.
 *
 * Chat messages are rendered as "role: content" lines ending with "assistant:" and completed
 * with LlamaCompletion. Without `stateCache` each request starts from a clean sequence. With it,
 * each slot (one context sequence per unit of `concurrency`) keeps its KV state between
 * requests; a request goes to the free slot whose live tokens serve it best (llama.cpp server's
 * slot selection), the state cache restores the longest shared prefix, and after the answer the
 * slot's state is extended to the reply as the next turn will send it back and saved. Every
 * request is recorded in `received` (bounded), so tests can assert what the upstream really saw.
 */

import { basename } from "node:path";
import type {
  Llama,
  LlamaContext,
  LlamaContextSequence,
  LlamaEmbeddingContext,
  LlamaModel,
  Token,
} from "node-llama-cpp";
import { importPeer } from "../base/optional-peer.js";
import { limit } from "../queue/limit.js";
import type { Generated, Generator } from "./generator.js";
import { countMessageTokens, createMessage } from "./messages-api.js";
import { createResponse, responsesError } from "./responses-api.js";
import {
  LlamaStateCache,
  type LlamaStateCacheOptions,
  modelFingerprint,
  type RestoreOutcome,
} from "./state-cache.js";

export interface LlamaEngineOptions {
  /** The GGUF file. */
  modelPath: string;
  /** Name reported as the model (and accepted in requests). @default the file name */
  modelName?: string;
  /** CPU threads per context. @default 1 (what a 2-core machine wants) */
  threads?: number;
  /** Context size in tokens. @default 2048 */
  contextSize?: number;
  /** Generations running at once (one context sequence each). @default 1 */
  concurrency?: number;
  /** Requests kept in `received`. @default 1000 */
  keepReceived?: number;
  /**
   * Reuse KV state across prompts that share a prefix: each slot's live state, and snapshots of
   * prompt and reply saved after each answer, in memory (`directory`, by default a private tmpfs
   * folder) bounded by `capacityBytes`, and on `disk` when given. See `LlamaStateCache`.
   */
  stateCache?: Omit<LlamaStateCacheOptions, "fingerprint">;
}

/** What the last generation reused and evaluated (for tests and metrics). */
export interface EvaluationReport {
  /** Prompt tokens as the sequence holds them (BOS included). */
  promptTokens: number;
  reused: number;
  source: RestoreOutcome["source"];
  /** Prompt tokens the model actually evaluated before answering (node-llama-cpp's token meter). */
  evaluatedTokens: number;
  /**
   * Tokens evaluated after the answer, so the kept state matches the reply as the next turn
   * sends it back (its last token, and whatever of it re-tokenizes differently). Set once the
   * slot is free again (`onIdle()`).
   */
  afterAnswerTokens: number;
  /** Tokens of the state saved after the answer; 0 when none was saved. */
  savedTokens: number;
}

export interface ReceivedRequest {
  path: string;
  body: Record<string, unknown>;
}

type NodeLlamaCpp = typeof import("node-llama-cpp");

/** One context sequence and what is known of it. */
interface Slot {
  context: LlamaContext;
  /** Kept between requests with a state cache; one per request without. */
  sequence: LlamaContextSequence | undefined;
  busy: boolean;
  /** When it last served a request (a counter). */
  used: number;
}

interface Message {
  role: string;
  content?: unknown;
}

export class LlamaEngine {
  readonly modelName: string;
  readonly received: ReceivedRequest[] = [];
  readonly stateCache: LlamaStateCache | undefined;
  lastEvaluation: EvaluationReport | undefined;
  readonly #lib: NodeLlamaCpp;
  readonly #llama: Llama;
  readonly #model: LlamaModel;
  readonly #slots: Slot[];
  readonly #embedding: LlamaEmbeddingContext;
  readonly #keep: number;
  readonly #generate: (
    held: Token[],
    run: (sequence: LlamaContextSequence) => Promise<void>,
  ) => Promise<void>;
  readonly #embed: (texts: string[]) => Promise<Float32Array[]>;
  /** LlamaCompletion puts BOS first when the model wants it; the state cache sees it too. */
  readonly #bos: Token[];
  #ids = 0;
  #uses = 0;
  readonly #running = new Set<Promise<unknown>>();
  /** What the Responses and Messages formats see of this engine. */
  readonly #generator: Generator;

  private constructor(
    lib: NodeLlamaCpp,
    llama: Llama,
    model: LlamaModel,
    contexts: LlamaContext[],
    embedding: LlamaEmbeddingContext,
    options: LlamaEngineOptions,
    stateCache: LlamaStateCache | undefined,
  ) {
    this.stateCache = stateCache;
    this.#lib = lib;
    this.#llama = llama;
    this.#model = model;
    const bos = model.tokens.bos;
    this.#bos = model.tokens.shouldPrependBosToken && bos !== null ? [bos] : [];
    this.#slots = contexts.map((context) => ({
      context,
      sequence: undefined,
      busy: false,
      used: 0,
    }));
    this.#embedding = embedding;
    this.#keep = options.keepReceived ?? 1000;
    this.modelName = options.modelName ?? basename(options.modelPath).replace(/\.gguf$/i, "");
    this.#generator = {
      modelName: this.modelName,
      nextId: () => ++this.#ids,
      countTokens: (text) => this.#model.tokenize(text).length,
      // The Responses and Messages formats render chats, like /chat/completions.
      generate: (prompt, options, signal, onText) =>
        this.#run(prompt, options, signal, onText, " "),
    };
    this.#generate = limit(
      async (held: Token[], run: (sequence: LlamaContextSequence) => Promise<void>) => {
        const slot = this.#pick(held);
        slot.busy = true;
        slot.used = ++this.#uses;
        slot.sequence ??= slot.context.getSequence();
        try {
          await run(slot.sequence);
        } finally {
          if (this.stateCache === undefined) {
            await slot.sequence.dispose();
            slot.sequence = undefined;
          }
          slot.busy = false;
        }
      },
      { concurrency: contexts.length },
    );
    this.#embed = limit(
      async (texts: string[]) => {
        const vectors: Float32Array[] = [];
        for (const text of texts)
          vectors.push(Float32Array.from((await embedding.getEmbeddingFor(text)).vector));
        return vectors;
      },
      { concurrency: 1 },
    );
  }

  static async load(options: LlamaEngineOptions): Promise<LlamaEngine> {
    if (typeof options?.modelPath !== "string" || options.modelPath === "") {
      throw new TypeError("LlamaEngine.load needs `modelPath`, the GGUF file to serve");
    }
    const lib = await importPeer<NodeLlamaCpp>("node-llama-cpp", "llama");
    const threads = options.threads ?? 1;
    const llama = await lib.getLlama({ gpu: false, maxThreads: threads, build: "never" });
    const model = await llama.loadModel({ modelPath: options.modelPath });
    const contexts: LlamaContext[] = [];
    for (let i = 0; i < (options.concurrency ?? 1); i++) {
      contexts.push(
        await model.createContext({ contextSize: options.contextSize ?? 2048, threads }),
      );
    }
    const embedding = await model.createEmbeddingContext({ threads });
    const stateCache =
      options.stateCache === undefined
        ? undefined
        : new LlamaStateCache({
            ...options.stateCache,
            fingerprint: await modelFingerprint(options.modelPath),
          });
    return new LlamaEngine(lib, llama, model, contexts, embedding, options, stateCache);
  }

  /** Handles an OpenAI-compatible request; mount it under any base URL ending in `/v1`. */
  handle = async (request: Request): Promise<Response> => {
    const path = new URL(request.url).pathname.replace(/\/+$/, "");
    if (request.method === "GET" && path.endsWith("/models")) {
      return json({
        object: "list",
        data: [{ id: this.modelName, object: "model", created: 0, owned_by: "infercache" }],
      });
    }
    if (request.method === "GET" && /\/responses\/[^/]+$/.test(path)) {
      return responsesError(404, "the local engine keeps no responses (it answers `store: false`)");
    }
    if (request.method !== "POST") return error(405, `${request.method} is not supported here`);
    let body: Record<string, unknown>;
    try {
      body = (await request.json()) as Record<string, unknown>;
    } catch {
      return error(400, "the request body must be JSON");
    }
    this.received.push({ path, body });
    if (this.received.length > this.#keep) this.received.shift();
    if (path.endsWith("/chat/completions")) return this.#chat(body, request.signal);
    if (path.endsWith("/completions")) return this.#completion(body, request.signal);
    if (path.endsWith("/embeddings")) return this.#embeddings(body);
    if (path.endsWith("/responses")) return createResponse(this.#generator, body, request.signal);
    if (path.endsWith("/messages/count_tokens")) return countMessageTokens(this.#generator, body);
    if (path.endsWith("/messages")) return createMessage(this.#generator, body, request.signal);
    return error(404, `no route for ${path}`);
  };

  /** Tokens of `text` with this engine's model (no BOS). */
  countTokens(text: string): number {
    return this.#model.tokenize(text).length;
  }

  /** Resolves once no generation runs, and the state cache's saves and file moves are done. */
  async onIdle(): Promise<void> {
    while (this.#running.size > 0) await Promise.allSettled([...this.#running]);
    await this.stateCache?.onIdle();
  }

  async close(): Promise<void> {
    await this.onIdle();
    await this.stateCache?.close();
    for (const slot of this.#slots) await slot.sequence?.dispose();
    await this.#embedding.dispose();
    for (const slot of this.#slots) await slot.context.dispose();
    await this.#model.dispose();
    await this.#llama.dispose();
  }

  #chat(body: Record<string, unknown>, signal: AbortSignal): Promise<Response> {
    const messages = body.messages;
    if (!Array.isArray(messages) || messages.length === 0) {
      return Promise.resolve(error(400, "`messages` must be a non-empty array"));
    }
    const prompt = `${(messages as Message[]).map((m) => `${m.role}: ${textOf(m.content)}`).join("\n")}\nassistant:`;
    return this.#respond("chat", body, prompt, signal);
  }

  #completion(body: Record<string, unknown>, signal: AbortSignal): Promise<Response> {
    const prompt = Array.isArray(body.prompt) ? body.prompt.join("") : body.prompt;
    if (typeof prompt !== "string") return Promise.resolve(error(400, "`prompt` must be a string"));
    return this.#respond("text", body, prompt, signal);
  }

  async #respond(
    kind: "chat" | "text",
    body: Record<string, unknown>,
    prompt: string,
    signal: AbortSignal,
  ): Promise<Response> {
    const id = `${kind === "chat" ? "chatcmpl" : "cmpl"}-${++this.#ids}`;
    const created = Math.floor(Date.now() / 1000);
    const model = typeof body.model === "string" ? body.model : this.modelName;
    const options = generationOptions(body);
    const promptTokens = this.#model.tokenize(prompt).length;
    const object = kind === "chat" ? "chat.completion" : "text_completion";
    // A chat's next turn sends the reply back after "assistant: "; a completion's, right after.
    const join = kind === "chat" ? " " : "";
    if (body.stream !== true) {
      const { text, finish, completionTokens, reused } = await this.#run(
        prompt,
        options,
        signal,
        () => {},
        join,
      );
      const choice =
        kind === "chat"
          ? {
              index: 0,
              message: { role: "assistant", content: text },
              logprobs: null,
              finish_reason: finish,
            }
          : { index: 0, text, logprobs: null, finish_reason: finish };
      return json({
        id,
        object,
        created,
        model,
        choices: [choice],
        usage: usage(promptTokens, completionTokens, reused),
      });
    }
    const includeUsage =
      (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
    const encoder = new TextEncoder();
    const chunkObject = kind === "chat" ? "chat.completion.chunk" : "text_completion";
    const frame = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      encoder.encode(
        `data: ${JSON.stringify({ id, object: chunkObject, created, model, choices, ...extra })}\n\n`,
      );
    const stream = new ReadableStream<Uint8Array>({
      start: async (controller) => {
        if (kind === "chat")
          controller.enqueue(
            frame([{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }]),
          );
        const { finish, completionTokens, reused } = await this.#run(
          prompt,
          options,
          signal,
          (chunk) => {
            const choice =
              kind === "chat"
                ? { index: 0, delta: { content: chunk }, finish_reason: null }
                : { index: 0, text: chunk, finish_reason: null };
            controller.enqueue(frame([choice]));
          },
          join,
        );
        controller.enqueue(
          frame([
            kind === "chat"
              ? { index: 0, delta: {}, finish_reason: finish }
              : { index: 0, text: "", finish_reason: finish },
          ]),
        );
        if (includeUsage)
          controller.enqueue(frame([], { usage: usage(promptTokens, completionTokens, reused) }));
        controller.enqueue(encoder.encode("data: [DONE]\n\n"));
        controller.close();
      },
    });
    return new Response(stream, {
      headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
    });
  }

  /**
   * One generation on a slot. `join` is what the next turn puts between this prompt and the
   * reply when it sends the reply back: " " after a chat's "assistant:", "" for a completion.
   */
  async #run(
    prompt: string,
    options: GenerationOptions,
    signal: AbortSignal,
    onText: (chunk: string) => void,
    join: string,
  ): Promise<Generated> {
    const held = this.#held(prompt);
    return new Promise((resolve, reject) => {
      const running = this.#generate(held, async (sequence) => {
        const cache = this.stateCache;
        let report: EvaluationReport;
        let reply: string;
        try {
          const restored =
            cache === undefined
              ? { reused: 0, source: "none" as const }
              : await cache.restore(sequence, held);
          const before = sequence.tokenMeter.usedInputTokens;
          const completion = new this.#lib.LlamaCompletion({ contextSequence: sequence });
          // Tokens handed out, not the reply re-tokenized: a reply's text can re-tokenize longer.
          let generated = 0;
          const result = await completion.generateCompletionWithMeta(held.slice(this.#bos.length), {
            ...options,
            signal,
            onTextChunk: onText,
            onToken: (tokens) => {
              generated += tokens.length;
            },
          });
          report = {
            promptTokens: held.length,
            reused: restored.reused,
            source: restored.source,
            evaluatedTokens: sequence.tokenMeter.usedInputTokens - before,
            afterAnswerTokens: 0,
            savedTokens: 0,
          };
          this.lastEvaluation = report;
          reply = result.response;
          const meta = result.metadata;
          resolve({
            text: reply,
            finish: meta.stopReason === "maxTokens" ? "length" : "stop",
            completionTokens: Math.min(generated, options.maxTokens),
            reused: restored.reused,
            stopSequence:
              meta.stopReason === "customStopTrigger"
                ? meta.customStopTrigger.filter((part) => typeof part === "string").join("")
                : undefined,
          });
        } catch (error) {
          reject(error);
          return;
        }
        // The answer is out; keep and save the conversation before the slot takes another request.
        if (cache !== undefined)
          await this.#keepConversation(sequence, cache, held, `${prompt}${join}${reply}`, report);
      });
      this.#running.add(running);
      running.catch(reject).finally(() => this.#running.delete(running));
    });
  }

  /** The tokens of `text` as a sequence holds them (`#bos` first). */
  #held(text: string): Token[] {
    return [...this.#bos, ...this.#model.tokenize(text)];
  }

  /**
   * After an answer: makes the sequence hold `conversation` (prompt and reply, tokenized as the
   * next turn's prompt will be), evaluating what generation left out — the reply's last token,
   * and any part of the reply that re-tokenizes differently from how it was generated — and
   * saves that state.
   */
  async #keepConversation(
    sequence: LlamaContextSequence,
    cache: LlamaStateCache,
    prompt: Token[],
    conversation: string,
    report: EvaluationReport,
  ): Promise<void> {
    const tokens = this.#held(conversation);
    if (tokens.length >= sequence.contextSize) return;
    const same = sequence.compareContextTokens(tokens).firstDifferentIndex;
    // A context shift moved the prompt: nothing here is the conversation any more.
    if (same < prompt.length - 1) return;
    try {
      if (sequence.nextTokenIndex > same)
        await sequence.eraseContextTokenRanges([{ start: same, end: sequence.nextTokenIndex }]);
      if (tokens.length > same) {
        await sequence.evaluateWithoutGeneratingNewTokens(tokens.slice(same));
        report.afterAnswerTokens = tokens.length - same;
      }
      if (await cache.save(sequence, tokens)) report.savedTokens = tokens.length;
    } catch {
      // A state that could not be kept is a lost optimisation, never a failed request.
      await sequence.clearHistory().catch(() => {});
    }
  }

  /**
   * The free slot to serve a prompt (llama.cpp server's slot selection, by prefix): the one that
   * reuses the most of it — its live tokens, or a stored state that any slot could load — and
   * among those, one whose live state the prompt extends (nothing lost), else the least recently
   * used.
   */
  #pick(held: Token[]): Slot {
    const free = this.#slots.filter((slot) => !slot.busy);
    if (free.length === 1 || this.stateCache === undefined) return free[0] as Slot;
    const stored = this.stateCache.reusable(held);
    let best: Slot | undefined;
    let bestScore: [number, number, number] = [-1, 0, 0];
    for (const slot of free) {
      const live = slot.sequence?.compareContextTokens(held).firstDifferentIndex ?? 0;
      const reuse = Math.max(Math.min(live, held.length - 1), stored);
      const keepsAll = live >= (slot.sequence?.nextTokenIndex ?? 0) ? 1 : 0;
      const score: [number, number, number] = [reuse, keepsAll, -slot.used];
      if (best === undefined || greater(score, bestScore)) {
        best = slot;
        bestScore = score;
      }
    }
    return best as Slot;
  }

  async #embeddings(body: Record<string, unknown>): Promise<Response> {
    const input = body.input;
    const texts =
      typeof input === "string"
        ? [input]
        : Array.isArray(input) && input.every((t) => typeof t === "string")
          ? (input as string[])
          : undefined;
    if (texts === undefined || texts.length === 0)
      return error(400, "`input` must be a string or an array of strings");
    const vectors = await this.#embed(texts);
    const base64 = body.encoding_format === "base64";
    const data = vectors.map((vector, index) => ({
      object: "embedding",
      index,
      embedding: base64
        ? Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString("base64")
        : Array.from(vector),
    }));
    const tokens = texts.reduce((sum, text) => sum + this.#model.tokenize(text).length, 0);
    return json({
      object: "list",
      data,
      model: typeof body.model === "string" ? body.model : this.modelName,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    });
  }
}

interface GenerationOptions {
  maxTokens: number;
  temperature: number;
  topP?: number;
  topK?: number;
  seed?: number;
  customStopTriggers?: string[];
}

function generationOptions(body: Record<string, unknown>): GenerationOptions {
  const maxTokens = Number(body.max_completion_tokens ?? body.max_tokens ?? 16);
  const options: GenerationOptions = {
    maxTokens: Number.isFinite(maxTokens) && maxTokens > 0 ? maxTokens : 16,
    temperature: typeof body.temperature === "number" ? body.temperature : 1,
  };
  if (typeof body.top_p === "number") options.topP = body.top_p;
  if (typeof body.seed === "number") options.seed = body.seed;
  const stop =
    typeof body.stop === "string"
      ? [body.stop]
      : Array.isArray(body.stop)
        ? (body.stop as string[])
        : undefined;
  if (stop !== undefined && stop.length > 0) options.customStopTriggers = stop;
  return options;
}

/** Lexicographic order of scores. */
function greater(a: number[], b: number[]): boolean {
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return (a[i] as number) > (b[i] as number);
  }
  return false;
}

function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((part) =>
        typeof part === "object" && part !== null && "text" in part
          ? String((part as { text: unknown }).text)
          : "",
      )
      .join("");
  }
  return "";
}

function usage(prompt: number, completion: number, cached: number) {
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    // OpenAI's field for prompt tokens served from a prefix cache.
    ...(cached > 0 && { prompt_tokens_details: { cached_tokens: cached } }),
  };
}

function json(value: unknown, status = 200): Response {
  return new Response(JSON.stringify(value), {
    status,
    headers: { "content-type": "application/json" },
  });
}

function error(status: number, message: string): Response {
  return json({ error: { message, type: "invalid_request_error" } }, status);
}
