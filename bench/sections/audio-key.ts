import { type AudioKeyRow, audioKeyBench } from "../audio-key.js";
import type { Report, Section } from "../report.js";

export const audioKey: Section = {
  name: "audio-key",
  title: "audio upload key cost",
  async run(report: Report) {
    const rows: AudioKeyRow[] = await audioKeyBench();
    const ours = rows.find((r) => r.name.startsWith("transcriptions")) as AudioKeyRow;
    report.check(
      "10 MB audio upload: parse + key >= 0.9x raw SHA-256 of the same bytes",
      ours.ratio >= 0.9,
      `${ours.ratio.toFixed(2)}x (median of 61 pairs; ${ours.ms.toFixed(1)} ms vs ${(rows[0] as AudioKeyRow).ms.toFixed(1)} ms)`,
    );
    report.add(`## Audio uploads: the key of a 10 MB transcription request

A 10,000,000-byte file in a multipart form (with \`model\` and \`language\` fields), keyed the way
the gateway keys it: the parts found in the request buffer, the file hashed where it lies
(SHA-256 over a view, no copy), the key material hashed. Each row is timed in 61 pairs with
the raw hash, one right after the other (in turns); ratio = the median of the pairs' raw time
over the row's (1.00x = no cost beyond the hash); times are medians.

| what | ms per upload | MiB/s | vs raw SHA-256 |
|---|---:|---:|---:|
${rows.map((r) => `| ${r.name} | ${r.ms.toFixed(2)} | ${r.mibPerSec.toFixed(0)} | ${r.ratio.toFixed(2)}x |`).join("\n")}`);
  },
};
