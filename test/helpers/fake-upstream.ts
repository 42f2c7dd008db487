/**
 * A loopback upstream that speaks the providers' documented wire formats, for the tests that
 * must produce a fault (an error stream, a cut body, a stall) the real engine never makes.
 *
 * Formats, from the providers' API references:
 * - OpenAI Chat Completions object and streaming chunks
 *   (https://platform.openai.com/docs/api-reference/chat/object,
 *   https://platform.openai.com/docs/api-reference/chat-streaming): `data: {chunk}` events, the
 *   last one `data: [DONE]`; with `stream_options.include_usage` every chunk carries
 *   `"usage": null` and a final chunk with `"choices": []` carries the usage.
 * - OpenAI Embeddings (https://platform.openai.com/docs/api-reference/embeddings/object):
 *   `{ object: "list", data: [{ object: "embedding", index, embedding }], model, usage }`.
 * - OpenAI errors (https://platform.openai.com/docs/guides/error-codes):
 *   `{ "error": { "message", "type", "param", "code" } }`.
 *
 * Every request is recorded (method, path, query, headers, body) so tests assert what the
 * upstream really saw. A test replaces `respond` to send anything else.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

export interface Received {
  method: string;
  path: string;
  search: string;
  headers: IncomingMessage["headers"];
  body: string;
  json: Record<string, unknown> | undefined;
}

export type Responder = (
  request: Received,
  response: ServerResponse,
  defaults: Defaults,
) => void | Promise<void>;

export interface Defaults {
  /** The default answer for a request (chat, completions, embeddings). */
  answer(request: Received, response: ServerResponse): void;
}

export interface FakeUpstream {
  url: string;
  /** e.g. `http://127.0.0.1:4321/v1` */
  baseURL: string;
  received: Received[];
  /** How requests are answered; `undefined` for the defaults. */
  respond: Responder | undefined;
  /** Requests whose answer is still being written (a stream in progress), and aborted ones. */
  aborted: number;
  count(path: string): number;
  close(): Promise<void>;
}

let counter = 0;

export async function startFakeUpstream(): Promise<FakeUpstream> {
  const upstream: FakeUpstream = {
    url: "",
    baseURL: "",
    received: [],
    respond: undefined,
    aborted: 0,
    count: (path) => upstream.received.filter((r) => r.path.endsWith(path)).length,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const defaults: Defaults = { answer: defaultAnswer };
  const server: Server = createServer(async (incoming, outgoing) => {
    const chunks: Buffer[] = [];
    for await (const chunk of incoming) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    const url = new URL(incoming.url ?? "/", "http://upstream");
    let json: Record<string, unknown> | undefined;
    try {
      json = body === "" ? undefined : (JSON.parse(body) as Record<string, unknown>);
    } catch {
      json = undefined;
    }
    const received: Received = {
      method: incoming.method ?? "GET",
      path: url.pathname,
      search: url.search,
      headers: incoming.headers,
      body,
      json,
    };
    upstream.received.push(received);
    outgoing.once("close", () => {
      if (!outgoing.writableFinished) upstream.aborted++;
    });
    await (upstream.respond ?? ((r, o) => defaultAnswer(r, o)))(received, outgoing, defaults);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  upstream.url = `http://127.0.0.1:${port}`;
  upstream.baseURL = `${upstream.url}/v1`;
  return upstream;
}

/** The text a chat answer carries: a function of the last user message, so answers differ. */
export function answerText(request: Received): string {
  const messages = (request.json?.messages as { content?: unknown }[] | undefined) ?? [];
  const last = messages.at(-1)?.content;
  return `echo: ${typeof last === "string" ? last : JSON.stringify(last ?? request.json?.prompt ?? "")}`;
}

export function chatCompletion(request: Received): Record<string, unknown> {
  const text = answerText(request);
  return {
    id: `chatcmpl-${++counter}`,
    object: "chat.completion",
    created: 1_700_000_000,
    model: String(request.json?.model ?? "fake"),
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: text, refusal: null },
        logprobs: null,
        finish_reason: "stop",
      },
    ],
    usage: {
      prompt_tokens: 10,
      completion_tokens: 5,
      total_tokens: 15,
      prompt_tokens_details: { cached_tokens: 0 },
    },
  };
}

/** The SSE events of a streamed chat answer (each a full `data: …` line pair). */
export function chatStreamEvents(request: Received): string[] {
  const text = answerText(request);
  const includeUsage =
    (request.json?.stream_options as { include_usage?: boolean } | undefined)?.include_usage ===
    true;
  const id = `chatcmpl-${++counter}`;
  const base = {
    id,
    object: "chat.completion.chunk",
    created: 1_700_000_000,
    model: String(request.json?.model ?? "fake"),
    system_fingerprint: null,
  };
  const usageField = includeUsage ? { usage: null } : {};
  const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
    `data: ${JSON.stringify({ ...base, choices, ...usageField, ...extra })}\n\n`;
  const events = [
    chunk([
      { index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null },
    ]),
    ...text.split(" ").map((word, i) =>
      chunk([
        {
          index: 0,
          delta: { content: i === 0 ? word : ` ${word}` },
          logprobs: null,
          finish_reason: null,
        },
      ]),
    ),
    chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: "stop" }]),
  ];
  if (includeUsage) {
    events.push(
      `data: ${JSON.stringify({ ...base, choices: [], usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } })}\n\n`,
    );
  }
  events.push("data: [DONE]\n\n");
  return events;
}

export function embeddings(request: Received): Record<string, unknown> {
  const input = request.json?.input;
  const inputs = Array.isArray(input) && typeof input[0] !== "number" ? input : [input];
  return {
    object: "list",
    data: inputs.map((item, index) => ({
      object: "embedding",
      index,
      embedding: [String(item).length, index, 0.5],
    })),
    model: String(request.json?.model ?? "fake"),
    usage: { prompt_tokens: inputs.length * 2, total_tokens: inputs.length * 2 },
  };
}

function defaultAnswer(request: Received, response: ServerResponse): void {
  if (request.path.endsWith("/embeddings")) {
    sendJson(response, 200, embeddings(request));
    return;
  }
  if (request.path.endsWith("/chat/completions")) {
    if (request.json?.stream === true) {
      response.writeHead(200, { "content-type": "text/event-stream" });
      for (const event of chatStreamEvents(request)) response.write(event);
      response.end();
      return;
    }
    sendJson(response, 200, chatCompletion(request));
    return;
  }
  sendJson(response, 200, { object: "list", data: [{ id: "fake", object: "model" }] });
}

export function sendJson(response: ServerResponse, status: number, value: unknown): void {
  response.writeHead(status, { "content-type": "application/json" });
  response.end(JSON.stringify(value));
}
