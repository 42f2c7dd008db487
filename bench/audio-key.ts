/**
 * The key cost of a 10 MB audio upload (`POST /audio/transcriptions`, a multipart form): the
 * protocol's parse and key (find the parts, SHA-256 of the file where it lies in the request
 * buffer, the hash of the key material), and the pipeline's whole lookup (that, plus the key
 * context and one store read), each next to raw `createHash("sha256")` over the same audio
 * bytes. Each contender is timed in pairs with the raw hash; the median of the pairs' ratios
 * is reported.
 */
import { createHash } from "node:crypto";
import { hashKey } from "../src/index.js";
import { LlmPipeline } from "../src/llm/pipeline.js";
import { transcriptionsProtocol } from "../src/llm/protocols/audio.js";
import type { UpstreamResponse } from "../src/llm/upstream.js";
import { MemoryStore } from "../src/store/memory.js";
import { middle } from "./report.js";

export interface AudioKeyRow {
  name: string;
  /** Median ms per 10 MB upload. */
  ms: number;
  mibPerSec: number;
  /** Raw SHA-256's time over this one's (>= 1: as fast or faster). */
  ratio: number;
}

const SIZE = 10_000_000;

function upload(): { body: Buffer; contentType: string; audio: Buffer } {
  const audio = Buffer.alloc(SIZE);
  let x = 12345;
  for (let i = 0; i < SIZE; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    audio[i] = x >>> 24;
  }
  const boundary = "----formdata-undici-031415926535";
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\ngpt-4o-transcribe\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="language"\r\n\r\nen\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="meeting.mp3"\r\nContent-Type: audio/mpeg\r\n\r\n`,
  );
  const body = Buffer.concat([head, audio, Buffer.from(`\r\n--${boundary}--\r\n`)]);
  return {
    body,
    contentType: `multipart/form-data; boundary=${boundary}`,
    audio: body.subarray(head.length, head.length + SIZE),
  };
}

export async function audioKeyBench(pairs = 61): Promise<AudioKeyRow[]> {
  const { body, contentType, audio } = upload();
  const url = new URL("https://api.openai.com/v1/audio/transcriptions");
  const pipeline = new LlmPipeline({
    store: new MemoryStore(),
    upstream: async (): Promise<UpstreamResponse> => {
      throw new Error("the bench never calls the upstream");
    },
  });
  const request = {
    method: "POST",
    url,
    headers: { "content-type": contentType, authorization: "Bearer sk-bench" },
    body,
  };
  let sink: unknown;
  const contenders: [string, () => Promise<unknown> | unknown][] = [
    [
      "raw createHash(sha256) over the audio",
      () => createHash("sha256").update(audio).digest("hex"),
    ],
    [
      "transcriptions parse + key",
      () =>
        hashKey(transcriptionsProtocol.parse(body, contentType, url).keyMaterial, {
          root: "request",
        }),
    ],
    ["LlmPipeline.lookup (parse, key, store read)", () => pipeline.lookup(request)],
  ];
  for (const [, run] of contenders) for (let i = 0; i < 3; i++) sink = await run();
  // A shared machine's load changes from one moment to the next: each contender is timed right
  // after the raw hash (in turns, so neither always goes first), and the ratio of each pair is
  // what is reported (its median), with the median times.
  const times = contenders.map(() => [] as number[]);
  const ratios = contenders.map(() => [] as number[]);
  const time = async (run: () => unknown) => {
    const start = performance.now();
    sink = await run();
    return performance.now() - start;
  };
  for (let pair = 0; pair < pairs; pair++) {
    for (let i = 1; i < contenders.length; i++) {
      const [, run] = contenders[i] as (typeof contenders)[number];
      const [, raw] = contenders[0] as (typeof contenders)[number];
      let rawMs: number;
      let ms: number;
      if (pair % 2 === 0) {
        rawMs = await time(raw);
        ms = await time(run);
      } else {
        ms = await time(run);
        rawMs = await time(raw);
      }
      times[0]?.push(rawMs);
      times[i]?.push(ms);
      ratios[i]?.push(rawMs / ms);
    }
  }
  if (sink === undefined) throw new Error("unreachable");
  return contenders.map(([name], i) => {
    const ms = middle(times[i] as number[]);
    return {
      name,
      ms,
      mibPerSec: SIZE / 1024 / 1024 / (ms / 1000),
      ratio: i === 0 ? 1 : middle(ratios[i] as number[]),
    };
  });
}
