/**
 * Sessions in the gateway: a request with `x-session-id` (or the `infercache-session` cookie)
 * reads and writes only that session's entries, and `GET /session/events` holds the session
 * open. A session belongs to its tenant (its store scope is `<tenant>/<id>`), so only requests
 * with the same credentials see it or can end it; with several streams open for one session (two
 * tabs), it ends when the last one closes.
 */

import { randomUUID } from "node:crypto";
import type { Answer } from "../../llm/answer.js";
import type { Store } from "../../store/store.js";
import { HttpError } from "../http/errors.js";
import { SseChannel } from "../http/sse.js";

/** Session streams open at once, across tenants. */
const MAX_OPEN = 1024;

export class Sessions {
  /** Open streams per scoped session id. */
  readonly #open = new Map<string, Set<SseChannel>>();
  readonly #store: Store;
  readonly #onError: (error: unknown) => void;
  #count = 0;

  constructor(store: Store, onError: (error: unknown) => void) {
    this.#store = store;
    this.#onError = onError;
  }

  /** The event stream that holds session `id` (a new one when absent) of `tenant`. */
  stream(id: string | undefined, tenant: string | undefined): Answer {
    if (this.#count >= MAX_OPEN) {
      throw new HttpError(503, `${MAX_OPEN} session streams are open; close one and retry`);
    }
    const session = id ?? randomUUID();
    const scoped = tenant === undefined ? session : `${tenant}/${session}`;
    const channel = new SseChannel();
    let streams = this.#open.get(scoped);
    if (streams === undefined) {
      streams = new Set();
      this.#open.set(scoped, streams);
    }
    streams.add(channel);
    this.#count++;
    channel.send(JSON.stringify({ session }), "session");
    channel.onClose(() => {
      const open = this.#open.get(scoped);
      if (open === undefined || !open.delete(channel)) return;
      this.#count--;
      if (open.size > 0) return;
      this.#open.delete(scoped);
      // Every namespace: the session may have picked others with x-infercache-namespace.
      this.#store.clear({ session: scoped }).catch(this.#onError);
    });
    return {
      status: 200,
      headers: {
        "content-type": "text/event-stream",
        "cache-control": "no-cache",
        "set-cookie": `infercache-session=${session}; Path=/; HttpOnly; SameSite=Lax`,
      },
      body: channel.body(),
    };
  }

  /** Ends every open stream (a shutdown does not wait for clients to disconnect). */
  closeAll(): void {
    for (const streams of [...this.#open.values()])
      for (const channel of [...streams]) channel.close();
  }
}
