/**
 * A loopback upstream that answers in the providers' documented formats for the families
 * beyond chat: Gemini, OpenAI audio, images and moderations, and Cohere-style rerank. Forms are
 * read with undici's own multipart parser (`Response.formData()`), not the gateway's, so the
 * tests see what a real server would make of the bytes the gateway forwarded.
 *
 * Formats, from the providers' API references:
 * - Gemini `generateContent` (https://ai.google.dev/api/generate-content#v1beta.GenerateContentResponse):
 *   `{ candidates: [{ content: { parts: [{ text }], role: "model" }, finishReason, index }],
 *   usageMetadata: { promptTokenCount, candidatesTokenCount, totalTokenCount }, modelVersion,
 *   responseId }`, sent indented as Google does. `streamGenerateContent?alt=sse`
 *   (https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent): each
 *   `data:` one GenerateContentResponse, events ending in `\r\n\r\n`, no terminator; the last
 *   chunk carries `finishReason`. A blocked prompt: `promptFeedback: { blockReason }` and no
 *   candidates. Errors (https://ai.google.dev/gemini-api/docs/troubleshooting):
 *   `{ error: { code, message, status } }`.
 * - OpenAI transcriptions and translations
 *   (https://platform.openai.com/docs/api-reference/audio/createTranscription,
 *   https://platform.openai.com/docs/api-reference/audio/json-object,
 *   https://platform.openai.com/docs/api-reference/audio/verbose-json-object): `json`
 *   `{ text, usage: { type: "tokens", input_tokens, input_token_details, output_tokens,
 *   total_tokens } }`, `text`, `srt`, `vtt` as text, `verbose_json` `{ task, language,
 *   duration, text, segments, words? }`; streamed
 *   (https://platform.openai.com/docs/api-reference/audio/transcript-text-delta-event):
 *   `transcript.text.delta` `{ type, delta }` events, then `transcript.text.done`
 *   `{ type, text, usage }`.
 * - OpenAI speech (https://platform.openai.com/docs/api-reference/audio/createSpeech): the
 *   audio's bytes; with `stream_format: "sse"`
 *   (https://platform.openai.com/docs/api-reference/audio/speech-audio-delta-event)
 *   `speech.audio.delta` `{ type, audio }` (base64) events, then `speech.audio.done`
 *   `{ type, usage }`.
 * - OpenAI images (https://platform.openai.com/docs/api-reference/images/object):
 *   `{ created, data: [{ b64_json } | { url, revised_prompt }], background, output_format,
 *   quality, size, usage }`; streamed (https://platform.openai.com/docs/api-reference/images-streaming):
 *   `event: image_generation.partial_image` / `image_edit.partial_image` events
 *   `{ type, b64_json, partial_image_index, … }`, then `….completed` `{ type, b64_json,
 *   created_at, …, usage }`.
 * - OpenAI moderations (https://platform.openai.com/docs/api-reference/moderations/object):
 *   `{ id, model, results: [{ flagged, categories, category_scores,
 *   category_applied_input_types }] }`.
 * - Cohere rerank (https://docs.cohere.com/reference/rerank), which Jina and vLLM follow:
 *   `{ id, results: [{ index, relevance_score, document? }], meta: { api_version,
 *   billed_units: { search_units } } }`.
 * - OpenAI errors (https://platform.openai.com/docs/guides/error-codes):
 *   `{ error: { message, type, param, code } }`.
 *
 * Sampled families (speech, images) answer differently on every call (a counter is in the
 * bytes), so a test can tell the first answer from a second one. `hold()` parks every request
 * until released, so tests put many requests in flight at once.
 */
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

export interface ProviderRequest {
  method: string;
  path: string;
  search: string;
  headers: IncomingMessage["headers"];
  /** The bytes as received. */
  body: Buffer;
  json: Record<string, unknown> | undefined;
  /** The form, for multipart requests (undici's parser). */
  form: FormData | undefined;
}

export type ProviderResponder = (
  request: ProviderRequest,
  response: ServerResponse,
) => void | Promise<void>;

export interface ProviderUpstream {
  /** e.g. `http://127.0.0.1:4321` */
  url: string;
  received: ProviderRequest[];
  /** How requests are answered; `undefined` for the documented defaults. */
  respond: ProviderResponder | undefined;
  /** Responses the client cut before they were written whole. */
  aborted: number;
  /** Requests whose path ends with `suffix`. */
  count(suffix: string): number;
  /** Parks every request from now on until the returned function is called. */
  hold(): () => void;
  close(): Promise<void>;
}

let counter = 0;

export async function startProviderUpstream(): Promise<ProviderUpstream> {
  let gate: Promise<void> | undefined;
  const upstream: ProviderUpstream = {
    url: "",
    received: [],
    respond: undefined,
    aborted: 0,
    count: (suffix) => upstream.received.filter((r) => r.path.endsWith(suffix)).length,
    hold: () => {
      let open!: () => void;
      gate = new Promise<void>((resolve) => {
        open = resolve;
      });
      return () => {
        gate = undefined;
        open();
      };
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server: Server = createServer(async (incoming, outgoing) => {
    const chunks: Buffer[] = [];
    for await (const chunk of incoming) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const url = new URL(incoming.url ?? "/", "http://upstream");
    const type = incoming.headers["content-type"] ?? "";
    let json: Record<string, unknown> | undefined;
    let form: FormData | undefined;
    if (type.startsWith("multipart/form-data")) {
      form = await new Response(body, { headers: { "content-type": type } })
        .formData()
        .catch(() => undefined);
    } else {
      try {
        json = body.length === 0 ? undefined : (JSON.parse(body.toString("utf8")) as typeof json);
      } catch {
        json = undefined;
      }
    }
    const received: ProviderRequest = {
      method: incoming.method ?? "GET",
      path: url.pathname,
      search: url.search,
      headers: incoming.headers,
      body,
      json,
      form,
    };
    upstream.received.push(received);
    outgoing.once("close", () => {
      if (!outgoing.writableFinished) upstream.aborted++;
    });
    if (gate !== undefined) await gate;
    await (upstream.respond ?? providerAnswer)(received, outgoing);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  upstream.url = `http://127.0.0.1:${port}`;
  return upstream;
}

/** The documented default answer for a request of any family here. */
export async function providerAnswer(
  request: ProviderRequest,
  response: ServerResponse,
): Promise<void> {
  const path = request.path;
  if (path.endsWith(":generateContent")) return sendJson(response, 200, geminiResponse(request), 2);
  if (path.endsWith(":streamGenerateContent")) {
    if (new URLSearchParams(request.search).get("alt") !== "sse") {
      // Without alt=sse: one JSON array of responses.
      return sendJson(response, 200, [geminiResponse(request)], 2);
    }
    return sendEvents(response, geminiStreamEvents(request));
  }
  if (path.endsWith("/audio/transcriptions") || path.endsWith("/audio/translations")) {
    return transcription(request, response);
  }
  if (path.endsWith("/audio/speech")) return speech(request, response);
  if (path.endsWith("/images/generations") || path.endsWith("/images/edits")) {
    return images(request, response);
  }
  if (path.endsWith("/moderations")) return sendJson(response, 200, moderation(request));
  if (path.endsWith("/rerank")) return sendJson(response, 200, rerank(request));
  sendJson(response, 404, openaiErrorBody(`no route ${path}`));
}

// Gemini

/** What a Gemini answer says: a function of the last user text, so answers differ. */
export function geminiText(request: ProviderRequest): string {
  const contents = (request.json?.contents as { parts?: { text?: string }[] }[] | undefined) ?? [];
  const text =
    contents
      .at(-1)
      ?.parts?.map((part) => part.text ?? "")
      .join("") ?? "";
  return `gemini says: ${text}`;
}

export function geminiResponse(request: ProviderRequest): Record<string, unknown> {
  return {
    candidates: [
      {
        content: { parts: [{ text: geminiText(request) }], role: "model" },
        finishReason: "STOP",
        index: 0,
      },
    ],
    usageMetadata: { promptTokenCount: 8, candidatesTokenCount: 4, totalTokenCount: 12 },
    modelVersion: modelOfPath(request.path),
    responseId: `resp-${++counter}`,
  };
}

/** The `data:` events of a streamed Gemini answer (each with its `\r\n\r\n`). */
export function geminiStreamEvents(request: ProviderRequest): string[] {
  const words = geminiText(request).split(" ");
  const responseId = `resp-${++counter}`;
  const modelVersion = modelOfPath(request.path);
  return words.map((word, i) => {
    const last = i === words.length - 1;
    const chunk = {
      candidates: [
        {
          content: { parts: [{ text: i === 0 ? word : ` ${word}` }], role: "model" },
          ...(last && { finishReason: "STOP" }),
          index: 0,
        },
      ],
      usageMetadata: {
        promptTokenCount: 8,
        ...(last && { candidatesTokenCount: 4 }),
        totalTokenCount: last ? 12 : 8,
      },
      modelVersion,
      responseId,
    };
    return `data: ${JSON.stringify(chunk)}\r\n\r\n`;
  });
}

export function geminiError(status: number, message: string): Record<string, unknown> {
  const names: Record<number, string> = {
    400: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
  };
  return { error: { code: status, message, status: names[status] ?? "UNKNOWN" } };
}

function modelOfPath(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1, path.lastIndexOf(":"));
}

// Audio

/** A form's fields and files, as undici read them. */
export async function formOf(
  request: ProviderRequest,
): Promise<{ fields: Record<string, string[]>; files: Record<string, File[]> }> {
  const fields: Record<string, string[]> = {};
  const files: Record<string, File[]> = {};
  for (const [name, value] of request.form?.entries() ?? []) {
    if (typeof value === "string") fields[name] = [...(fields[name] ?? []), value];
    else files[name] = [...(files[name] ?? []), value];
  }
  return { fields, files };
}

const sha = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** What a transcription says: which bytes it heard, the extension, and the fields. */
export async function transcriptText(request: ProviderRequest): Promise<string> {
  const { fields, files } = await formOf(request);
  const file = files.file?.[0];
  const bytes = file === undefined ? new Uint8Array() : new Uint8Array(await file.arrayBuffer());
  const name = file?.name ?? "";
  const extension = name.includes(".") ? name.slice(name.lastIndexOf(".")) : "(none)";
  const extras = Object.entries(fields)
    .filter(([field]) => !["file", "model", "response_format", "stream"].includes(field))
    .map(([field, values]) => `${field}=${values.join("|")}`)
    .join(" ");
  const verb = request.path.endsWith("/translations") ? "translated" : "heard";
  return `${verb} ${sha(bytes).slice(0, 12)} as ${extension}${extras === "" ? "" : ` with ${extras}`}`;
}

async function transcription(request: ProviderRequest, response: ServerResponse): Promise<void> {
  const { fields } = await formOf(request);
  const text = await transcriptText(request);
  const format = fields.response_format?.[0] ?? "json";
  const usage = {
    type: "tokens",
    input_tokens: 14,
    input_token_details: { text_tokens: 0, audio_tokens: 14 },
    output_tokens: 5,
    total_tokens: 19,
  };
  if (fields.stream?.[0] === "true" && request.path.endsWith("/transcriptions")) {
    const words = text.split(" ");
    return sendEvents(response, [
      ...words.map(
        (word, i) =>
          `data: ${JSON.stringify({ type: "transcript.text.delta", delta: i === 0 ? word : ` ${word}` })}\n\n`,
      ),
      `data: ${JSON.stringify({ type: "transcript.text.done", text, usage })}\n\n`,
    ]);
  }
  switch (format) {
    case "text":
      return sendText(response, "text/plain; charset=utf-8", `${text}\n`);
    case "srt":
      return sendText(
        response,
        "text/plain; charset=utf-8",
        `1\n00:00:00,000 --> 00:00:02,000\n${text}\n\n`,
      );
    case "vtt":
      return sendText(
        response,
        "text/plain; charset=utf-8",
        `WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n${text}\n\n`,
      );
    case "verbose_json":
      return sendJson(response, 200, {
        task: request.path.endsWith("/translations") ? "translate" : "transcribe",
        language: "english",
        duration: 2,
        text,
        segments: [{ id: 0, seek: 0, start: 0, end: 2, text, tokens: [1, 2], temperature: 0 }],
        ...(fields["timestamp_granularities[]"]?.includes("word") && {
          words: text.split(" ").map((word, i) => ({ word, start: i * 0.2, end: i * 0.2 + 0.2 })),
        }),
        usage: { type: "duration", seconds: 2 },
      });
    default:
      return sendJson(response, 200, { text, usage });
  }
}

/** Speech bytes: the input's digest and a counter (each reading differs), as the format's type. */
export function speechBytes(request: ProviderRequest): Buffer {
  const input = String(request.json?.input ?? "");
  return Buffer.concat([
    Buffer.from(`ID3 speech ${++counter} `),
    Buffer.from(sha(Buffer.from(`${input}|${String(request.json?.voice)}`)), "hex"),
    Buffer.from([0, 255, 128, 13, 10]),
  ]);
}

function speech(request: ProviderRequest, response: ServerResponse): void {
  const bytes = speechBytes(request);
  if (request.json?.stream_format === "sse") {
    const half = Math.floor(bytes.length / 2);
    sendEvents(response, [
      `data: ${JSON.stringify({ type: "speech.audio.delta", audio: bytes.subarray(0, half).toString("base64") })}\n\n`,
      `data: ${JSON.stringify({ type: "speech.audio.delta", audio: bytes.subarray(half).toString("base64") })}\n\n`,
      `data: ${JSON.stringify({ type: "speech.audio.done", usage: { input_tokens: 9, output_tokens: 30, total_tokens: 39 } })}\n\n`,
    ]);
    return;
  }
  const types: Record<string, string> = {
    mp3: "audio/mpeg",
    opus: "audio/opus",
    aac: "audio/aac",
    flac: "audio/flac",
    wav: "audio/wav",
    pcm: "audio/pcm",
  };
  response.writeHead(200, {
    "content-type": types[String(request.json?.response_format ?? "mp3")] ?? "audio/mpeg",
  });
  response.end(bytes);
}

// Images

async function images(request: ProviderRequest, response: ServerResponse): Promise<void> {
  const edit = request.path.endsWith("/edits");
  let prompt: string;
  let digest = "";
  let stream: boolean;
  let n: number;
  let format: string;
  let partials: number;
  if (edit) {
    const { fields, files } = await formOf(request);
    prompt = fields.prompt?.[0] ?? "";
    for (const file of [...(files.image ?? []), ...(files["image[]"] ?? []), ...(files.mask ?? [])])
      digest += sha(new Uint8Array(await file.arrayBuffer())).slice(0, 8);
    stream = fields.stream?.[0] === "true";
    n = Number(fields.n?.[0] ?? 1);
    format = fields.response_format?.[0] ?? "b64_json";
    partials = Number(fields.partial_images?.[0] ?? 0);
  } else {
    prompt = String(request.json?.prompt ?? "");
    stream = request.json?.stream === true;
    n = Number(request.json?.n ?? 1);
    // DALL·E answers with URLs unless asked for bytes; GPT image models always with bytes.
    const dalle = String(request.json?.model ?? "dall-e-2").startsWith("dall-e");
    format = String(request.json?.response_format ?? (dalle ? "url" : "b64_json"));
    partials = Number(request.json?.partial_images ?? 0);
  }
  const draw = (i: number) =>
    Buffer.from(`PNG ${prompt} ${digest} #${++counter}.${i}`).toString("base64");
  const shared = { background: "opaque", output_format: "png", quality: "low", size: "1024x1024" };
  const usage = {
    total_tokens: 100,
    input_tokens: 50,
    output_tokens: 50,
    input_tokens_details: { text_tokens: 10, image_tokens: 40 },
  };
  if (stream) {
    const event = edit ? "image_edit" : "image_generation";
    const events: string[] = [];
    for (let i = 0; i < n; i++) {
      for (let p = 0; p < partials; p++) {
        events.push(
          `event: ${event}.partial_image\ndata: ${JSON.stringify({ type: `${event}.partial_image`, b64_json: draw(i), created_at: 1_713_833_628, ...shared, partial_image_index: p })}\n\n`,
        );
      }
      events.push(
        `event: ${event}.completed\ndata: ${JSON.stringify({ type: `${event}.completed`, b64_json: draw(i), created_at: 1_713_833_628, ...shared, usage })}\n\n`,
      );
    }
    return sendEvents(response, events);
  }
  const data = Array.from({ length: n }, (_, i) =>
    format === "url"
      ? { url: `https://images.example/img-${++counter}.png`, revised_prompt: prompt }
      : { b64_json: draw(i) },
  );
  sendJson(response, 200, { created: 1_713_833_628, data, ...shared, usage });
}

// Moderations and rerank

export function moderation(request: ProviderRequest): Record<string, unknown> {
  const input = request.json?.input;
  const texts = Array.isArray(input) ? input.map((item) => JSON.stringify(item)) : [String(input)];
  return {
    id: `modr-${++counter}`,
    model: String(request.json?.model ?? "omni-moderation-latest"),
    results: texts.map((text) => {
      const violent = text.includes("kill");
      return {
        flagged: violent,
        categories: { violence: violent, harassment: false },
        category_scores: { violence: violent ? 0.97 : 0.001, harassment: 0.0002 },
        category_applied_input_types: { violence: ["text"], harassment: ["text"] },
      };
    }),
  };
}

export function rerank(request: ProviderRequest): Record<string, unknown> {
  const query = String(request.json?.query ?? "").toLowerCase();
  const documents = (request.json?.documents as unknown[] | undefined) ?? [];
  const texts = documents.map((d) =>
    typeof d === "string" ? d : String((d as { text?: unknown }).text),
  );
  const scored = texts.map((text, index) => {
    const words = text.toLowerCase().split(/\s+/);
    const shared = query.split(/\s+/).filter((word) => words.includes(word)).length;
    return { index, relevance_score: Number((shared / (words.length || 1)).toFixed(4)), text };
  });
  scored.sort((a, b) => b.relevance_score - a.relevance_score || a.index - b.index);
  const top = typeof request.json?.top_n === "number" ? request.json.top_n : scored.length;
  return {
    id: `rerank-${++counter}`,
    results: scored.slice(0, top).map(({ index, relevance_score, text }) => ({
      index,
      relevance_score,
      ...(request.json?.return_documents === true && { document: { text } }),
    })),
    meta: { api_version: { version: "2" }, billed_units: { search_units: 1 } },
  };
}

// Writing answers

export function openaiErrorBody(message: string, type = "invalid_request_error") {
  return { error: { message, type, param: null, code: null } };
}

export function sendJson(
  response: ServerResponse,
  status: number,
  value: unknown,
  indent?: number,
): void {
  response.writeHead(status, { "content-type": "application/json; charset=utf-8" });
  response.end(JSON.stringify(value, null, indent));
}

export function sendText(response: ServerResponse, contentType: string, text: string): void {
  response.writeHead(200, { "content-type": contentType });
  response.end(text);
}

export function sendEvents(response: ServerResponse, events: string[]): void {
  response.writeHead(200, { "content-type": "text/event-stream" });
  for (const event of events) response.write(event);
  response.end();
}

/** A stream cut after `keep` events: the socket is destroyed, as a dying upstream does. */
export function cutEvents(response: ServerResponse, events: string[], keep: number): void {
  response.writeHead(200, { "content-type": "text/event-stream" });
  for (const event of events.slice(0, keep)) response.write(event);
  setImmediate(() => response.destroy());
}
