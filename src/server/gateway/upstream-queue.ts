/**
 * Bounds the upstream calls at once (`concurrency`) and the calls waiting for a slot
 * (`maxQueue`; more get `QueueFullError`, a 503). A call holds its slot until its response body
 * has been read to the end or cancelled, so a stream keeps its slot while it streams. Hits never
 * get here: only the pipeline's upstream calls do.
 */

import type { ByteStream } from "../../llm/answer.js";
import type { Upstream } from "../../llm/upstream.js";
import { Queue } from "../../queue/queue.js";

export function queuedUpstream(
  upstream: Upstream,
  concurrency: number,
  maxQueue: number,
): Upstream {
  const queue = new Queue({ maxSize: maxQueue });
  const lane = queue.lane({ concurrency, name: "upstream" });
  return async (request) => {
    const release = await lane.acquire({ signal: request.signal });
    let response: Awaited<ReturnType<Upstream>>;
    try {
      response = await upstream(request);
    } catch (error) {
      release();
      throw error;
    }
    let released = false;
    const done = () => {
      if (released) return;
      released = true;
      release();
    };
    const source = response.body;
    const body: ByteStream = {
      cancel: (reason) => {
        done();
        source.cancel(reason);
      },
      async *[Symbol.asyncIterator]() {
        try {
          yield* source;
        } finally {
          done();
        }
      },
    };
    return { ...response, body };
  };
}
