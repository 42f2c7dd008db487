/**
 * BENCH ONLY — the state cache as it was at 3d566bd (prefix-only restore, save at the prompt
 * boundary), used by bench/legacy/engine.ts. Verbatim but for its imports.
 *
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
 * (`/dev/shm/…`) for a RAM tier, and `disk.directory` at a disk folder for a second tier that
 * evictions spill to. Each state is committed by a small `.tokens` marker written last (model
 * fingerprint + token ids); on start each tier's index is rebuilt from the markers without opening
 * the state files, and crash leftovers (temp files, states without a marker) are removed. One
 * process owns a folder at a time. The index is a
 * PrefixCache: longest-prefix lookup in O(prompt length), exact bytes (file sizes), leaf-first LRU,
 * pinned while loading, refused when larger than the capacity. Entries are namespaced by a model
 * fingerprint, so a state made by another model (which could crash the process) is never loaded.
 */

import { createHash, randomUUID } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { copyFile, open, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import type { LlamaContextSequence, Token } from "node-llama-cpp";
import type { Size } from "../../src/base/size.js";
import { PrefixCache } from "../../src/prefix/prefix-cache.js";

export interface LlamaStateCacheOptions {
  /** Folder for state files (tmpfs for a RAM tier). Created if missing. */
  directory: string;
  /** Bytes of state files kept: `"2gb"`. */
  capacityBytes: Size;
  /** The model's fingerprint (`modelFingerprint(path)`): states never cross models. */
  fingerprint: string;
  /** Prompts shorter than this are not saved (not worth a file). @default 16 */
  minTokens?: number;
  /**
   * A second, larger tier (a disk folder): states evicted from `directory` spill here instead of
   * being deleted, within their own byte limit.
   */
  disk?: { directory: string; capacityBytes: Size };
}

export interface RestoreOutcome {
  /** Prompt tokens already in the sequence: only the rest needs evaluating. */
  reused: number;
  source: "live" | "snapshot" | "none";
}

export class LlamaStateCache {
  /** The first tier's index (`directory`). */
  readonly prefixes: PrefixCache<string>;
  /** The disk tier's index, when configured. */
  readonly diskPrefixes: PrefixCache<string> | undefined;
  readonly fingerprint: string;
  readonly directory: string;
  readonly diskDirectory: string | undefined;
  readonly #minTokens: number;
  /** File work under way (spills, deletions); `close()` waits for it. */
  readonly #work = new Set<Promise<unknown>>();
  restored = 0;
  saved = 0;
  spilled = 0;
  /** Entries found in the folders when the cache started (index rebuilt from token files). */
  rebuilt = 0;

  constructor(options: LlamaStateCacheOptions) {
    if (typeof options?.directory !== "string" || typeof options.fingerprint !== "string") {
      throw new TypeError(
        "new LlamaStateCache() needs `directory`, `capacityBytes` and the model's `fingerprint`",
      );
    }
    this.directory = options.directory;
    this.diskDirectory = options.disk?.directory;
    this.fingerprint = options.fingerprint;
    this.#minTokens = options.minTokens ?? 16;
    this.prefixes = this.#tier(this.directory, options.capacityBytes);
    this.diskPrefixes =
      options.disk === undefined
        ? undefined
        : this.#tier(options.disk.directory, options.disk.capacityBytes);
    this.prefixes.on("evict", ({ key, value, reason }) => {
      const spill = this.diskPrefixes !== undefined && reason === "capacity";
      this.#track(spill ? this.#spill(key as Uint32Array, value) : removeState(value));
    });
    this.diskPrefixes?.on("evict", ({ value }) => this.#track(removeState(value)));
  }

  /** Makes `sequence` hold the longest usable prefix of `tokens`; see the module comment. */
  async restore(sequence: LlamaContextSequence, tokens: Token[]): Promise<RestoreOutcome> {
    const live = sequence.compareContextTokens(tokens).firstDifferentIndex;
    // At least one prompt token is always evaluated, for the logits of the next one.
    const lookup = { namespace: this.fingerprint, maxLength: tokens.length - 1 };
    const near = this.prefixes.longestPrefix(tokens, lookup);
    const far = this.diskPrefixes?.longestPrefix(tokens, lookup);
    const fromDisk = far !== undefined && (near === undefined || far.length > near.length);
    const tier = fromDisk ? (this.diskPrefixes as PrefixCache<string>) : this.prefixes;
    const hit = fromDisk ? far : near;
    if (hit !== undefined && hit.length > live) {
      const release = tier.acquire(hit.key, { namespace: this.fingerprint });
      try {
        await sequence.loadStateFromFile(hit.value, { acceptRisk: true });
        const loaded = sequence.contextTokens;
        if (loaded.length === hit.length && loaded.every((token, i) => token === tokens[i])) {
          this.restored++;
          return { reused: hit.length, source: "snapshot" };
        }
        // Not what the index promised: never trust it again, start clean.
        tier.delete(hit.key, { namespace: this.fingerprint });
        await sequence.clearHistory();
        return { reused: 0, source: "none" };
      } catch {
        tier.delete(hit.key, { namespace: this.fingerprint });
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
    const file = join(this.directory, `${randomUUID()}.state`);
    const key = Uint32Array.from(tokens);
    try {
      await sequence.saveStateToFile(`${file}.tmp`);
      await commitFile(`${file}.tmp`, file);
      await writeMarker(file, this.fingerprint, key);
    } catch {
      await removeState(file);
      return false;
    }
    const { size } = await stat(file);
    const stored = this.prefixes.set(key, file, { bytes: size, namespace: this.fingerprint });
    if (stored) this.saved++;
    return stored;
  }

  /** Deletes every state file of both tiers. */
  async clear(): Promise<void> {
    this.prefixes.clear();
    this.diskPrefixes?.clear();
    await this.#settle();
  }

  /** Waits for file work under way. State files stay: the next cache on these folders finds them. */
  async close(): Promise<void> {
    await this.#settle();
  }

  /** An index over one folder, rebuilt from the token files already there. */
  #tier(directory: string, capacityBytes: Size): PrefixCache<string> {
    mkdirSync(directory, { recursive: true });
    const index = new PrefixCache<string>({ capacityBytes });
    const names = new Set(readdirSync(directory));
    for (const name of names) {
      // Half-written files from a crash, and states whose commit marker never landed.
      if (name.endsWith(".tmp") || (name.endsWith(".state") && !names.has(`${name}.tokens`))) {
        rmSync(join(directory, name), { force: true });
        continue;
      }
      if (!name.endsWith(".state.tokens")) continue;
      const state = join(directory, name.slice(0, -".tokens".length));
      const marker = readMarker(join(directory, name));
      if (marker === undefined || !names.has(basename(state))) {
        rmSync(join(directory, name), { force: true });
        continue;
      }
      // Other models' states are left alone (and never loaded).
      if (marker.fingerprint !== this.fingerprint) continue;
      if (
        index.set(marker.tokens, state, {
          bytes: statSync(state).size,
          namespace: this.fingerprint,
        })
      )
        this.rebuilt++;
    }
    return index;
  }

  /** Moves a state evicted from the first tier to the disk tier. */
  async #spill(key: Uint32Array, file: string): Promise<void> {
    const disk = this.diskPrefixes as PrefixCache<string>;
    const target = join(this.diskDirectory as string, basename(file));
    try {
      await copyFile(file, `${target}.tmp`);
      await commitFile(`${target}.tmp`, target);
      await writeMarker(target, this.fingerprint, key);
      const { size } = await stat(target);
      if (disk.set(key, target, { bytes: size, namespace: this.fingerprint })) this.spilled++;
    } catch {
      await removeState(target);
    } finally {
      await removeState(file);
    }
  }

  #track(work: Promise<unknown>): void {
    const tracked: Promise<unknown> = work
      .catch(() => {})
      .finally(() => this.#work.delete(tracked));
    this.#work.add(tracked);
  }

  async #settle(): Promise<void> {
    while (this.#work.size > 0) await Promise.all([...this.#work]);
  }
}

/** fsyncs `temp` and renames it to `file`: a crash leaves either nothing or the whole file. */
async function commitFile(temp: string, file: string): Promise<void> {
  const handle = await open(temp, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, file);
}

/**
 * The commit marker beside a state file: the model fingerprint (64 hex characters) and the token
 * ids (u32 little-endian). Written last, so a state without a marker is an unfinished one; read at
 * start, so the index is rebuilt without opening the (large) state files.
 */
async function writeMarker(
  stateFile: string,
  fingerprint: string,
  tokens: Uint32Array,
): Promise<void> {
  const head = Buffer.from(fingerprint.padEnd(64, " ").slice(0, 64), "latin1");
  const body = Buffer.alloc(tokens.length * 4);
  for (let i = 0; i < tokens.length; i++) body.writeUInt32LE(tokens[i] as number, 4 * i);
  await writeFile(`${stateFile}.tokens.tmp`, Buffer.concat([head, body]));
  await commitFile(`${stateFile}.tokens.tmp`, `${stateFile}.tokens`);
}

function readMarker(path: string): { fingerprint: string; tokens: Uint32Array } | undefined {
  const bytes = readFileSync(path);
  if (bytes.length < 64 || (bytes.length - 64) % 4 !== 0) return undefined;
  const tokens = new Uint32Array((bytes.length - 64) / 4);
  for (let i = 0; i < tokens.length; i++) tokens[i] = bytes.readUInt32LE(64 + 4 * i);
  return { fingerprint: bytes.subarray(0, 64).toString("latin1").trim(), tokens };
}

async function removeState(file: string): Promise<void> {
  await Promise.all([
    rm(`${file}.tokens`, { force: true }),
    rm(file, { force: true }),
    rm(`${file}.tmp`, { force: true }),
  ]);
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
