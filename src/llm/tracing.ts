/**
 * Spans of LLM requests (see `base/tracing.ts` for when spans exist at all). A request — one
 * through the gateway, or one `cachingFetch` call — has a span that is the parent of everything
 * it does: its store operations, its upstream call. The pipeline tells that span what the request
 * was (route, model, key) and what happened (outcome, tokens); the upstream call gets a span of
 * its own, a CLIENT span in the GenAI conventions' form (`chat gpt-4o`).
 *
 * Attributes follow the OpenTelemetry GenAI conventions where they fit: `gen_ai.operation.name`,
 * `gen_ai.request.model`, `gen_ai.provider.name` (from the upstream's host, when it is a known
 * provider's), and `gen_ai.usage.input_tokens` / `output_tokens` for what the upstream spent. A
 * hit spends nothing, so a hit carries `infercache.saved_tokens` instead of usage (dashboards add
 * usage up as cost). Never a prompt, a header or a query string (it may hold an API key).
 */

import {
  type Attributes,
  activeTracer,
  contextValue,
  endFailed,
  extractContext,
  runIn,
  type Span,
  SpanKind,
  withSpanAndValue,
} from "../base/tracing.js";
import { type Answer, type ByteStream, isByteStream } from "./answer.js";
import type { Call, Outcome } from "./call.js";
import type { Usage } from "./protocol.js";
import type { UpstreamRequest } from "./upstream.js";

/** What the spans of one request share: the request's span, and what the pipeline found out. */
interface RequestTrace {
  span: Span;
  method: string;
  operation: string | undefined;
  model: string | undefined;
}

const REQUEST = Symbol.for("infercache.request-trace");

/** The GenAI operation of a protocol, where the conventions name one. */
const OPERATIONS: Record<string, string> = {
  chat: "chat",
  completion: "text_completion",
  embeddings: "embeddings",
  messages: "chat",
  responses: "chat",
  gemini: "generate_content",
};

/** `gen_ai.provider.name` of the hosts whose names the conventions list. */
const PROVIDERS: Record<string, string> = {
  "api.openai.com": "openai",
  "api.anthropic.com": "anthropic",
  "generativelanguage.googleapis.com": "gcp.gemini",
  "api.mistral.ai": "mistral_ai",
  "api.groq.com": "groq",
  "api.deepseek.com": "deepseek",
  "api.x.ai": "x_ai",
  "api.perplexity.ai": "perplexity",
  "api.cohere.com": "cohere",
};

const MAX_MODEL = 128;

function requestTrace(): RequestTrace | undefined {
  return activeTracer() === undefined ? undefined : (currentValue() as RequestTrace | undefined);
}

function currentValue(): unknown {
  return contextValue(REQUEST);
}

/**
 * Runs one LLM request in its span: a SERVER span for the gateway (its parent is the client's
 * `traceparent`, through the registered propagator), an INTERNAL one for `cachingFetch`. The span
 * ends when the answer's head is ready, or, for a streamed body, when the body ends.
 */
export function traceLlmRequest(
  method: string,
  path: string,
  headers: Record<string, string | string[] | undefined> | undefined,
  run: () => Promise<Answer>,
): Promise<Answer> {
  const tracer = activeTracer();
  if (tracer === undefined) return run();
  const parent = headers === undefined ? undefined : extractContext(headers);
  const attributes: Attributes = { "http.request.method": method, "url.path": path };
  // Named by the method until the pipeline knows the route: a path no route takes is the
  // client's to choose, and span names must stay few.
  const span =
    parent === undefined
      ? tracer.startSpan(method, { kind: SpanKind.INTERNAL, attributes })
      : tracer.startSpan(method, { kind: SpanKind.SERVER, attributes }, parent);
  const trace: RequestTrace = { span, method, operation: undefined, model: undefined };
  const run2 = () => withSpanAndValue(span, REQUEST, trace, run);
  let answer: Promise<Answer>;
  try {
    answer = parent === undefined ? run2() : runIn(parent, run2);
  } catch (error) {
    endFailed(span, error);
    throw error;
  }
  return answer.then(
    (result) => {
      span.setAttribute("http.response.status_code", result.status);
      if (result.status >= 500) span.setStatus({ code: 2 });
      const badge = result.headers["x-infercache"];
      if (badge !== undefined) span.setAttribute("infercache.outcome", badge);
      if (isByteStream(result.body)) result.body = endAfter(result.body, span);
      else span.end();
      return result;
    },
    (error: unknown) => {
      endFailed(span, error);
      throw error;
    },
  );
}

/** What a request is, once parsed: route, model, GenAI operation, key (a hash). */
export function traceLlmCall(call: Call): void {
  const trace = requestTrace();
  if (trace === undefined) return;
  const route = call.protocol.name;
  const model = call.parsed.model?.slice(0, MAX_MODEL);
  const operation = OPERATIONS[route];
  trace.model = model;
  trace.operation = operation;
  const span = trace.span;
  span.updateName(`${trace.method} ${call.request.url.pathname}`);
  span.setAttribute("infercache.route", route);
  if (operation !== undefined) span.setAttribute("gen_ai.operation.name", operation);
  if (model !== undefined) span.setAttribute("gen_ai.request.model", model);
  if (!call.itemized && call.key !== "") span.setAttribute("infercache.key", call.key);
  if (call.itemized) span.setAttribute("infercache.items", call.keys.length);
}

/** What happened to the request (the pipeline's `report`). */
export function traceLlmResult(outcome: Outcome, savedTokens: number): void {
  const trace = requestTrace();
  if (trace === undefined) return;
  trace.span.setAttribute("infercache.outcome", outcome);
  if (savedTokens > 0) trace.span.setAttribute("infercache.saved_tokens", savedTokens);
}

/** The tokens the upstream spent on the answer being stored. */
export function traceLlmUsage(value: unknown): void {
  const trace = requestTrace();
  if (trace === undefined) return;
  const usage = (value as { usage?: Usage } | undefined)?.usage;
  if (usage === undefined || usage.total === 0) return;
  trace.span.setAttributes({
    "gen_ai.usage.input_tokens": usage.input,
    "gen_ai.usage.output_tokens": usage.output,
  });
}

/**
 * A span for one upstream call (CLIENT), from sending it to the end of its body. `end` is
 * `undefined` when no tracer is installed.
 */
export function upstreamSpan(
  request: UpstreamRequest,
): { span: Span; end: (error?: unknown) => void } | undefined {
  const tracer = activeTracer();
  if (tracer === undefined) return undefined;
  const trace = currentValue() as RequestTrace | undefined;
  const url = request.url;
  const attributes: Attributes = {
    "http.request.method": request.method,
    "server.address": url.hostname,
    "server.port": Number(url.port || (url.protocol === "https:" ? 443 : 80)),
    "url.path": url.pathname,
  };
  const provider = PROVIDERS[url.hostname];
  if (provider !== undefined) attributes["gen_ai.provider.name"] = provider;
  if (trace?.operation !== undefined) attributes["gen_ai.operation.name"] = trace.operation;
  if (trace?.model !== undefined) attributes["gen_ai.request.model"] = trace.model;
  const name =
    trace?.operation !== undefined && trace.model !== undefined
      ? `${trace.operation} ${trace.model}`
      : request.method;
  const span = tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes });
  let ended = false;
  return {
    span,
    end: (error) => {
      if (ended) return;
      ended = true;
      if (error === undefined) span.end();
      else endFailed(span, error);
    },
  };
}

/** The same body, ending `span` when it has been read to the end, failed or been cancelled. */
function endAfter(body: ByteStream, span: Span): ByteStream {
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    span.end();
  };
  return {
    cancel: (reason) => {
      end();
      body.cancel(reason);
    },
    async *[Symbol.asyncIterator]() {
      try {
        yield* body;
      } finally {
        end();
      }
    },
  };
}
