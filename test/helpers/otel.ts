/**
 * An OpenTelemetry SDK for tests: a `BasicTracerProvider` with the in-memory exporter, registered
 * globally, and a context manager on AsyncLocalStorage so spans started across `await`s find
 * their parent. (`@opentelemetry/context-async-hooks` is that context manager, packaged; it is not
 * installed here, and these ~20 lines are all of it the tests need.)
 */

import { AsyncLocalStorage } from "node:async_hooks";
import {
  type Context,
  type ContextManager,
  context,
  propagation,
  ROOT_CONTEXT,
  trace,
} from "@opentelemetry/api";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";

/** Context across `await`s, on AsyncLocalStorage (shared with bench/tracing.ts). */
export class AsyncLocalContextManager implements ContextManager {
  readonly #storage = new AsyncLocalStorage<Context>();

  active(): Context {
    return this.#storage.getStore() ?? ROOT_CONTEXT;
  }

  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return this.#storage.run(ctx, () => fn.apply(thisArg, args));
  }

  bind<T>(ctx: Context, target: T): T {
    if (typeof target !== "function") return target;
    const manager = this;
    return function (this: unknown, ...args: unknown[]) {
      return manager.with(ctx, () => (target as (...a: unknown[]) => unknown).apply(this, args));
    } as T;
  }

  enable(): this {
    return this;
  }

  disable(): this {
    this.#storage.disable();
    return this;
  }
}

export interface TestTracing {
  exporter: InMemorySpanExporter;
  spans(): ReadableSpan[];
  /** Spans named `name`. */
  named(name: string): ReadableSpan[];
  /** The span's parent span id ("" for a root). */
  parentOf(span: ReadableSpan): string;
  reset(): void;
  uninstall(): void;
}

export function installTracing(): TestTracing {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  context.setGlobalContextManager(new AsyncLocalContextManager());
  trace.setGlobalTracerProvider(provider);
  return {
    exporter,
    spans: () => exporter.getFinishedSpans(),
    named: (name) => exporter.getFinishedSpans().filter((span) => span.name === name),
    parentOf: (span) => span.parentSpanContext?.spanId ?? "",
    reset: () => exporter.reset(),
    uninstall: () => {
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
}

/** Every attribute value of every span, as text (to search for what must never be there). */
export function allAttributeText(spans: readonly ReadableSpan[]): string {
  return spans
    .map((span) =>
      [span.name, ...Object.entries(span.attributes).map(([k, v]) => `${k}=${String(v)}`)].join(
        "\n",
      ),
    )
    .join("\n");
}
