/**
 * `PrefixCache`: values (model state, typically a KV cache) stored at token-sequence boundaries,
 * found by the longest stored prefix of a prompt — so a prompt that extends an earlier one only
 * evaluates its new tokens — or, where a state can be trimmed after loading (a KV cache can), by
 * the longest common prefix: the entry sharing the most tokens with the prompt, also when it is
 * longer than the prompt or diverges from it.
 *
 * - Lookup walks a radix tree: O(prompt length) whatever the number of entries (llama-cpp-python
 *   and Gradio's KV demo scan every key: O(entries x length)).
 * - Capacity is in bytes and exact: each entry counts the bytes its value holds (given, or
 *   estimated) plus its token array. Eviction is LRU among leaves first — an entry that is a
 *   prefix of another is kept while a longer one can go, since the longer one is worth less to
 *   other prompts — and never touches a pinned entry (`acquire`).
 * - Admission control: an entry larger than the capacity, or one that cannot be made room for
 *   because everything else is pinned, is refused; the cache is never flushed for it
 *   (llama-cpp-python empties the cache for one oversized state).
 * - Namespaces (a model fingerprint) are separate trees: a state from another model is never found.
 */

import { Emitter, type Listener } from "../base/emitter.js";
import { estimateBytes } from "../base/estimate-bytes.js";
import { parseSize, type Size } from "../base/size.js";
import { RadixTree, type Sequence } from "./radix-tree.js";

export interface PrefixCacheOptions {
  /** Bytes all entries may hold together: a number or `"2gb"`. */
  capacityBytes: Size;
}

export interface PrefixSetOptions {
  /** Bytes the value holds (a state file's size, a buffer's length). @default estimated */
  bytes?: number;
  /** @default "default" */
  namespace?: string;
}

export interface PrefixLookupOptions {
  /** @default "default" */
  namespace?: string;
  /** Only prefixes up to this many tokens (e.g. prompt length - 1, to leave one to evaluate). */
  maxLength?: number;
}

export interface PrefixCacheHit<V> {
  /** How many tokens of the query the entry covers. */
  length: number;
  /** The stored sequence. */
  key: Sequence;
  value: V;
}

export interface PrefixCacheEvents<V> {
  /** An entry left the cache: evicted for room, deleted, cleared, or refused on the way in. */
  evict: {
    namespace: string;
    key: Sequence;
    value: V;
    bytes: number;
    reason: "capacity" | "deleted" | "cleared" | "refused";
  };
}

class Node<V> {
  prev: Node<V> | undefined = undefined;
  next: Node<V> | undefined = undefined;
  pins = 0;
  constructor(
    readonly namespace: string,
    readonly key: Sequence,
    public value: V,
    public bytes: number,
  ) {}
}

const DEFAULT_NAMESPACE = "default";

export class PrefixCache<V> {
  readonly capacityBytes: number;
  readonly #trees = new Map<string, RadixTree<Node<V>>>();
  readonly #events = new Emitter<PrefixCacheEvents<V>>();
  #head: Node<V> | undefined = undefined; // least recently used
  #tail: Node<V> | undefined = undefined;
  #size = 0;
  #bytes = 0;

  constructor(options: PrefixCacheOptions) {
    if (options?.capacityBytes === undefined) {
      throw new TypeError('new PrefixCache() needs `capacityBytes`, e.g. { capacityBytes: "2gb" }');
    }
    this.capacityBytes = parseSize(options.capacityBytes, "capacityBytes");
  }

  /** Entries held. */
  get size(): number {
    return this.#size;
  }

  /** Bytes held (values plus token arrays). */
  get bytes(): number {
    return this.#bytes;
  }

  on<K extends keyof PrefixCacheEvents<V>>(
    type: K,
    listener: Listener<PrefixCacheEvents<V>[K]>,
  ): () => void {
    return this.#events.on(type, listener);
  }

  /**
   * Stores `value` at `tokens`, replacing what was there. Returns false when it was refused: larger
   * than the capacity, or no room could be made because the rest is pinned.
   */
  set(tokens: Sequence, value: V, options: PrefixSetOptions = {}): boolean {
    const namespace = options.namespace ?? DEFAULT_NAMESPACE;
    const bytes = entryBytes(tokens, value, options.bytes);
    if (bytes > this.capacityBytes) {
      this.#events.emit("evict", { namespace, key: tokens, value, bytes, reason: "refused" });
      return false;
    }
    const tree = this.#tree(namespace, true) as RadixTree<Node<V>>;
    const existing = tree.get(tokens);
    let node: Node<V>;
    if (existing !== undefined) {
      this.#bytes += bytes - existing.bytes;
      existing.bytes = bytes;
      const old = existing.value;
      existing.value = value;
      this.#touch(existing);
      node = existing;
      if (old !== value)
        this.#events.emit("evict", {
          namespace,
          key: existing.key,
          value: old,
          bytes,
          reason: "deleted",
        });
    } else {
      // One copy of the tokens, shared by the tree's edges and the entry.
      const key = typeof tokens === "string" ? tokens : Uint32Array.from(tokens);
      node = new Node(namespace, key, value, bytes);
      tree.set(key, node, true);
      this.#append(node);
      this.#size++;
      this.#bytes += bytes;
    }
    node.pins++; // the new entry must not be the one evicted to make room for itself
    const fits = this.#makeRoom();
    node.pins--;
    if (!fits) {
      this.#drop(node, "refused");
      return false;
    }
    return true;
  }

  /** Whether an entry of `bytes` at `tokens` would be stored without evicting anything. */
  fits(tokens: Sequence, bytes: number): boolean {
    return this.#bytes + entryBytes(tokens, undefined, bytes) <= this.capacityBytes;
  }

  /** The value stored at exactly `tokens`. */
  get(tokens: Sequence, options: PrefixLookupOptions = {}): V | undefined {
    const node = this.#tree(options.namespace ?? DEFAULT_NAMESPACE, false)?.get(tokens);
    if (node === undefined) return undefined;
    this.#touch(node);
    return node.value;
  }

  /** The longest stored prefix of `tokens` (or `tokens` itself), in O(length of `tokens`). */
  longestPrefix(
    tokens: Sequence,
    options: PrefixLookupOptions = {},
  ): PrefixCacheHit<V> | undefined {
    const tree = this.#tree(options.namespace ?? DEFAULT_NAMESPACE, false);
    if (tree === undefined) return undefined;
    const max = options.maxLength ?? tokens.length;
    const query = max < tokens.length ? sliceOf(tokens, max) : tokens;
    const match = tree.longestPrefix(query);
    if (match === undefined) return undefined;
    this.#touch(match.value);
    return { length: match.length, key: match.value.key, value: match.value.value };
  }

  /**
   * The entry sharing the most leading tokens with `tokens` — a prefix of it, `tokens` itself, a
   * longer sequence or one that diverges — with `length` the tokens shared (at most `maxLength`);
   * among entries sharing as many, the one with the fewest tokens (the cheapest state to load).
   * O(length of `tokens`). For states that can be trimmed to `length` after loading.
   */
  longestCommonPrefix(
    tokens: Sequence,
    options: PrefixLookupOptions = {},
  ): PrefixCacheHit<V> | undefined {
    const tree = this.#tree(options.namespace ?? DEFAULT_NAMESPACE, false);
    if (tree === undefined) return undefined;
    const max = options.maxLength ?? tokens.length;
    const match = tree.longestCommonPrefix(max < tokens.length ? sliceOf(tokens, max) : tokens);
    if (match === undefined) return undefined;
    this.#touch(match.value);
    return { length: match.length, key: match.value.key, value: match.value.value };
  }

  /**
   * Deletes the entries that are strict prefixes of `tokens`, except pinned ones; returns how
   * many went. Once `tokens` is stored, they are worth nothing to a longest-common-prefix lookup:
   * any prompt shares at least as many tokens with `tokens` as with them.
   */
  deletePrefixes(tokens: Sequence, options: PrefixLookupOptions = {}): number {
    const tree = this.#tree(options.namespace ?? DEFAULT_NAMESPACE, false);
    if (tree === undefined) return 0;
    let deleted = 0;
    for (const { length, value: node } of tree.prefixes(tokens)) {
      if (length === tokens.length || node.pins > 0) continue;
      this.#drop(node, "deleted");
      deleted++;
    }
    return deleted;
  }

  /**
   * Pins the entry at `tokens` so eviction leaves it alone while it is used (restoring a state
   * from it); returns the release function, or undefined when there is no such entry.
   */
  acquire(tokens: Sequence, options: PrefixLookupOptions = {}): (() => void) | undefined {
    const node = this.#tree(options.namespace ?? DEFAULT_NAMESPACE, false)?.get(tokens);
    if (node === undefined) return undefined;
    node.pins++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      node.pins--;
      this.#makeRoom();
    };
  }

  delete(tokens: Sequence, options: PrefixLookupOptions = {}): boolean {
    const namespace = options.namespace ?? DEFAULT_NAMESPACE;
    const node = this.#tree(namespace, false)?.get(tokens);
    if (node === undefined) return false;
    this.#drop(node, "deleted");
    return true;
  }

  /** Drops every entry (of one namespace, when given). */
  clear(namespace?: string): void {
    for (let node = this.#head; node !== undefined; ) {
      const next = node.next;
      if (namespace === undefined || node.namespace === namespace) this.#drop(node, "cleared");
      node = next;
    }
  }

  /** Entries from least to most recently used. */
  *entries(): IterableIterator<{ namespace: string; key: Sequence; value: V; bytes: number }> {
    for (let node = this.#head; node !== undefined; node = node.next) {
      yield { namespace: node.namespace, key: node.key, value: node.value, bytes: node.bytes };
    }
  }

  /** Evicts until the capacity holds: leaves first, least recently used first, never pinned. */
  #makeRoom(): boolean {
    while (this.#bytes > this.capacityBytes) {
      const victim = this.#victim();
      if (victim === undefined) return false;
      this.#drop(victim, "capacity");
    }
    return true;
  }

  /** Removes an entry and tells listeners why. */
  #drop(node: Node<V>, reason: PrefixCacheEvents<V>["evict"]["reason"]): void {
    this.#remove(node);
    this.#events.emit("evict", {
      namespace: node.namespace,
      key: node.key,
      value: node.value,
      bytes: node.bytes,
      reason,
    });
  }

  #victim(): Node<V> | undefined {
    let fallback: Node<V> | undefined;
    for (let node = this.#head; node !== undefined; node = node.next) {
      if (node.pins > 0) continue;
      if ((this.#tree(node.namespace, false) as RadixTree<Node<V>>).isLeaf(node.key)) return node;
      fallback ??= node;
    }
    return fallback;
  }

  #tree(namespace: string, create: boolean): RadixTree<Node<V>> | undefined {
    let tree = this.#trees.get(namespace);
    if (tree === undefined && create) {
      tree = new RadixTree();
      this.#trees.set(namespace, tree);
    }
    return tree;
  }

  #remove(node: Node<V>): void {
    const tree = this.#tree(node.namespace, false);
    tree?.delete(node.key);
    if (tree !== undefined && tree.size === 0) this.#trees.delete(node.namespace);
    if (node.prev === undefined) this.#head = node.next;
    else node.prev.next = node.next;
    if (node.next === undefined) this.#tail = node.prev;
    else node.next.prev = node.prev;
    node.prev = undefined;
    node.next = undefined;
    this.#size--;
    this.#bytes -= node.bytes;
  }

  #append(node: Node<V>): void {
    node.prev = this.#tail;
    if (this.#tail === undefined) this.#head = node;
    else this.#tail.next = node;
    this.#tail = node;
  }

  #touch(node: Node<V>): void {
    if (this.#tail === node) return;
    if (node.prev === undefined) this.#head = node.next;
    else node.prev.next = node.next;
    if (node.next !== undefined) node.next.prev = node.prev;
    node.prev = this.#tail;
    node.next = undefined;
    (this.#tail as Node<V>).next = node;
    this.#tail = node;
  }
}

/** Bookkeeping per entry: its list node, tree node and child map slot. */
const ENTRY_OVERHEAD = 256;

/**
 * Bytes of an entry: its value (given, or estimated), its tokens (4 bytes each; 2 a character for
 * text) and its bookkeeping.
 */
function entryBytes(tokens: Sequence, value: unknown, bytes: number | undefined): number {
  if (bytes !== undefined && !(Number.isFinite(bytes) && bytes >= 0)) {
    throw new TypeError(`Expected \`bytes\` to be a non-negative number, got \`${String(bytes)}\``);
  }
  const keyBytes = typeof tokens === "string" ? 2 * tokens.length : 4 * tokens.length;
  return ENTRY_OVERHEAD + keyBytes + (bytes ?? estimateBytes(value));
}

function sliceOf(tokens: Sequence, length: number): Sequence {
  if (typeof tokens === "string") return tokens.slice(0, length);
  return tokens instanceof Uint32Array
    ? tokens.subarray(0, length)
    : Array.prototype.slice.call(tokens, 0, length);
}
