/**
 * Builds `multipart/form-data` bodies byte by byte, as SDKs and `curl -F` write them, with a
 * fresh random boundary each time unless one is given (so identical forms arrive as different
 * bytes, as they do from real clients).
 */
import { randomBytes } from "node:crypto";

export type FormEntry =
  | [name: string, value: string]
  | [name: string, file: { filename: string; bytes: Uint8Array; type?: string }];

export function formBody(
  entries: FormEntry[],
  boundary = `----infercache-test-${randomBytes(12).toString("hex")}`,
): { body: Buffer; contentType: string } {
  const chunks: Buffer[] = [];
  for (const [name, value] of entries) {
    chunks.push(Buffer.from(`--${boundary}\r\n`));
    if (typeof value === "string") {
      chunks.push(
        Buffer.from(`Content-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`),
      );
    } else {
      chunks.push(
        Buffer.from(
          `Content-Disposition: form-data; name="${name}"; filename="${value.filename}"\r\nContent-Type: ${value.type ?? "application/octet-stream"}\r\n\r\n`,
        ),
        Buffer.from(value.bytes),
        Buffer.from("\r\n"),
      );
    }
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** Deterministic pseudo-audio of `size` bytes (a seed picks which). */
export function audioBytes(size: number, seed = 1): Buffer {
  const bytes = Buffer.alloc(size);
  let x = Math.imul(seed, 2654435761) >>> 0;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    bytes[i] = x >>> 24;
  }
  return bytes;
}
