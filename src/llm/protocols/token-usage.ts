/**
 * Usage as OpenAI's audio and image APIs report it (`input_tokens`, `output_tokens`,
 * `total_tokens`), unlike chat's `prompt_tokens` / `completion_tokens`. Duration-billed answers
 * (`{ type: "duration", seconds }`) count no tokens.
 */

import { NO_USAGE, type Usage } from "../protocol.js";

export function tokenUsage(usage: unknown): Usage {
  if (typeof usage !== "object" || usage === null) return NO_USAGE;
  const u = usage as { input_tokens?: unknown; output_tokens?: unknown; total_tokens?: unknown };
  const input = count(u.input_tokens);
  const output = count(u.output_tokens);
  return { input, output, cachedInput: 0, total: count(u.total_tokens) || input + output };
}

function count(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : 0;
}
