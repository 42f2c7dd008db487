/** hashKey throughput on Float32Array tensors against node:crypto SHA-256 over the same bytes. */
import { createHash } from "node:crypto";
import { hashKey } from "../src/index.js";

export interface HashRow {
  size: string;
  oursMBs: number;
  cryptoMBs: number;
  ratio: number;
}

function throughput(bytes: number, run: () => unknown, minMs: number): number {
  for (let i = 0; i < 3; i++) run();
  let iterations = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    run();
    iterations++;
    elapsed = performance.now() - start;
  } while (elapsed < minMs);
  return (bytes * iterations) / (elapsed / 1000) / (1024 * 1024);
}

export function hashThroughput(): HashRow[] {
  const rows: HashRow[] = [];
  for (const [label, bytes] of [
    ["4 KiB", 4 * 1024],
    ["1 MiB", 1024 * 1024],
    ["64 MiB", 64 * 1024 * 1024],
  ] as const) {
    const tensor = new Float32Array(bytes / 4);
    for (let i = 0; i < tensor.length; i += 97) tensor[i] = i;
    const view = new Uint8Array(tensor.buffer);
    // Interleave the two contenders, best of three rounds each, so drift hits both alike.
    let ours = 0;
    let crypto = 0;
    for (let round = 0; round < 3; round++) {
      ours = Math.max(
        ours,
        throughput(bytes, () => hashKey(tensor), 400),
      );
      crypto = Math.max(
        crypto,
        throughput(bytes, () => createHash("sha256").update(view).digest("hex"), 400),
      );
    }
    rows.push({ size: label, oursMBs: ours, cryptoMBs: crypto, ratio: ours / crypto });
  }
  return rows;
}
