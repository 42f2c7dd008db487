/**
 * `GET /session/events` of `serve()`: an event stream that holds a session open. It names the
 * session (the `x-session-id` header, the `infercache-session` cookie, or a new id it sets as that
 * cookie), and when it closes — the client left, or the server is closing — `endSession` drops
 * the session's per-session entries in every cache.
 */

import { randomUUID } from "node:crypto";
import { endSession } from "../../cache/session.js";
import type { Answer } from "../../llm/answer.js";
import type { HttpRequest } from "../http/node-http.js";
import { sessionOf } from "../http/session-id.js";
import { SseChannel } from "../http/sse.js";

export class SessionEvents {
  readonly #open = new Set<SseChannel>();

  stream(request: HttpRequest): Answer {
    const session = sessionOf(request.headers) ?? randomUUID();
    const channel = new SseChannel();
    this.#open.add(channel);
    channel.send(JSON.stringify({ session }), "session");
    channel.onClose(() => {
      this.#open.delete(channel);
      void endSession(session);
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

  /** Ends every open stream: a shutdown does not wait for clients to disconnect. */
  closeAll(): void {
    for (const channel of [...this.#open]) channel.close();
  }
}
