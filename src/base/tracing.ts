/**
 * OpenTelemetry spans, when the application has a tracer provider registered; nothing otherwise.
 *
 * `@opentelemetry/api` is an optional peer. It is not imported when this module loads: tracing is
 * on exactly when some copy of the API has registered a global tracer provider (an SDK's
 * `provider.register()`, `trace.setGlobalTracerProvider`, the Node SDK's `start()`), and only
 * then is our copy of the API loaded (`require`, synchronously, once). So an application without
 * OpenTelemetry pays no import, and a call pays one branch: `activeTracer()` reads a module
 * variable and returns `undefined`.
 *
 * How it knows without importing the API: every 1.x copy of the API keeps its globals in one
 * object at `globalThis[Symbol.for("opentelemetry.js.api.1")]` (that is how several copies in one
 * process agree), and a tracer provider sits in its `trace` slot (deleted by `trace.disable()`).
 * While tracing is off that slot is looked at on every 1,024th call and at the next call after a
 * cache or a gateway is created (`refreshTracing`), not on every call: a lookup on the global
 * object costs ~10 ns, and once `trace.disable()` deleted a slot the object is a hash table —
 * either is more than the 5% a hit may spend. So a provider registered while calls already run
 * is seen within 1,024 calls of each cache. While tracing is on, each call checks that the
 * provider is still registered (a property load). Nothing of the SDK is needed here; a provider
 * that samples nothing gets non-recording spans, which cost little.
 *
 * What goes into attributes: names of things (store kind, namespace, function, route, model),
 * outcomes, sizes, times and canonical keys (hashes). Never an argument, a prompt, a header or an
 * error message (which may quote either): a failure is recorded as its class (`error.type`).
 *
 * The API's types are not imported either, so the shipped declarations need no OpenTelemetry:
 * the interfaces below are the parts of it this code uses.
 */

import { createRequire } from "node:module";

export type AttributeValue = string | number | boolean;
export type Attributes = Record<string, AttributeValue | undefined>;

/** The part of an OpenTelemetry `Span` used here. */
export interface Span {
  setAttribute(key: string, value: AttributeValue): unknown;
  setAttributes(attributes: Attributes): unknown;
  setStatus(status: { code: number; message?: string }): unknown;
  updateName(name: string): unknown;
  end(): void;
}

/** An OpenTelemetry `Context` (opaque here). */
export type Context = object;

/** The part of an OpenTelemetry `Tracer` used here. */
export interface Tracer {
  startSpan(
    name: string,
    options?: { kind?: number; attributes?: Attributes },
    context?: Context,
  ): Span;
}

interface Api {
  trace: {
    getTracer(name: string, version?: string): Tracer;
    setSpan(context: Context, span: Span): Context;
  };
  context: {
    active(): Context;
    with<T>(context: Context, fn: () => T): T;
  };
  propagation: {
    extract(
      context: Context,
      carrier: unknown,
      getter: { keys(carrier: unknown): string[]; get(carrier: unknown, key: string): unknown },
    ): Context;
  };
}

/** OpenTelemetry's `SpanKind` values. */
export const SpanKind = { INTERNAL: 0, SERVER: 1, CLIENT: 2 } as const;
const STATUS_ERROR = 2;

const REGISTRY = Symbol.for("opentelemetry.js.api.1");
const RECHECK_CALLS = 1024;

let registry: { trace?: object } | undefined;
/** Calls until tracing is off is checked again. */
let countdown = 1;
/** The provider `tracer` was made for (a new one, after `disable()`, gets a new tracer). */
let tracerProvider: object | undefined;
/** The tracer while tracing is on; `undefined` while it is off. */
let tracer: Tracer | undefined;
/** Our copy of the API; `null` when it cannot be loaded (tracing then stays off). */
let api: Api | null | undefined;

/**
 * The tracer to make spans with, or `undefined` when no tracer provider is registered — the one
 * branch every traced call site pays. Off, it counts calls and looks again every 1,024th; on, it
 * checks that the provider is still the registered one (a property load).
 */
export function activeTracer(): Tracer | undefined {
  const current = tracer;
  if (current === undefined) {
    if (--countdown !== 0) return undefined;
    countdown = RECHECK_CALLS;
    return lookUp();
  }
  return (registry as { trace?: object }).trace === tracerProvider ? current : lookUp();
}

/** Looks for a registered provider at the next call (a cache or a gateway being created). */
export function refreshTracing(): void {
  countdown = 1;
}

function lookUp(): Tracer | undefined {
  registry ??= (globalThis as { [REGISTRY]?: { trace?: object } })[REGISTRY];
  const provider = registry?.trace;
  if (provider === undefined) {
    tracer = undefined;
    tracerProvider = undefined;
    return undefined;
  }
  return provider === tracerProvider && tracer !== undefined ? tracer : tracerFor(provider);
}

function tracerFor(provider: object): Tracer | undefined {
  tracerProvider = provider;
  if (api === undefined) {
    try {
      api = createRequire(import.meta.url)("@opentelemetry/api") as Api;
    } catch {
      // Registered by the application's copy, but ours cannot be resolved: no spans from here.
      api = null;
    }
  }
  tracer = api === null ? undefined : api.trace.getTracer("infercache");
  return tracer;
}

/** The API, once `activeTracer()` returned a tracer. */
function loaded(): Api {
  return api as Api;
}

/** Starts a span, a child of the active context's span. */
export function startSpan(
  tracer: Tracer,
  name: string,
  attributes: Attributes,
  kind: number = SpanKind.INTERNAL,
): Span {
  return tracer.startSpan(name, { kind, attributes });
}

/** Runs `fn` with `span` as the active span, so spans started inside are its children. */
export function inSpan<T>(span: Span, fn: () => T): T {
  const { context, trace } = loaded();
  return context.with(trace.setSpan(context.active(), span), fn);
}

/** The active context, to run something later under it (`runIn`). */
export function currentContext(): Context {
  return loaded().context.active();
}

/** A value of the active context. */
export function contextValue(key: symbol): unknown {
  return (loaded().context.active() as { getValue(key: symbol): unknown }).getValue(key);
}

/** Runs `fn` with `span` active and `key` set to `value` in the context. */
export function withSpanAndValue<T>(span: Span, key: symbol, value: unknown, fn: () => T): T {
  const { context, trace } = loaded();
  const active = context.active() as Context & { setValue(key: symbol, value: unknown): Context };
  return context.with(trace.setSpan(active.setValue(key, value), span), fn);
}

/** The context a request's trace headers (`traceparent`) name, through the registered propagator. */
export function extractContext(headers: Record<string, string | string[] | undefined>): Context {
  const { context, propagation } = loaded();
  return propagation.extract(context.active(), headers, HEADER_GETTER);
}

const HEADER_GETTER = {
  keys: (carrier: unknown) => Object.keys(carrier as object),
  get: (carrier: unknown, key: string) => (carrier as Record<string, unknown>)[key],
};

/** Runs `fn` under `context`. */
export function runIn<T>(context: Context, fn: () => T): T {
  return loaded().context.with(context, fn);
}

/** Marks a span failed, by the error's class only (a message may quote a prompt). */
export function failSpan(span: Span, error: unknown): void {
  span.setAttribute("error.type", errorType(error));
  span.setStatus({ code: STATUS_ERROR });
}

function errorType(error: unknown): string {
  if (error instanceof Error) {
    const reason = (error as { reason?: unknown }).reason;
    // An UpstreamError's reason (`refused`, `first-byte-timeout`, …) is a fixed word.
    return typeof reason === "string" && error.name === "UpstreamError"
      ? `UpstreamError:${reason}`
      : error.name;
  }
  return typeof error;
}

/**
 * Ends `span` now, or when `result` settles if it is a promise (failed when it rejects);
 * `onValue` sees the value first (to add what it says to the span).
 */
export function endWhenSettled<T>(span: Span, result: T, onValue?: (value: unknown) => void): T {
  if (result instanceof Promise) {
    result.then(
      (value: unknown) => {
        onValue?.(value);
        span.end();
      },
      (error: unknown) => endFailed(span, error),
    );
  } else {
    onValue?.(result);
    span.end();
  }
  return result;
}

/** Runs `fn` with `span` active and ends the span when `fn` is done. */
export function runSpan<T>(span: Span, fn: () => T, onValue?: (value: unknown) => void): T {
  let result: T;
  try {
    result = inSpan(span, fn);
  } catch (error) {
    endFailed(span, error);
    throw error;
  }
  return endWhenSettled(span, result, onValue);
}

/** The wrapped function's own run (a miss), as a child of the lookup's span. */
export function traceCompute(
  fn: (...args: unknown[]) => unknown,
  thisArg: unknown,
  args: unknown[],
): unknown {
  const tracer = activeTracer();
  if (tracer === undefined) return fn.apply(thisArg, args);
  const span = startSpan(tracer, "infercache.compute", { "code.function.name": fn.name });
  return runSpan(span, () => fn.apply(thisArg, args));
}

/** What a store is called in spans: `memory`, `sqlite`, `redis`, `tiered`, … */
export function storeKind(store: object): string {
  const name = store.constructor?.name ?? "";
  return name.endsWith("Store") && name.length > 5 ? name.slice(0, -5).toLowerCase() : "custom";
}

/** A span for one store operation (`get`, `set`, `delete`, `clear`, `size`, `purge`, `lock`). */
export function storeSpan(store: object, operation: string, namespace: string): Span | undefined {
  const tracer = activeTracer();
  if (tracer === undefined) return undefined;
  return startSpan(tracer, `infercache.store.${operation}`, {
    "infercache.store": storeKind(store),
    "infercache.store.operation": operation,
    "infercache.namespace": namespace,
  });
}

/** Runs one store operation in its span, when a tracer is installed. */
export function traceStore<T>(store: object, operation: string, namespace: string, fn: () => T): T {
  const span = storeSpan(store, operation, namespace);
  return span === undefined ? fn() : runSpan(span, fn);
}

/** Ends a read's span, saying whether it found an entry. */
export function endRead(span: Span, found: boolean): void {
  span.setAttribute("infercache.store.found", found);
  span.end();
}

/** Marks a span failed (by the error's class) and ends it. */
export function endFailed(span: Span, error: unknown): void {
  failSpan(span, error);
  span.end();
}

/**
 * A span for the time a queued call waits for a slot (`infercache.queue.wait`), from joining the
 * line until it starts or leaves; calls that find a free slot never wait and get none. The job
 * starts later from another call's completion, so it is run under the waiting call's context:
 * what it starts (the computation's span) stays a child of that call, not of whoever freed the
 * slot.
 */
export function traceQueueWait(
  job: { start: () => void; reject: (error: unknown) => void },
  lane: string,
  position: number,
): void {
  const tracer = activeTracer();
  if (tracer === undefined) return;
  const span = startSpan(tracer, "infercache.queue.wait", {
    "infercache.queue.lane": lane,
    "infercache.queue.position": position,
  });
  const context = currentContext();
  const { start, reject } = job;
  job.start = () => {
    span.end();
    runIn(context, start);
  };
  job.reject = (error) => {
    endFailed(span, error);
    reject(error);
  };
}
