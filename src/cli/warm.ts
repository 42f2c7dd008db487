/**
 * `infercache warm FILE.jsonl`: precomputes a file of requests into the store, like Gradio's
 * cached examples, through the same gateway `serve` runs, so `serve` with the same store,
 * namespace and tenant settings answers them from the cache.
 */

import { MAX_LINE_BYTES, openLines } from "./lines.js";
import {
  DEFAULT_STORE,
  ENCRYPTION_HELP,
  encryptionKeys,
  formatBytes,
  GATEWAY_OPTIONS,
  HOOKS_HELP,
  integer,
  keyingOptions,
  loadHooks,
  modeOption,
  openSource,
  openStore,
  option,
  parse,
  sourceSpec,
  UsageError,
} from "./shared.js";

export const WARM_HELP = `Usage: infercache warm FILE.jsonl [--upstream URL | --model PATH] [options]

Sends every request of FILE.jsonl through the gateway and stores the answers. A line is a
request body ({"model": …, "messages": […]} for chat, "prompt" for completions, "input" for
embeddings) or {"path": "/v1/…", "body": {…}}, with "headers": {…} for the headers that are
part of a key and that its clients send (e.g. {"anthropic-version": "2023-06-01"} for
/v1/messages; never credentials: use --api-key). Use the store, namespace and tenant settings
of the gateway that will serve them.

  --upstream URL / --model PATH   what computes the answers (as for serve; a checkout's
                        bundled test model when neither is given)
  --store SPEC          sqlite:PATH (default ${DEFAULT_STORE}) or redis://HOST:PORT
  --namespace NAME      default gateway
${ENCRYPTION_HELP}
${HOOKS_HELP} (the gateway's: keys depend on them)
  --shared-cache        write shared answers (for a gateway started with --shared-cache)
  --api-key KEY         the API key the requests are sent with (env OPENAI_API_KEY); with a
                        partitioned gateway, answers are that key's, and need --tenant-secret
  --tenant-secret S     the gateway's tenant secret (env INFERCACHE_TENANT_SECRET)
  --concurrency N       requests at once (default 1)
  --mode MODE           record (default: store every answer, sampled ones too, so a gateway
                        in replay mode finds them), refresh (ask the upstream again and
                        overwrite), read-write (store only what that gateway would)
`;

interface Line {
  number: number;
  path: string;
  body: unknown;
  headers?: Record<string, string>;
}

export async function warmCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(
    args,
    { ...GATEWAY_OPTIONS, "api-key": { type: "string" }, mode: { type: "string" } },
    1,
  );
  if (values.help === true) {
    process.stdout.write(WARM_HELP);
    return 0;
  }
  const file = positionals[0];
  if (file === undefined) throw new UsageError(`warm needs a file of requests.\n${WARM_HELP}`);
  const storeSpec = option(values, "store") ?? DEFAULT_STORE;
  if (storeSpec === "memory")
    throw new UsageError(
      "warm writes a store that outlives it: pass --store sqlite:PATH or redis://…",
    );
  const keying = keyingOptions(values);
  const mode = modeOption(values, "record", ["record", "refresh", "read-write"]);
  const apiKey = option(values, "api-key", "OPENAI_API_KEY");
  const concurrency = integer(values, "concurrency", 1, 1);
  const sourceOptions = sourceSpec(values);
  // Loaded here, not at the top: the CLI loads the gateway only for the commands that use it.
  const { headerRole } = await import("../llm/headers.js");
  const lines = await readLines(file, (name) => headerRole(name) === "credential");
  const hooks = await loadHooks(values);
  const store = await openStore(storeSpec, { create: true, encryption: encryptionKeys(values) });
  // Tenants are keyed hashes: warm and serve agree on them through the store's own secret, or a
  // --tenant-secret both are given.
  if (
    !keying.sharedCache &&
    apiKey !== undefined &&
    keying.tenantSecret === undefined &&
    store.secret === undefined
  ) {
    await store.close();
    throw new UsageError(
      "answers partitioned by API key need the gateway's --tenant-secret with this store (or pass --shared-cache)",
    );
  }
  let source: Awaited<ReturnType<typeof openSource>>;
  try {
    source = await openSource(values, sourceOptions);
  } catch (error) {
    await store.close();
    throw error;
  }
  const { createGateway } = await import("../server/gateway/gateway.js");
  const gateway = createGateway({
    ...source.gateway,
    store,
    ...keying,
    mode,
    ...hooks,
  });
  const counts = { computed: 0, cached: 0, failed: 0 };
  const failures: string[] = [];
  const progress = new Progress(lines.requests.length + lines.invalid.length);
  for (const invalid of lines.invalid) {
    counts.failed++;
    failures.push(invalid);
    progress.tick(counts);
  }
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < lines.requests.length) {
      const line = lines.requests[next++] as Line;
      try {
        const response = await gateway.handle(
          new Request(`http://warm${line.path}`, {
            method: "POST",
            headers: {
              ...line.headers,
              "content-type": "application/json",
              ...(apiKey !== undefined && { authorization: `Bearer ${apiKey}` }),
            },
            body: JSON.stringify(line.body),
          }),
        );
        const text = await response.text();
        if (!response.ok) {
          counts.failed++;
          failures.push(`line ${line.number}: ${response.status} ${text.slice(0, 200)}`);
        } else if (["hit", "coalesced"].includes(response.headers.get("x-infercache") ?? "")) {
          counts.cached++;
        } else counts.computed++;
      } catch (error) {
        counts.failed++;
        failures.push(`line ${line.number}: ${(error as Error).message}`);
      }
      progress.tick(counts);
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    progress.done();
    await store.close();
    await source.engine?.close();
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  process.stdout.write(
    `warmed ${lines.requests.length + lines.invalid.length} requests in ${seconds} s: ${counts.computed} computed, ${counts.cached} already cached, ${counts.failed} failed\n`,
  );
  for (const failure of failures.slice(0, 20)) process.stderr.write(`  ${failure}\n`);
  if (failures.length > 20) process.stderr.write(`  … and ${failures.length - 20} more\n`);
  return counts.failed > 0 ? 1 : 0;
}

async function readLines(
  file: string,
  isCredential: (name: string) => boolean,
): Promise<{ requests: Line[]; invalid: string[] }> {
  const requests: Line[] = [];
  const invalid: string[] = [];
  for await (const line of await openLines(file)) {
    if ("tooLong" in line) {
      invalid.push(
        `line ${line.number}: ${formatBytes(line.tooLong)}, longer than the ${MAX_LINE_BYTES / 1024 ** 2} MiB a line may have`,
      );
      continue;
    }
    const { number, text } = line;
    if (text.trim() === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      invalid.push(`line ${number}: not JSON (${(error as Error).message})`);
      continue;
    }
    const request = toLine(value, number, isCredential);
    if (typeof request === "string") invalid.push(request);
    else requests.push(request);
  }
  return { requests, invalid };
}

function toLine(
  value: unknown,
  number: number,
  isCredential: (name: string) => boolean,
): Line | string {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    return `line ${number}: expected a JSON object (a request body, or { "path", "body" })`;
  const record = value as Record<string, unknown>;
  if (typeof record.path === "string" && typeof record.body === "object" && record.body !== null) {
    // The gateway mirrors the upstream's base path: /v1/… for OpenAI, /v1beta/… for Gemini.
    if (!record.path.startsWith("/"))
      return `line ${number}: "path" must be an absolute path such as /v1/chat/completions, got ${JSON.stringify(record.path)}`;
    if (record.headers === undefined) return { number, path: record.path, body: record.body };
    const headers = headersOf(record.headers, isCredential);
    if (typeof headers === "string") return `line ${number}: ${headers}`;
    return { number, path: record.path, body: record.body, headers };
  }
  if (Array.isArray(record.messages)) return { number, path: "/v1/chat/completions", body: value };
  if (record.prompt !== undefined) return { number, path: "/v1/completions", body: value };
  if (record.input !== undefined) return { number, path: "/v1/embeddings", body: value };
  return `line ${number}: cannot tell the route: expected "messages", "prompt" or "input", or { "path", "body" }`;
}

/** A line's headers, lowercase, or what is wrong with them (never their values). */
function headersOf(
  value: unknown,
  isCredential: (name: string) => boolean,
): Record<string, string> | string {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return '"headers" must be an object of strings, e.g. {"anthropic-version": "2023-06-01"}';
  }
  const headers: Record<string, string> = {};
  for (const [name, text] of Object.entries(value)) {
    if (typeof text !== "string") {
      return `"headers" must be an object of strings, e.g. {"anthropic-version": "2023-06-01"}; ${JSON.stringify(name)} is not`;
    }
    const lower = name.toLowerCase();
    if (isCredential(lower)) {
      return `"headers" must not carry credentials (${lower}); pass --api-key instead`;
    }
    headers[lower] = text;
  }
  return headers;
}

/** A progress bar on a terminal; a line every 10% otherwise (CI logs). */
class Progress {
  readonly #total: number;
  readonly #tty = process.stderr.isTTY === true;
  #done = 0;
  #lastDecile = -1;

  constructor(total: number) {
    this.#total = total;
  }

  tick(counts: { computed: number; cached: number; failed: number }): void {
    this.#done++;
    const share = this.#total === 0 ? 1 : this.#done / this.#total;
    const text = `${this.#done}/${this.#total}  computed ${counts.computed}  cached ${counts.cached}  failed ${counts.failed}`;
    if (this.#tty) {
      const width = 30;
      const filled = Math.round(share * width);
      process.stderr.write(`\r[${"#".repeat(filled)}${".".repeat(width - filled)}] ${text}`);
      return;
    }
    const decile = Math.floor(share * 10);
    if (decile !== this.#lastDecile) {
      this.#lastDecile = decile;
      process.stderr.write(`${Math.round(share * 100)}% ${text}\n`);
    }
  }

  done(): void {
    if (this.#tty && this.#done > 0) process.stderr.write("\n");
  }
}
