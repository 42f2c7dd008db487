/**
 * The event stream (`text/event-stream`) of one `serve()` call on a node:http response: one
 * `event:` / `data:` frame per `send`, with back-pressure. `send` hands back a promise when the
 * socket's buffer is full, so a generator runs no faster than its client reads and a client that
 * stopped reading does not make the server buffer without bound.
 */

import type { ServerResponse } from "node:http";

export class EventStream {
  readonly #raw: ServerResponse;

  constructor(raw: ServerResponse) {
    this.#raw = raw;
    raw.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  }

  /** Writes one event; the promise, if any, settles when there is room again or the client left. */
  send(event: string, data: unknown): Promise<void> | undefined {
    const raw = this.#raw;
    if (raw.destroyed || raw.writableEnded) return undefined;
    if (raw.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)) return undefined;
    return new Promise((resolve) => {
      const room = () => {
        raw.off("drain", room);
        raw.off("close", room);
        resolve();
      };
      raw.on("drain", room);
      raw.on("close", room);
    });
  }

  end(): void {
    if (!this.#raw.writableEnded) this.#raw.end();
  }
}
