/**
 * The span of one call of a cached function (`infercache.call`), when a tracer is installed: the
 * parent of the call's store operations, its computation and its queue wait. What the call did
 * comes from the `status` object the call paths already fill in (outcome, canonical key, age,
 * compute time), so the paths themselves carry no tracing code; without a tracer the wrapper
 * never gets here.
 */

import { failSpan, inSpan, type Span, startSpan, type Tracer } from "../base/tracing.js";
import type { CallOptions } from "./call-paths.js";
import type { CallStatus } from "./telemetry.js";

export type Invoke = (
  thisArg: unknown,
  args: unknown[],
  options: CallOptions | undefined,
) => unknown;

/** What the call span says about the cache, fixed for one cached function. */
export interface CallSpanInfo {
  function: string;
  namespace: string;
  store: string;
}

/** Runs one call inside its span. */
export function tracedCall(
  tracer: Tracer,
  info: CallSpanInfo,
  invoke: Invoke,
  thisArg: unknown,
  args: unknown[],
  options: CallOptions | undefined,
): unknown {
  const span = startSpan(tracer, "infercache.call", {
    "code.function.name": info.function,
    "infercache.namespace": info.namespace,
    "infercache.store": info.store,
  });
  // The caller's own status object is filled as usual; otherwise one of ours tells the span.
  const status: CallStatus = options?.status ?? {};
  const traced: CallOptions = options?.status === status ? options : { ...options, status };
  let result: unknown;
  try {
    result = inSpan(span, () => invoke(thisArg, args, traced));
  } catch (error) {
    end(span, status, error);
    throw error;
  }
  if (result instanceof Promise) {
    result.then(
      () => end(span, status, undefined),
      (error: unknown) => end(span, status, error),
    );
  } else {
    end(span, status, undefined);
  }
  return result;
}

function end(span: Span, status: CallStatus, error: unknown): void {
  if (status.source !== undefined) span.setAttribute("infercache.outcome", status.source);
  if (status.key !== undefined) span.setAttribute("infercache.key", status.key);
  if (status.ageMs !== undefined) span.setAttribute("infercache.age_ms", status.ageMs);
  if (status.computeMs !== undefined) span.setAttribute("infercache.compute_ms", status.computeMs);
  if (error !== undefined) failSpan(span, error);
  span.end();
}
