/**
 * A Vercel AI SDK language-model middleware: `wrapLanguageModel({ model, middleware:
 * cacheMiddleware() })`. `generateText` results and `streamText` streams are cached by the whole
 * call (model, prompt, tools, settings, provider options). Identical concurrent calls share one
 * model call, streams included: a stream is `cache(async function*)` over the model's
 * `doStream`, so it inherits the cache layer's record and replay (a late joiner replays what was
 * produced and then follows live) and its rule that a stream is stored only once it finished —
 * here, with a `finish` part and no `error` part. The model is called with the flight's own abort
 * signal, so one caller leaving does not cut the stream for the others; it is aborted when the
 * last one has gone. Uses no code of the AI SDK at runtime.
 */

import type {
  LanguageModelV3,
  LanguageModelV3CallOptions,
  LanguageModelV3Middleware,
  LanguageModelV3StreamPart,
} from "@ai-sdk/provider";
import { cache } from "../cache/cache-fn.js";
import { currentSignal } from "../cache/computation.js";
import { Cache } from "../cache/manual.js";
import type { CacheOptions } from "../cache/options.js";

export type CacheMiddlewareOptions = CacheOptions;

type StreamResult = Awaited<ReturnType<LanguageModelV3["doStream"]>>;
type GenerateResult = Awaited<ReturnType<LanguageModelV3["doGenerate"]>>;
/** What a recorded stream yields: first the result's other fields, then every part. */
type Item = { rest: Omit<StreamResult, "stream"> } | { part: LanguageModelV3StreamPart };

interface CallKey {
  provider: string;
  modelId: string;
  params: Omit<LanguageModelV3CallOptions, "abortSignal">;
}

function keyOf(model: LanguageModelV3, params: LanguageModelV3CallOptions): CallKey {
  // The abort signal is transport, not input; everything else can change the answer.
  const { abortSignal: _signal, ...rest } = params;
  return { provider: model.provider, modelId: model.modelId, params: rest };
}

/** Called with the flight's signal: it aborts only when every caller has left. */
function withFlightSignal(params: LanguageModelV3CallOptions): LanguageModelV3CallOptions {
  const signal = currentSignal();
  const { abortSignal: _signal, ...rest } = params;
  return signal === undefined ? rest : { ...rest, abortSignal: signal };
}

export function cacheMiddleware(options: CacheMiddlewareOptions = {}): LanguageModelV3Middleware {
  const namespace = options.namespace ?? "ai-sdk";
  const results = new Cache<{ result: unknown }>({ ...options, namespace } as CacheOptions);
  const streams = cache(
    async function* stream(
      _key: CallKey,
      model: LanguageModelV3,
      params: LanguageModelV3CallOptions,
    ): AsyncGenerator<Item, void, undefined> {
      const { stream, ...rest } = await model.doStream(withFlightSignal(params));
      yield { rest };
      const reader = stream.getReader();
      try {
        for (;;) {
          const next = await reader.read();
          if (next.done) return;
          yield { part: next.value };
        }
      } finally {
        // Left early (every caller gone): stop the model's stream too.
        reader.cancel().catch(() => {});
      }
    },
    {
      ...options,
      // The record's shape changed from the parts-and-rest of earlier releases: a namespace of
      // its own, so old entries are never read as records.
      namespace: `${namespace}:stream-record`,
      key: (key: CallKey) => key,
      shouldCache: (items: Item[]) =>
        items.some((item) => "part" in item && item.part.type === "finish") &&
        !items.some((item) => "part" in item && item.part.type === "error"),
    } as Parameters<typeof cache>[1] & { queue?: undefined },
  );
  return {
    specificationVersion: "v3",
    wrapGenerate: async ({ params, model }) => {
      const { result } = await results.getOrSet(
        keyOf(model, params),
        async () => ({ result: await model.doGenerate(withFlightSignal(params)) }),
        params.abortSignal === undefined ? undefined : { signal: params.abortSignal },
      );
      return result as GenerateResult;
    },
    wrapStream: async ({ params, model }) => {
      const signal = params.abortSignal;
      const call = signal === undefined ? streams : streams.cache.with({ signal });
      const items = call(keyOf(model, params), model, params) as AsyncGenerator<Item, void>;
      const first = await items.next();
      if (first.done === true || !("rest" in first.value)) {
        throw new Error("infercache: the model's stream ended before it began");
      }
      const stream = new ReadableStream<LanguageModelV3StreamPart>({
        async pull(controller) {
          try {
            const next = await items.next();
            if (next.done === true) controller.close();
            else if ("part" in next.value) controller.enqueue(next.value.part);
          } catch (error) {
            controller.error(error);
          }
        },
        async cancel() {
          await items.return(undefined);
        },
      });
      return { ...first.value.rest, stream } as StreamResult;
    },
  };
}
