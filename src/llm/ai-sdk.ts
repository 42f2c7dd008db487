/**
 * A Vercel AI SDK language-model middleware: `wrapLanguageModel({ model, middleware:
 * cacheMiddleware() })`. `generateText` results and `streamText` streams are cached by the whole
 * call (model, prompt, tools, settings, provider options); a streamed miss is recorded part by
 * part and stored only when it finished without an error part; a hit replays every part.
 * Identical concurrent calls share one model call. Uses no code of the AI SDK at runtime.
 */

import type {
  LanguageModelV3CallOptions,
  LanguageModelV3Middleware,
  LanguageModelV3StreamPart,
} from "@ai-sdk/provider";
import type { CacheOptions } from "../cache/core.js";
import { Cache } from "../cache/manual.js";

export interface CacheMiddlewareOptions extends CacheOptions {}

type Parts = LanguageModelV3StreamPart[];

export function cacheMiddleware(options: CacheMiddlewareOptions = {}): LanguageModelV3Middleware {
  const results = new Cache<{ result: unknown }>({ namespace: "ai-sdk", ...options });
  const streams = new Cache<{ parts: Parts; rest: unknown }>({
    ...options,
    namespace: `${options.namespace ?? "ai-sdk"}:stream`,
  });
  const keyOf = (
    model: { provider: string; modelId: string },
    params: LanguageModelV3CallOptions,
  ) => {
    // The abort signal is transport, not input; everything else can change the answer.
    const { abortSignal: _signal, ...rest } = params as LanguageModelV3CallOptions & {
      abortSignal?: unknown;
    };
    return { provider: model.provider, modelId: model.modelId, params: rest };
  };
  return {
    specificationVersion: "v3",
    wrapGenerate: async ({ doGenerate, params, model }) => {
      const { result } = await results.getOrSet(keyOf(model, params), async () => ({
        result: await doGenerate(),
      }));
      return result as Awaited<ReturnType<typeof doGenerate>>;
    },
    wrapStream: async ({ doStream, params, model }) => {
      const key = keyOf(model, params);
      const stored = await streams.get(key);
      if (stored !== undefined) {
        const parts = stored.parts;
        return {
          ...(stored.rest as object),
          stream: new ReadableStream<LanguageModelV3StreamPart>({
            start(controller) {
              for (const part of parts) controller.enqueue(part);
              controller.close();
            },
          }),
        } as Awaited<ReturnType<typeof doStream>>;
      }
      const { stream, ...rest } = await doStream();
      const parts: Parts = [];
      let failed = false;
      const recorder = new TransformStream<LanguageModelV3StreamPart, LanguageModelV3StreamPart>({
        transform(part, controller) {
          if (part.type === "error") failed = true;
          parts.push(part);
          controller.enqueue(part);
        },
        async flush() {
          const finished = parts.some((part) => part.type === "finish");
          if (finished && !failed) await streams.set(key, { parts, rest });
        },
      });
      return { ...rest, stream: stream.pipeThrough(recorder) };
    },
  };
}
