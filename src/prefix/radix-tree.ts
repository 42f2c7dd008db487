/**
 * A radix (compressed prefix) tree over sequences: strings (by UTF-16 code unit) or token ids
 * (number arrays and typed arrays). Finds the longest stored prefix of a sequence, or the stored
 * sequence sharing the most elements with it, in time proportional to the sequence's length,
 * whatever the number of entries — Gradio's KV demo and llama-cpp-python scan every key instead.
 *
 * Each node knows the shortest stored sequence below it (`shortest`), kept up to date on `set`
 * and `delete` along the path, so the longest-common-prefix lookup answers from the node where
 * the query leaves the tree without visiting its subtree.
 *
 * Edges point into the sequences that created them, so strings are not copied; number arrays
 * are copied once on insert (into a Uint32Array when they are token ids: 4 bytes a token instead
 * of 8) so a caller reusing its array cannot corrupt the tree.
 */

export type Sequence = string | ArrayLike<number>;

class RadixNode<V> {
  children: Map<number, RadixNode<V>> | undefined = undefined;
  value: V | undefined = undefined;
  hasValue = false;
  /** The node holding the shortest stored sequence in this subtree (itself included). */
  shortest: RadixNode<V> | undefined = undefined;
  constructor(
    public parent: RadixNode<V> | undefined,
    public label: Sequence,
    public start: number,
    /** Also the node's depth: the length of the sequence it stands for. */
    public end: number,
  ) {}
}

export interface PrefixMatch<V> {
  /** How many elements of the query the match covers. */
  length: number;
  value: V;
}

export class RadixTree<V> {
  #root = new RadixNode<V>(undefined, "", 0, 0);
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /**
   * Stores `value` at `sequence`. With `owned`, the tree keeps `sequence` itself instead of a copy
   * (the caller promises not to change it).
   */
  set(sequence: Sequence, value: V, owned = false): void {
    const seq = typeof sequence === "string" || owned ? sequence : compact(sequence);
    const length = seq.length;
    let node = this.#root;
    let i = 0;
    while (i < length) {
      const first = at(seq, i);
      const child = node.children?.get(first);
      if (child === undefined) {
        const leaf = new RadixNode<V>(node, seq, i, length);
        if (node.children === undefined) node.children = new Map();
        node.children.set(first, leaf);
        node = leaf;
        i = length;
        break;
      }
      const labelLength = child.end - child.start;
      let j = 1;
      while (
        j < labelLength &&
        i + j < length &&
        at(child.label, child.start + j) === at(seq, i + j)
      ) {
        j++;
      }
      if (j < labelLength) {
        // Split the edge: a middle node takes the shared part.
        const middle = new RadixNode<V>(node, child.label, child.start, child.start + j);
        middle.shortest = child.shortest;
        child.start += j;
        child.parent = middle;
        middle.children = new Map([[at(child.label, child.start), child]]);
        (node.children as Map<number, RadixNode<V>>).set(first, middle);
        node = middle;
      } else {
        node = child;
      }
      i += j;
    }
    node.value = value;
    if (node.hasValue) return;
    node.hasValue = true;
    this.#size++;
    // Ancestors whose shortest entry is longer than this one now point here.
    for (let up: RadixNode<V> | undefined = node; up !== undefined; up = up.parent) {
      if (up.shortest !== undefined && up.shortest.end <= node.end) break;
      up.shortest = node;
    }
  }

  /** Whether `sequence` is stored and no longer stored sequence starts with it. */
  isLeaf(sequence: Sequence): boolean {
    const node = this.#find(sequence);
    return node?.hasValue === true && (node.children === undefined || node.children.size === 0);
  }

  get(sequence: Sequence): V | undefined {
    const node = this.#find(sequence);
    return node?.hasValue ? node.value : undefined;
  }

  delete(sequence: Sequence): boolean {
    const node = this.#find(sequence);
    if (node === undefined || !node.hasValue) return false;
    node.hasValue = false;
    node.value = undefined;
    this.#size--;
    this.#prune(node);
    // Children are fixed before their parents: walk up, recomputing where this node was the answer.
    for (let up: RadixNode<V> | undefined = node; up !== undefined; up = up.parent) {
      if (up.shortest !== node) continue;
      let shortest: RadixNode<V> | undefined = up.hasValue ? up : undefined;
      if (shortest === undefined && up.children !== undefined) {
        for (const child of up.children.values()) {
          const candidate = child.shortest;
          if (candidate !== undefined && (shortest === undefined || candidate.end < shortest.end))
            shortest = candidate;
        }
      }
      up.shortest = shortest;
    }
    return true;
  }

  clear(): void {
    this.#root = new RadixNode<V>(undefined, "", 0, 0);
    this.#size = 0;
  }

  /** The longest stored sequence that is a prefix of `sequence` (or equal to it). */
  longestPrefix(sequence: Sequence): PrefixMatch<V> | undefined {
    let best: PrefixMatch<V> | undefined;
    for (const match of this.#walk(sequence)) best = match;
    return best;
  }

  /**
   * The stored sequence sharing the most leading elements with `sequence` — a prefix of it, the
   * sequence itself, a longer one, or one that diverges from it — with `length` the elements
   * shared; among several sharing as many, the shortest. Undefined when none shares any.
   * O(length of `sequence`): the walk stops where the query leaves the tree, and that node knows
   * the shortest entry below it.
   */
  longestCommonPrefix(sequence: Sequence): PrefixMatch<V> | undefined {
    let node = this.#root;
    const length = sequence.length;
    let i = 0;
    while (i < length) {
      const child = node.children?.get(at(sequence, i));
      if (child === undefined) break;
      const labelLength = child.end - child.start;
      let j = 1;
      while (
        j < labelLength &&
        i + j < length &&
        at(child.label, child.start + j) === at(sequence, i + j)
      ) {
        j++;
      }
      i += j;
      node = child; // every entry below `child` shares these i elements, and no more
      if (j < labelLength) break;
    }
    const shortest = node.shortest;
    if (i === 0 || shortest === undefined) return undefined;
    return { length: i, value: shortest.value as V };
  }

  /** Every stored prefix of `sequence`, longest first. */
  prefixes(sequence: Sequence): PrefixMatch<V>[] {
    return [...this.#walk(sequence)].reverse();
  }

  *#walk(sequence: Sequence): Generator<PrefixMatch<V>> {
    let node = this.#root;
    if (node.hasValue) yield { length: 0, value: node.value as V };
    const length = sequence.length;
    let i = 0;
    while (i < length) {
      const child = node.children?.get(at(sequence, i));
      if (child === undefined) return;
      const labelLength = child.end - child.start;
      if (i + labelLength > length) return;
      for (let j = 1; j < labelLength; j++) {
        if (at(child.label, child.start + j) !== at(sequence, i + j)) return;
      }
      i += labelLength;
      node = child;
      if (node.hasValue) yield { length: i, value: node.value as V };
    }
  }

  #find(sequence: Sequence): RadixNode<V> | undefined {
    let node = this.#root;
    const length = sequence.length;
    let i = 0;
    while (i < length) {
      const child = node.children?.get(at(sequence, i));
      if (child === undefined) return undefined;
      const labelLength = child.end - child.start;
      if (i + labelLength > length) return undefined;
      for (let j = 1; j < labelLength; j++) {
        if (at(child.label, child.start + j) !== at(sequence, i + j)) return undefined;
      }
      i += labelLength;
      node = child;
    }
    return node;
  }

  /** Removes nodes that hold nothing and lead nowhere, up from `node`. */
  #prune(node: RadixNode<V>): void {
    let current: RadixNode<V> | undefined = node;
    while (
      current?.parent !== undefined &&
      !current.hasValue &&
      (current.children === undefined || current.children.size === 0)
    ) {
      const parent: RadixNode<V> = current.parent;
      parent.children?.delete(at(current.label, current.start));
      current = parent;
    }
  }
}

function compact(sequence: ArrayLike<number>): ArrayLike<number> {
  if (sequence instanceof Uint32Array) return sequence.slice();
  for (let i = 0; i < sequence.length; i++) {
    const token = sequence[i] as number;
    if (!(token >= 0 && token <= 0xffffffff && Number.isInteger(token)))
      return Array.from(sequence);
  }
  return Uint32Array.from(sequence);
}

function at(sequence: Sequence, index: number): number {
  return typeof sequence === "string" ? sequence.charCodeAt(index) : (sequence[index] as number);
}
