/**
 * What the local engine's API formats need from it: one generation at a time (prompt in, text
 * chunks out, with what it cost), token counts and ids. `LlamaEngine` implements it over
 * node-llama-cpp; `responses-api.ts` and `messages-api.ts` speak the OpenAI Responses and
 * Anthropic Messages formats on top, so a format never touches the runtime (contexts,
 * sequences, KV state).
 */

/** Sampling and stopping, in node-llama-cpp's terms. */
export interface SamplingOptions {
  maxTokens: number;
  temperature: number;
  topP?: number;
  topK?: number;
  seed?: number;
  customStopTriggers?: string[];
}

export interface Generated {
  text: string;
  /** `length`: cut at `maxTokens`; `stop`: the model or a stop sequence ended it. */
  finish: "length" | "stop";
  completionTokens: number;
  /** Prompt tokens restored from KV state rather than evaluated. */
  reused: number;
  /** The stop sequence that ended it, if one did. */
  stopSequence?: string | undefined;
}

export interface Generator {
  readonly modelName: string;
  /** A number for ids, unique in this engine. */
  nextId(): number;
  countTokens(text: string): number;
  generate(
    prompt: string,
    options: SamplingOptions,
    signal: AbortSignal,
    onText: (chunk: string) => void,
  ): Promise<Generated>;
}

export function jsonResponse(value: unknown, status = 200): Response {
  return new Response(JSON.stringify(value), {
    status,
    headers: { "content-type": "application/json" },
  });
}

/**
 * An event stream written by `produce` (each `send` is one event, blank line added). A failure
 * while producing errors the stream: the client sees a cut stream, never a false end.
 */
export function eventStreamResponse(
  produce: (send: (event: string) => void) => Promise<void>,
): Response {
  const encoder = new TextEncoder();
  const stream = new ReadableStream<Uint8Array>({
    start: async (controller) => {
      try {
        await produce((event) => controller.enqueue(encoder.encode(`${event}\n\n`)));
        controller.close();
      } catch (error) {
        controller.error(error);
      }
    },
  });
  return new Response(stream, {
    headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
  });
}

/** The text of a content value: a string, or the `text` of each part of an array. */
export function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((part) =>
        typeof part === "object" && part !== null && "text" in part
          ? String((part as { text: unknown }).text)
          : "",
      )
      .join("");
  }
  return "";
}

export function positiveInteger(value: unknown, fallback: number): number {
  return typeof value === "number" && Number.isInteger(value) && value > 0 ? value : fallback;
}
