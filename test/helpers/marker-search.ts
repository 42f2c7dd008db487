/**
 * Looks for a plaintext marker in bytes at rest, in every form a store could leave it: UTF-8
 * (and Latin-1, the same for ASCII), UTF-16LE (V8 writes two-byte strings so), hex, and base64
 * at each of the three alignments a marker can start at (an export line, a Redis string).
 */

export function forms(marker: string): { name: string; bytes: Buffer }[] {
  const utf8 = Buffer.from(marker, "utf8");
  const out = [
    { name: "utf-8", bytes: utf8 },
    { name: "utf-16le", bytes: Buffer.from(marker, "utf16le") },
    { name: "hex", bytes: Buffer.from(utf8.toString("hex"), "latin1") },
  ];
  for (let shift = 0; shift < 3; shift++) {
    // The marker after `shift` bytes of anything: only the characters that depend on the marker
    // alone (not on its neighbours) are compared.
    const text = Buffer.concat([Buffer.alloc(shift), utf8]).toString("base64");
    // Character c holds bits [6c, 6c + 6); the marker's bits are [8 shift, 8 (shift + length)).
    const start = Math.ceil((8 * shift) / 6);
    const end = Math.floor((8 * (shift + utf8.length)) / 6);
    out.push({ name: `base64+${shift}`, bytes: Buffer.from(text.slice(start, end), "latin1") });
  }
  return out;
}

/** The forms of `marker` found in `haystack` (none: the marker is not there). */
export function findMarker(haystack: Buffer, marker: string): string[] {
  return forms(marker)
    .filter((form) => haystack.includes(form.bytes))
    .map((form) => form.name);
}
