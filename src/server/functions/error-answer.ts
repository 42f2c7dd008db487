/**
 * How `serve()` answers an `HttpError`: `{ "error": { "message": … } }` with its status. The
 * gateway's answers add an OpenAI-style `type`; `serve()` speaks no one's API but its own, and
 * its clients parse this shape.
 */

import type { Answer } from "../../llm/answer.js";
import { type HttpError, json } from "../http/errors.js";

export function errorAnswer(error: HttpError): Answer {
  return json({ error: { message: error.message } }, error.status);
}
