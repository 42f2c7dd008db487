/**
 * `LlamaStateCache`: prefix reuse of KV state for node-llama-cpp, like llama.cpp's RAM/disk caches
 * (`LlamaRAMCache`, `LlamaDiskCache`) but with a radix index and byte bounds that hold.
 *
 * Before a generation, `restore(sequence, tokens)` makes the sequence hold the longest usable
 * prefix of the prompt, choosing the cheaper of two sources:
 * - live: the tokens the sequence already holds that match the prompt (trimmed to the match);
 * - snapshot: the longest stored prompt state that is a prefix of this prompt (loaded from its
 *   file), when it covers more than the live match.
 * The generation then evaluates only the remaining tokens. After the answer is out,
 * `save(sequence, tokens)` trims the sequence back to the prompt boundary and writes its state
 * (temp file, then rename, so a crash never leaves a half file under a real name).
 *
 * States live as files (node-llama-cpp has no in-memory state API): point `directory` at tmpfs
 * (`/dev/shm/…`) for a RAM tier or at a disk folder for a persistent one. The index is a
 * PrefixCache: longest-prefix lookup in O(prompt length), exact bytes (file sizes), leaf-first LRU,
 * pinned while loading, refused when larger than the capacity. Entries are namespaced by a model
 * fingerprint, so a state made by another model (which could crash the process) is never loaded.
 */

import { createHash, randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import { open, rename, rm, stat } from "node:fs/promises";
import type { LlamaContextSequence, Token } from "node-llama-cpp";
import { PrefixCache } from "../prefix/prefix-cache.js";
import type { Size } from "../store/parse-size.js";

export interface LlamaStateCacheOptions {
  /** Folder for state files (tmpfs for a RAM tier). Created if missing. */
  directory: string;
  /** Bytes of state files kept: `"2gb"`. */
  capacityBytes: Size;
  /** The model's fingerprint (`modelFingerprint(path)`): states never cross models. */
  fingerprint: string;
  /** Prompts shorter than this are not saved (not worth a file). @default 16 */
  minTokens?: number;
}

export interface RestoreOutcome {
  /** Prompt tokens already in the sequence: only the rest needs evaluating. */
  reused: number;
  source: "live" | "snapshot" | "none";
}

export class LlamaStateCache {
  readonly prefixes: PrefixCache<string>;
  readonly fingerprint: string;
  readonly directory: string;
  readonly #minTokens: number;
  /** Files written but not yet removed; evictions delete their files. */
  readonly #deleting = new Set<Promise<void>>();
  restored = 0;
  saved = 0;

  constructor(options: LlamaStateCacheOptions) {
    if (typeof options?.directory !== "string" || typeof options.fingerprint !== "string") {
      throw new TypeError(
        "new LlamaStateCache() needs `directory`, `capacityBytes` and the model's `fingerprint`",
      );
    }
    this.directory = options.directory;
    this.fingerprint = options.fingerprint;
    this.#minTokens = options.minTokens ?? 16;
    mkdirSync(this.directory, { recursive: true });
    this.prefixes = new PrefixCache<string>({ capacityBytes: options.capacityBytes });
    this.prefixes.on("evict", ({ value }) => {
      const removal = rm(value, { force: true }).finally(() => this.#deleting.delete(removal));
      this.#deleting.add(removal);
    });
  }

  /** Makes `sequence` hold the longest usable prefix of `tokens`; see the module comment. */
  async restore(sequence: LlamaContextSequence, tokens: Token[]): Promise<RestoreOutcome> {
    const live = sequence.compareContextTokens(tokens).firstDifferentIndex;
    // At least one prompt token is always evaluated, for the logits of the next one.
    const hit = this.prefixes.longestPrefix(tokens, {
      namespace: this.fingerprint,
      maxLength: tokens.length - 1,
    });
    if (hit !== undefined && hit.length > live) {
      const release = this.prefixes.acquire(hit.key, { namespace: this.fingerprint });
      try {
        await sequence.loadStateFromFile(hit.value, { acceptRisk: true });
        const loaded = sequence.contextTokens;
        if (loaded.length === hit.length && loaded.every((token, i) => token === tokens[i])) {
          this.restored++;
          return { reused: hit.length, source: "snapshot" };
        }
        // Not what the index promised: never trust it again, start clean.
        this.prefixes.delete(hit.key, { namespace: this.fingerprint });
        await sequence.clearHistory();
        return { reused: 0, source: "none" };
      } catch {
        this.prefixes.delete(hit.key, { namespace: this.fingerprint });
        await sequence.clearHistory();
        return { reused: 0, source: "none" };
      } finally {
        release?.();
      }
    }
    const usable = Math.min(live, tokens.length - 1);
    if (usable > 0) {
      if (sequence.nextTokenIndex > usable) {
        await sequence.eraseContextTokenRanges([{ start: usable, end: sequence.nextTokenIndex }]);
      }
      return { reused: usable, source: "live" };
    }
    await sequence.clearHistory();
    return { reused: 0, source: "none" };
  }

  /**
   * Saves the state of `sequence` at the boundary of `tokens` (the prompt), trimming what was
   * generated after it. Returns false when not saved (too short, already stored, or refused).
   */
  async save(sequence: LlamaContextSequence, tokens: Token[]): Promise<boolean> {
    if (tokens.length < this.#minTokens) return false;
    if (this.prefixes.get(tokens, { namespace: this.fingerprint }) !== undefined) return false;
    if (sequence.compareContextTokens(tokens).firstDifferentIndex < tokens.length) return false;
    if (sequence.nextTokenIndex > tokens.length) {
      await sequence.eraseContextTokenRanges([
        { start: tokens.length, end: sequence.nextTokenIndex },
      ]);
    }
    const file = `${this.directory}/${randomUUID()}.state`;
    const temp = `${file}.tmp`;
    try {
      await sequence.saveStateToFile(temp);
      const handle = await open(temp, "r");
      await handle.sync();
      await handle.close();
      await rename(temp, file);
    } catch {
      await rm(temp, { force: true });
      return false;
    }
    const { size } = await stat(file);
    const stored = this.prefixes.set(Uint32Array.from(tokens), file, {
      bytes: size,
      namespace: this.fingerprint,
    });
    if (stored) this.saved++;
    return stored;
  }

  /** Deletes every state file this cache holds. */
  async close(): Promise<void> {
    this.prefixes.clear();
    await Promise.all([...this.#deleting]);
  }
}

/**
 * A fingerprint of a model file: SHA-256 over its size and content (all of it up to 64 MiB; the
 * first and last 16 MiB beyond). Two files with the same fingerprint load the same weights.
 */
export async function modelFingerprint(path: string): Promise<string> {
  const { size } = await stat(path);
  const hash = createHash("sha256").update(`size:${size};`);
  const handle = await open(path, "r");
  try {
    const limit = 64 * 1024 * 1024;
    const window = 16 * 1024 * 1024;
    const ranges =
      size <= limit
        ? [[0, size]]
        : [
            [0, window],
            [size - window, window],
          ];
    for (const [start, length] of ranges as [number, number][]) {
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, start);
      hash.update(buffer);
    }
  } finally {
    await handle.close();
  }
  return hash.digest("hex");
}
