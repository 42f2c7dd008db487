/**
 * The gateway's multipart/form-data parser: parts are views into the request's buffer (a file
 * is hashed where it lies, never copied), it reads any form as undici's parser does (a property
 * test over random forms, boundary look-alikes and CRLFs inside the data included), and it
 * refuses what is malformed or ambiguous with a 400 that names the problem and never the
 * content.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RequestError } from "../src/llm/protocol.js";
import {
  boundaryOf,
  extensionOf,
  formKeyMaterial,
  MAX_PARTS,
  parseMultipart,
} from "../src/llm/protocols/multipart.js";
import { type FormEntry, formBody } from "./helpers/form-body.js";

const parse = (body: Uint8Array | string, contentType: string) =>
  parseMultipart(
    typeof body === "string" ? Buffer.from(body) : body,
    boundaryOf(contentType) as string,
  );
const refusal = (run: () => unknown): string => {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(RequestError);
    expect((error as RequestError).status).toBe(400);
    return (error as Error).message;
  }
  throw new Error("expected a RequestError");
};

describe("parsing", () => {
  it("gives fields and files as views into the body, never copies", () => {
    const audio = Buffer.alloc(100_000, 7);
    const { body, contentType } = formBody([
      ["model", "whisper-1"],
      ["file", { filename: "a.mp3", bytes: audio, type: "audio/mpeg" }],
    ]);
    const parts = parse(body, contentType);
    expect(parts.map((p) => [p.name, p.filename])).toEqual([
      ["model", undefined],
      ["file", "a.mp3"],
    ]);
    const file = parts[1]?.data as Uint8Array;
    expect(file.buffer).toBe(body.buffer);
    expect(Buffer.from(file).equals(audio)).toBe(true);
    expect(parts[1]?.headers).toEqual([["content-type", "audio/mpeg"]]);
  });

  it("finds the delimiter after many look-alikes (`\\r\\n--` lines, a boundary's prefix)", () => {
    const lookalikes = "\r\n--\r\n--Bound\r\n--Boundar".repeat(100);
    const { body, contentType } = formBody(
      [
        ["file", { filename: "notes.txt", bytes: Buffer.from(lookalikes) }],
        ["model", "m"],
      ],
      "Boundary",
    );
    const parts = parse(body, contentType);
    expect(parts.map((p) => p.name)).toEqual(["file", "model"]);
    expect(Buffer.from(parts[0]?.data as Uint8Array).toString()).toBe(lookalikes);
  });

  it("takes a quoted boundary, a preamble, transport padding and an epilogue", () => {
    const body =
      'preamble\r\n--b "x"  \r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--b "x"--\r\nepilogue';
    const parts = parse(body, 'multipart/form-data; boundary="b \\"x\\""');
    expect(parts.map((p) => [p.name, Buffer.from(p.data).toString()])).toEqual([["a", "1"]]);
  });

  it("decodes filename* (RFC 5987) and keys both names' extensions", () => {
    const body =
      "--B\r\nContent-Disposition: form-data; name=file; filename=\"a.mp3\"; filename*=UTF-8''%C3%A9t%C3%A9.wav\r\n\r\nx\r\n--B--";
    const [part] = parse(body, "multipart/form-data; boundary=B");
    expect(part?.filenameStar).toBe("été.wav");
    expect(formKeyMaterial(part === undefined ? [] : [part])[0]).toEqual(
      expect.arrayContaining(["file", "file", ".mp3", ".wav"]),
    );
  });

  it("extensions as os.path.splitext gives them, kept as written", () => {
    expect(extensionOf("a.mp3")).toBe(".mp3");
    expect(extensionOf("A.MP3")).toBe(".MP3");
    expect(extensionOf(".mp3")).toBe("");
    expect(extensionOf("dir.d/clip")).toBe("");
    expect(extensionOf("C:\\x\\clip.tar.gz")).toBe(".gz");
    expect(extensionOf("clip.")).toBe(".");
    expect(extensionOf(undefined)).toBeNull();
  });

  it("is not multipart for another media type (the caller passes such bodies through)", () => {
    expect(boundaryOf("application/json")).toBeUndefined();
    expect(boundaryOf(undefined)).toBeUndefined();
  });

  it("reads every form as undici does (random fields, files, look-alike boundaries, CRLFs)", async () => {
    const text = fc.string({
      unit: fc.constantFrom("a", "-", "\r", "\n", "é", '"', " ", "B", "="),
    });
    const name = fc.stringMatching(/^[a-z_][a-z0-9_[\]]{0,8}$/);
    const entry: fc.Arbitrary<FormEntry> = fc.oneof(
      fc.tuple(name, text),
      fc.tuple(
        name,
        fc.record({
          filename: fc.stringMatching(/^[a-z]{1,6}(\.[a-z0-9]{1,4})?$/),
          bytes: fc.uint8Array({ maxLength: 300 }),
        }),
      ),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(entry, { maxLength: 6 }), async (entries) => {
        const { body, contentType } = formBody(entries, "B--BZ");
        const ours = parse(body, contentType).map((p) => [
          p.name,
          p.filename ?? null,
          Buffer.from(p.data).toString("latin1"),
        ]);
        const theirs: unknown[] = [];
        for (const [key, value] of await new Response(body, {
          headers: { "content-type": contentType },
        }).formData()) {
          theirs.push(
            typeof value === "string"
              ? [key, null, Buffer.from(value).toString("latin1")]
              : [key, value.name, Buffer.from(await value.arrayBuffer()).toString("latin1")],
          );
        }
        expect(ours).toEqual(theirs);
      }),
      { numRuns: 200 },
    );
  });
});

describe("keys of forms", () => {
  const key = (entries: FormEntry[], boundary?: string) => {
    const { body, contentType } = formBody(entries, boundary);
    return JSON.stringify(formKeyMaterial(parse(body, contentType)));
  };
  const audio = { filename: "a.mp3", bytes: Buffer.from("audio bytes"), type: "audio/mpeg" };

  it("do not depend on the boundary or on the order of differently named fields", () => {
    expect(
      key(
        [
          ["file", audio],
          ["model", "m"],
        ],
        "one",
      ),
    ).toBe(
      key(
        [
          ["model", "m"],
          ["file", audio],
        ],
        "two",
      ),
    );
  });

  it("keep the order of fields of one name", () => {
    expect(
      key([
        ["image[]", audio],
        ["image[]", { ...audio, bytes: Buffer.from("other") }],
      ]),
    ).not.toBe(
      key([
        ["image[]", { ...audio, bytes: Buffer.from("other") }],
        ["image[]", audio],
      ]),
    );
  });

  it("hold a file as its digest, never its bytes", () => {
    const material = key([["file", audio]]);
    expect(material).not.toContain("audio bytes");
    expect(material).toContain("ef71589075ccf9332917b0d8d711d1a8d205560f96842f9221de70e6c29454e0");
  });

  it("tell a file from a field with the same bytes, and an empty file name from none", () => {
    expect(key([["file", "audio bytes"]])).not.toBe(key([["file", audio]]));
    expect(key([["file", { ...audio, filename: "" }]])).not.toBe(key([["file", "audio bytes"]]));
  });

  it("leave out what the protocol names", () => {
    const { body, contentType } = formBody([
      ["user", "u1"],
      ["model", "m"],
    ]);
    const { body: other, contentType: otherType } = formBody([
      ["user", "u2"],
      ["model", "m"],
    ]);
    expect(formKeyMaterial(parse(body, contentType), ["user"])).toEqual(
      formKeyMaterial(parse(other, otherType), ["user"]),
    );
  });
});

describe("refusals: a 400 that says what is wrong", () => {
  const type = "multipart/form-data; boundary=X";
  const part = (disposition: string, data = "v") =>
    `--X\r\nContent-Disposition: ${disposition}\r\n\r\n${data}\r\n`;

  for (const [label, body, contentType, message] of [
    ["no boundary", "x", "multipart/form-data", /no boundary of 1 to 70 characters/],
    [
      "a boundary over 70 characters",
      "x",
      `multipart/form-data; boundary=${"b".repeat(71)}`,
      /1 to 70/,
    ],
    ["no boundary line", "just bytes", type, /no boundary line/],
    ["no closing boundary", part('form-data; name="a"'), type, /ends inside a part/],
    [
      "a part without Content-Disposition",
      "--X\r\nContent-Type: text/plain\r\n\r\nv\r\n--X--",
      type,
      /no Content-Disposition/,
    ],
    [
      "a disposition that is not form-data",
      `${part('attachment; name="a"')}--X--`,
      type,
      /not form-data/,
    ],
    ["a part without a name", `${part('form-data; filename="a"')}--X--`, type, /has no name/],
    [
      "a parameter named twice",
      `${part('form-data; name="a"; name="b"')}--X--`,
      type,
      /names one parameter twice/,
    ],
    [
      "bytes after a quoted value",
      `${part('form-data; name="a"x')}--X--`,
      type,
      /not separated by ";"/,
    ],
    ["an unclosed quote", `${part('form-data; name="a')}--X--`, type, /quoted value is not closed/],
    [
      "a header line without a colon",
      "--X\r\nContent-Disposition: form-data; name=a\r\nbogus\r\n\r\nv\r\n--X--",
      type,
      /without a name and a colon/,
    ],
    [
      "a boundary line with more after it",
      '--Xjunk\r\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n--X--',
      type,
      /goes on past the boundary/,
    ],
    [
      "headers that never end",
      `--X\r\nContent-Disposition: form-data; name="a"\r\nX-Long: ${"a".repeat(20_000)}`,
      type,
      /headers are longer than 16384 bytes/,
    ],
  ] as const) {
    it(label, () => {
      const message_ = refusal(() => parse(body, contentType));
      expect(message_).toMatch(message);
      expect(message_).toMatch(/^the request body is not valid multipart\/form-data: /);
    });
  }

  it(`more than ${MAX_PARTS} parts`, () => {
    const body = `${part('form-data; name="a"').repeat(MAX_PARTS + 1)}--X--`;
    expect(refusal(() => parse(body, type))).toMatch(/more than 1000 parts/);
  });

  it("never echoes what the form holds", () => {
    const secret = "sk-secret-in-a-field-name";
    const message = refusal(() =>
      parse(`${part(`form-data; name="${secret}"; name="x"`)}--X--`, type),
    );
    expect(message).not.toContain(secret);
  });
});
