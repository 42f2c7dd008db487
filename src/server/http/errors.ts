/**
 * One typed error for HTTP answers: a status, a message fit to show the client (never a secret,
 * a prompt or an internal path) and, for logs, the cause. Every route handler throws or returns
 * these; the server turns them into JSON answers in one place.
 */

import type { Answer } from "../../llm/answer.js";

export class HttpError extends Error {
  override readonly name = "HttpError";
  constructor(
    readonly status: number,
    message: string,
    options?: { cause?: unknown; type?: string },
  ) {
    super(message, options);
    this.type = options?.type;
  }

  readonly type: string | undefined;

  /** The OpenAI-style error body most clients parse. */
  answer(headers: Record<string, string> = {}): Answer {
    const type =
      this.type ??
      (this.status === 401
        ? "authentication_error"
        : this.status === 404
          ? "not_found_error"
          : this.status === 413
            ? "request_too_large"
            : this.status === 503
              ? "overloaded_error"
              : this.status >= 500
                ? "upstream_error"
                : "invalid_request_error");
    return json({ error: { message: this.message, type } }, this.status, headers);
  }
}

export function json(value: unknown, status = 200, headers: Record<string, string> = {}): Answer {
  return {
    status,
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(value),
  };
}
