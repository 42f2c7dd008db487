/**
 * BENCH ONLY — the engine as it was at 3d566bd, before the KV-state reuse issue: the "before"
 * contender of the chat benchmark (bench/prefix-chat.ts), so today's code and the previous
 * reuse behaviour run side by side in one process, on the same model and prompts. Verbatim but
 * for its imports (pointing into src/), the class name, and `onIdle()` (so the benchmark can let
 * a save finish between turns, as it does for the current engine). Never imported by src/.
 *
 * `LlamaEngine`: an OpenAI-compatible inference handler backed by node-llama-cpp —
 * `/v1/chat/completions` (streaming and not), `/v1/completions`, `/v1/embeddings`, `/v1/models`,
 * and the OpenAI Responses and Anthropic Messages formats (`/v1/responses`, `/v1/messages`,
 * `/v1/messages/count_tokens`; see `responses-api.ts`, `messages-api.ts`) — with a concurrency
 * limit (one context sequence by default, like Gradio's default of 1). It is
 * the real upstream of the LLM layer's tests and the gateway's embedded default.
 *
 * Chat messages are rendered as "role: content" lines ending with "assistant:" and completed
 * with LlamaCompletion; each request starts from a clean sequence (prefix reuse is the job of
 * the prefix cache). Every request is recorded in `received` (bounded), so tests can assert what
 * the upstream really saw.
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
import { importPeer } from "../../src/base/optional-peer.js";
import type { Generator } from "../../src/llama/generator.js";
import { countMessageTokens, createMessage } from "../../src/llama/messages-api.js";
import { createResponse, responsesError } from "../../src/llama/responses-api.js";
import { limit } from "../../src/queue/limit.js";
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
   * Reuse KV state across prompts that share a prefix: snapshots at prompt boundaries in
   * `directory` (tmpfs for RAM speed), bounded by `capacityBytes`, and each context's live state.
   */
  stateCache?: Omit<LlamaStateCacheOptions, "fingerprint">;
}

/** What the last generation reused and evaluated (for tests and metrics). */
export interface EvaluationReport {
  promptTokens: number;
  reused: number;
  source: RestoreOutcome["source"];
  /** Input tokens the model actually evaluated (node-llama-cpp's token meter). */
  evaluatedTokens: number;
}

export interface ReceivedRequest {
  path: string;
  body: Record<string, unknown>;
}

type NodeLlamaCpp = typeof import("node-llama-cpp");

interface Message {
  role: string;
  content?: unknown;
}

export class LegacyLlamaEngine {
  readonly modelName: string;
  readonly received: ReceivedRequest[] = [];
  readonly stateCache: LlamaStateCache | undefined;
  lastEvaluation: EvaluationReport | undefined;
  readonly #lib: NodeLlamaCpp;
  readonly #llama: Llama;
  readonly #model: LlamaModel;
  readonly #contexts: LlamaContext[];
  readonly #free: LlamaContext[];
  readonly #embedding: LlamaEmbeddingContext;
  readonly #keep: number;
  readonly #generate: (run: (context: LlamaContext) => Promise<unknown>) => Promise<unknown>;
  readonly #embed: (texts: string[]) => Promise<Float32Array[]>;
  readonly #sequences = new Map<LlamaContext, LlamaContextSequence>();
  #ids = 0;
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
    this.#contexts = contexts;
    this.#free = [...contexts];
    this.#embedding = embedding;
    this.#keep = options.keepReceived ?? 1000;
    this.modelName = options.modelName ?? basename(options.modelPath).replace(/\.gguf$/i, "");
    this.#generator = {
      modelName: this.modelName,
      nextId: () => ++this.#ids,
      countTokens: (text) => this.#model.tokenize(text).length,
      generate: (prompt, options, signal, onText) => this.#run(prompt, options, signal, onText),
    };
    this.#generate = limit(
      async (run: (context: LlamaContext) => Promise<unknown>) => {
        const context = this.#free.pop() as LlamaContext;
        try {
          return await run(context);
        } finally {
          this.#free.push(context);
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

  static async load(options: LlamaEngineOptions): Promise<LegacyLlamaEngine> {
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
    return new LegacyLlamaEngine(lib, llama, model, contexts, embedding, options, stateCache);
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

  /** Bench addition: resolves once no generation (and its save) runs. */
  async onIdle(): Promise<void> {
    while (this.#running.size > 0) await Promise.allSettled([...this.#running]);
  }

  async close(): Promise<void> {
    await this.stateCache?.close();
    for (const sequence of this.#sequences.values()) await sequence.dispose();
    await this.#embedding.dispose();
    for (const context of this.#contexts) await context.dispose();
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
    if (body.stream !== true) {
      const { text, finish, completionTokens, reused } = await this.#run(
        prompt,
        options,
        signal,
        () => {},
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

  async #run(
    prompt: string,
    options: GenerationOptions,
    signal: AbortSignal,
    onText: (chunk: string) => void,
  ): Promise<{
    text: string;
    finish: "length" | "stop";
    completionTokens: number;
    reused: number;
    stopSequence?: string | undefined;
  }> {
    const tokens = this.#model.tokenize(prompt);
    // What the sequence will hold: LlamaCompletion puts the BOS token first when the model wants it.
    const bos = this.#model.tokens.bos;
    const held =
      this.#model.tokens.shouldPrependBosToken && bos !== null ? [bos, ...tokens] : tokens;
    return new Promise((resolve, reject) => {
      const running = this.#generate(async (context) => {
        const cache = this.stateCache;
        const sequence = cache === undefined ? context.getSequence() : this.#sequenceFor(context);
        try {
          const restored =
            cache === undefined
              ? { reused: 0, source: "none" as const }
              : await cache.restore(sequence, held);
          const before = sequence.tokenMeter.usedInputTokens;
          const completion = new this.#lib.LlamaCompletion({ contextSequence: sequence });
          const result = await completion.generateCompletionWithMeta(tokens, {
            ...options,
            signal,
            onTextChunk: onText,
          });
          this.lastEvaluation = {
            promptTokens: held.length,
            reused: restored.reused,
            source: restored.source,
            evaluatedTokens: sequence.tokenMeter.usedInputTokens - before,
          };
          const meta = result.metadata;
          resolve({
            text: result.response,
            finish: meta.stopReason === "maxTokens" ? "length" : "stop",
            completionTokens: this.#model.tokenize(result.response).length,
            reused: restored.reused,
            stopSequence:
              meta.stopReason === "customStopTrigger"
                ? meta.customStopTrigger.filter((part) => typeof part === "string").join("")
                : undefined,
          });
          // The answer is out; save the prompt's state before the sequence takes another request.
          if (cache !== undefined) await cache.save(sequence, held as Token[]);
        } catch (error) {
          reject(error);
        } finally {
          if (cache === undefined) await sequence.dispose();
        }
      });
      this.#running.add(running);
      running.catch(reject).finally(() => this.#running.delete(running));
    });
  }

  #sequenceFor(context: LlamaContext): LlamaContextSequence {
    let sequence = this.#sequences.get(context);
    if (sequence === undefined) {
      sequence = context.getSequence();
      this.#sequences.set(context, sequence);
    }
    return sequence;
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
