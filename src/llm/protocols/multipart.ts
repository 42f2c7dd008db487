/**
 * `multipart/form-data` request bodies (RFC 7578), parsed in place: every part is a view into
 * the buffer the gateway received, never a copy, so a file part is hashed straight from those
 * bytes (`formKeyMaterial`). Bounded (parts, header bytes) and strict: a body that does not
 * parse, or that two parsers could read differently (a parameter named twice, bytes after a
 * quoted value), is a `RequestError` that says what is wrong, for a 400.
 *
 * Not a general MIME parser: no nested multiparts, and `Content-Transfer-Encoding` is not
 * decoded (RFC 7578 deprecates it; a part that has one is keyed with that header, as sent).
 */

import { createHash } from "node:crypto";
import { type ParsedCall, RequestError } from "../protocol.js";

/** One part of a form: a field, or a file when it has a file name. */
export interface FormPart {
  /** The `name` of its Content-Disposition. */
  name: string;
  /** The file name (`filename`, else a decoded `filename*`); `undefined` for a plain field. */
  filename: string | undefined;
  /** `filename*` (RFC 5987), decoded, when the part has one besides or instead of `filename`. */
  filenameStar: string | undefined;
  /** Its headers other than Content-Disposition (lowercase names), in order. */
  headers: [name: string, value: string][];
  /** Its bytes: a view into the request body. */
  data: Uint8Array;
}

/** Parts a form may have (an image edit sends up to 16 images; a transcription ~20 fields). */
export const MAX_PARTS = 1000;
/** Bytes of one part's header block. */
export const MAX_PART_HEADER_BYTES = 16 * 1024;
/** Field values up to this size are keyed as they are; longer ones (and files) by SHA-256. */
export const MAX_KEYED_FIELD_BYTES = 64 * 1024;

const HEADER_END = Buffer.from("\r\n\r\n", "latin1");

/**
 * The boundary of a `multipart/form-data` content type, or `undefined` for another media type.
 * @throws RequestError for a multipart content type without a usable boundary
 */
export function boundaryOf(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  const semicolon = contentType.indexOf(";");
  const type = (semicolon === -1 ? contentType : contentType.slice(0, semicolon))
    .trim()
    .toLowerCase();
  if (type !== "multipart/form-data") return undefined;
  const params = parseParameters(
    semicolon === -1 ? "" : contentType.slice(semicolon),
    "Content-Type",
  );
  const boundary = params.get("boundary");
  // RFC 2046: 1 to 70 characters, no line breaks.
  if (
    boundary === undefined ||
    boundary.length < 1 ||
    boundary.length > 70 ||
    /[\r\n]/.test(boundary)
  ) {
    throw malformed("its Content-Type has no boundary of 1 to 70 characters");
  }
  return boundary;
}

/** The parts of a form body, each a view into `body`. @throws RequestError */
export function parseMultipart(body: Uint8Array, boundary: string): FormPart[] {
  const buffer = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const dashBoundary = Buffer.from(`--${boundary}`, "latin1");
  const delimiter = Buffer.from(`\r\n--${boundary}`, "latin1");
  let at: number;
  if (buffer.subarray(0, dashBoundary.length).equals(dashBoundary)) {
    at = dashBoundary.length;
  } else {
    // A preamble before the first boundary is allowed (and ignored).
    const first = buffer.indexOf(delimiter);
    if (first === -1) throw malformed("it has no boundary line the Content-Type names");
    at = first + delimiter.length;
  }
  const parts: FormPart[] = [];
  for (;;) {
    if (buffer[at] === 0x2d && buffer[at + 1] === 0x2d) return parts; // the closing `--`; the epilogue is ignored
    // Transport padding (spaces, tabs) may follow a boundary, then its line break.
    while (buffer[at] === 0x20 || buffer[at] === 0x09) at++;
    if (buffer[at] !== 0x0d || buffer[at + 1] !== 0x0a) {
      throw malformed("a boundary line goes on past the boundary");
    }
    at += 2;
    if (parts.length === MAX_PARTS) throw malformed(`it has more than ${MAX_PARTS} parts`);
    const window = buffer.subarray(at, at + MAX_PART_HEADER_BYTES + HEADER_END.length);
    const headerEnd = window.indexOf(HEADER_END);
    if (headerEnd === -1) {
      throw malformed(
        window.length > MAX_PART_HEADER_BYTES
          ? `a part's headers are longer than ${MAX_PART_HEADER_BYTES} bytes`
          : "a part ends before its headers do",
      );
    }
    const part = parsePartHeaders(buffer.toString("utf8", at, at + headerEnd));
    const start = at + headerEnd + HEADER_END.length;
    const end = nextDelimiter(buffer, delimiter, start);
    if (end === -1) throw malformed("it ends inside a part, without the closing boundary");
    parts.push({ ...part, data: body.subarray(start, end) });
    at = end + delimiter.length;
  }
}

const DELIMITER_START = Buffer.from("\r\n--", "latin1");
/** False starts (`\r\n--` not followed by the boundary) before searching for the whole delimiter. */
const MAX_FALSE_STARTS = 64;

/**
 * Where the next delimiter starts, at or after `from` (-1 if none). The search for its first
 * four bytes is memchr-fast, the boundary is then compared: in audio and image bytes `\r\n--`
 * turns up about once in 4 GiB, so a 10 MB file costs one fast scan (a third faster than
 * searching for the whole delimiter at once). Data full of look-alikes (a text file of
 * `\r\n--` lines) is searched for the whole delimiter after `MAX_FALSE_STARTS`, so it cannot
 * make the scan slow.
 */
function nextDelimiter(buffer: Buffer, delimiter: Buffer, from: number): number {
  let at = from;
  for (let misses = 0; misses < MAX_FALSE_STARTS; misses++) {
    const start = buffer.indexOf(DELIMITER_START, at);
    if (start === -1 || start + delimiter.length > buffer.length) return -1;
    if (buffer.compare(delimiter, 4, delimiter.length, start + 4, start + delimiter.length) === 0) {
      return start;
    }
    at = start + 1;
  }
  return buffer.indexOf(delimiter, at);
}

/**
 * What a form contributes to a key: every part but those named in `leaveOut`, sorted by name
 * (stably: parts of the same name keep their order, which may matter, as `image[]`'s does); a
 * file by the SHA-256 of its bytes, its headers and its name's extension only (the name itself
 * cannot change the answer, the extension can: upstreams detect formats by it); a field by its
 * bytes and headers (by SHA-256 past `MAX_KEYED_FIELD_BYTES`).
 */
export function formKeyMaterial(
  parts: readonly FormPart[],
  leaveOut: readonly string[] = [],
): unknown[] {
  const kept = parts.filter((part) => !leaveOut.includes(part.name));
  kept.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return kept.map((part) => {
    if (part.filename !== undefined || part.filenameStar !== undefined) {
      return [
        "file",
        part.name,
        extensionOf(part.filename),
        extensionOf(part.filenameStar),
        part.headers,
        sha256(part.data),
      ];
    }
    if (part.data.byteLength > MAX_KEYED_FIELD_BYTES) {
      return ["field-digest", part.name, part.headers, sha256(part.data)];
    }
    return [
      "field",
      part.name,
      part.headers,
      // latin1: one character per byte, so every byte sequence keys as itself.
      Buffer.from(part.data.buffer, part.data.byteOffset, part.data.byteLength).toString("latin1"),
    ];
  });
}

/** The values of the fields named `name` (not files), as UTF-8 text, in order. */
export function fieldValues(parts: readonly FormPart[], name: string): string[] {
  const values: string[] = [];
  for (const part of parts) {
    if (part.name !== name || part.filename !== undefined || part.filenameStar !== undefined)
      continue;
    values.push(
      Buffer.from(part.data.buffer, part.data.byteOffset, part.data.byteLength).toString("utf8"),
    );
  }
  return values;
}

/**
 * A file name's extension as Python's `os.path.splitext` gives it (the dot included; leading
 * dots of the base name do not start one): `a.MP3` → `.MP3`, `.mp3` → ``, `a` → ``. Kept as
 * written: an upstream may tell `.MP3` from `.mp3`. `null` without a name.
 */
export function extensionOf(filename: string | undefined): string | null {
  if (filename === undefined) return null;
  const base = filename.slice(Math.max(filename.lastIndexOf("/"), filename.lastIndexOf("\\")) + 1);
  const stem = base.replace(/^\.+/, "");
  const dot = stem.lastIndexOf(".");
  return dot === -1 ? "" : stem.slice(dot);
}

/** The SHA-256 of bytes, hashed where they lie (a view, no copy). */
function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

function parsePartHeaders(text: string): Omit<FormPart, "data"> {
  const lines: string[] = [];
  for (const line of text.split("\r\n")) {
    // An obsolete folded line continues the previous header.
    if ((line.startsWith(" ") || line.startsWith("\t")) && lines.length > 0) {
      lines[lines.length - 1] += ` ${line.trim()}`;
    } else {
      lines.push(line);
    }
  }
  let disposition: string | undefined;
  const headers: [string, string][] = [];
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw malformed("a part has a header line without a name and a colon");
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === "content-disposition") {
      if (disposition !== undefined) throw malformed("a part has two Content-Disposition headers");
      disposition = value;
    } else {
      headers.push([name, value]);
    }
  }
  if (disposition === undefined) throw malformed("a part has no Content-Disposition header");
  const semicolon = disposition.indexOf(";");
  const type = (semicolon === -1 ? disposition : disposition.slice(0, semicolon))
    .trim()
    .toLowerCase();
  if (type !== "form-data") throw malformed("a part's Content-Disposition is not form-data");
  const params = parseParameters(
    semicolon === -1 ? "" : disposition.slice(semicolon),
    "Content-Disposition",
  );
  const name = params.get("name");
  if (name === undefined) throw malformed("a part's Content-Disposition has no name");
  const star = params.get("filename*");
  return {
    name,
    filename: params.get("filename"),
    filenameStar: star === undefined ? undefined : decodeExtValue(star),
    headers,
  };
}

/**
 * `; name=value; name="quoted value"` parameters (names lowercase). A parameter given twice, or
 * anything but a separator after a quoted value, is refused: parsers would disagree on it.
 */
function parseParameters(text: string, header: string): Map<string, string> {
  const params = new Map<string, string>();
  let i = 0;
  const n = text.length;
  const skipSpace = () => {
    while (i < n && (text[i] === " " || text[i] === "\t")) i++;
  };
  for (;;) {
    skipSpace();
    if (i >= n) return params;
    if (text[i] !== ";") throw malformed(`its ${header} parameters are not separated by ";"`);
    i++;
    skipSpace();
    if (i >= n) return params; // a trailing ";"
    const equals = text.indexOf("=", i);
    if (equals === -1) throw malformed(`a ${header} parameter has no value`);
    const name = text.slice(i, equals).trim().toLowerCase();
    if (name === "" || /[\s";]/.test(name)) throw malformed(`a ${header} parameter has a bad name`);
    i = equals + 1;
    skipSpace();
    let value: string;
    if (text[i] === '"') {
      i++;
      value = "";
      for (;;) {
        if (i >= n) throw malformed(`a ${header} parameter's quoted value is not closed`);
        const c = text[i] as string;
        if (c === '"') {
          i++;
          break;
        }
        if (c === "\\" && i + 1 < n) {
          value += text[i + 1];
          i += 2;
          continue;
        }
        value += c;
        i++;
      }
    } else {
      const end = text.indexOf(";", i);
      value = (end === -1 ? text.slice(i) : text.slice(i, end)).trim();
      if (/[\s"]/.test(value))
        throw malformed(`a ${header} parameter has an unquoted value with spaces or quotes`);
      i = end === -1 ? n : end;
    }
    if (params.has(name)) throw malformed(`a ${header} names one parameter twice`);
    params.set(name, value);
  }
}

/** RFC 5987 `charset'language'percent-encoded` (UTF-8 or ISO-8859-1). */
function decodeExtValue(value: string): string {
  const match = /^([A-Za-z0-9!#$&+^`{}~-]*)'[^']*'(.*)$/.exec(value);
  if (match === null) throw malformed("a part's filename* is not charset'language'value");
  const charset = (match[1] as string).toLowerCase();
  const bytes: number[] = [];
  const encoded = match[2] as string;
  for (let i = 0; i < encoded.length; i++) {
    if (encoded[i] === "%") {
      const hex = encoded.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw malformed("a part's filename* has a bad %-escape");
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(encoded.charCodeAt(i) & 0xff);
    }
  }
  return Buffer.from(bytes).toString(charset === "iso-8859-1" ? "latin1" : "utf8");
}

function malformed(what: string): RequestError {
  return new RequestError(
    400,
    `the request body is not valid multipart/form-data: ${what}; send the form as an SDK or \`curl -F\` does`,
  );
}

/** A request to a form route that is not a form: sent upstream as it is, uncached. */
export function notAForm(): ParsedCall {
  return {
    keyMaterial: null,
    stream: false,
    model: undefined,
    sampled: false,
    bypass: "the body is not multipart/form-data",
  };
}
