/**
 * `MemoryStore`: entries as live objects in this process, bounded by entry count (`maxSize`) and
 * by bytes (`maxMemory`, a real size estimate), with TTL, namespaces, exact per-session scopes and
 * an optional per-session quota so one session cannot evict everyone else.
 *
 * Every entry is on the store-wide LRU list (what the global limits evict); with a per-session
 * quota, session entries are also on their session's own list (what the quota evicts). The second
 * list is kept only then, because every list an entry is on costs a hit more pointer writes to
 * other entries' memory. Touching an entry is a handful of pointer writes: a hit costs tens of
 * nanoseconds. An entry bigger than the whole budget is refused rather than flushing the cache
 * (Gradio and llama-cpp-python empty the cache for it).
 *
 * `maxMemory` bounds what the entries keep alive, not only what they weigh: a value is stored
 * through `unpin` (base/unpin.ts), once, at set time. Its strings become equal flat copies (a
 * slice of a big string would keep the big string), and a small view of a big buffer is stored
 * as a copy of its window, the plain containers leading to it copied too, so the caller's value
 * is never changed. A hit returns the stored value itself: the result as it was returned, or
 * that copy.
 */

import { type Clock, systemClock } from "../base/clock.js";
import { type Duration, parseDuration } from "../base/duration.js";
import { estimateBytes } from "../base/estimate-bytes.js";
import { parseSize, type Size } from "../base/size.js";
import { flattenInPlace, mayPin, unpin } from "../base/unpin.js";
import { nonNegativeInteger } from "../base/validate.js";
import {
  type ClearScope,
  type Entry,
  type EvictReason,
  type PurgeFilter,
  type Scope,
  type SetOutcome,
  type Store,
  type StoreEvent,
  type SyncStore,
  withDefaultTtl,
} from "./store.js";
import { checkPurgeFilter, matchesPurge } from "./tags.js";

export interface MemoryStoreOptions {
  /** Maximum number of entries across all namespaces and sessions; LRU beyond. 0 = unlimited. @default 128 */
  maxSize?: number;
  /** Maximum bytes (estimated) across all entries: a number or `"512mb"`, `"1.5GiB"`. @default unlimited */
  maxMemory?: Size;
  /** Expiry for entries written without their own `expiresAt`: ms or `"10m"`. @default never */
  ttl?: Duration;
  /** Maximum entries one session may hold; its own oldest go first. @default unlimited */
  maxSizePerSession?: number;
  /** Maximum bytes one session may hold. @default unlimited */
  maxMemoryPerSession?: Size;
  /** Source of time for expiry. @default Date.now */
  clock?: Clock;
}

/**
 * The entry to keep for `entry`: its value and raw key with nothing pinned beyond themselves
 * (base/unpin.ts), in a new entry object only when one of them had to be replaced.
 */
function unpinEntry(entry: Entry): Entry {
  const value = unpin(entry.value);
  const rawKey = entry.rawKey === undefined ? undefined : unpin(entry.rawKey);
  // A string's copy is equal (===) to it: strings that may pin are always replaced.
  const same =
    value === entry.value &&
    rawKey === entry.rawKey &&
    !(typeof value === "string" && mayPin(value)) &&
    !(typeof rawKey === "string" && mayPin(rawKey));
  if (same) return entry;
  const kept: Entry = { ...entry, value };
  if (rawKey !== undefined) kept.rawKey = rawKey;
  return kept;
}

/**
 * Bytes of bookkeeping per entry, measured: list node (88), Map slot at the table's emptiest (56),
 * entry object (64) and its two heap-number times (32).
 */
const ENTRY_OVERHEAD = 240;
/** A key's string header, and the cons string in front of it (the cache layer's keys). */
const KEY_OVERHEAD = 24 + 32;

class Node {
  prev: Node | undefined = undefined;
  next: Node | undefined = undefined;
  partPrev: Node | undefined = undefined;
  partNext: Node | undefined = undefined;
  constructor(
    public key: string,
    public partition: Partition,
    public entry: Entry,
    public bytes: number,
  ) {}
}

class Partition {
  readonly map = new Map<string, Node>();
  /** Own LRU list, kept only where a per-session quota needs this partition's oldest entry. */
  head: Node | undefined = undefined;
  tail: Node | undefined = undefined;
  bytes = 0;
  constructor(
    readonly scope: Scope,
    readonly owner: NamespaceRecord,
    readonly ordered: boolean,
  ) {}
}

class NamespaceRecord {
  global: Partition | undefined = undefined;
  readonly sessions = new Map<string, Partition>();
  entries = 0;
  bytes = 0;
  constructor(readonly name: string) {}
}

export class MemoryStore implements Store, SyncStore {
  readonly kind = "memory";
  readonly sync: SyncStore = this;
  readonly maxSize: number;
  readonly maxMemory: number;
  readonly ttl: number;
  readonly maxSizePerSession: number;
  readonly maxMemoryPerSession: number;

  readonly #clock: Clock;
  readonly #quota: boolean;
  readonly #namespaces = new Map<string, NamespaceRecord>();
  readonly #listeners = new Set<(event: StoreEvent) => void>();
  /** The nodes carrying each tag: a tag purge reads its entries, not the store. */
  readonly #tagged = new Map<string, Set<Node>>();
  #head: Node | undefined = undefined;
  #tail: Node | undefined = undefined;
  /** The last scope object resolved and its partition: callers reuse one scope object per cache. */
  #lastScope: Scope | undefined = undefined;
  #lastPartition: Partition | undefined = undefined;
  #count = 0;
  #bytes = 0;

  constructor(options: MemoryStoreOptions = {}) {
    this.maxSize = nonNegativeInteger(options.maxSize ?? 128, "maxSize");
    this.maxMemory =
      options.maxMemory === undefined ? 0 : parseSize(options.maxMemory, "maxMemory");
    this.ttl = options.ttl === undefined ? 0 : parseDuration(options.ttl, "ttl");
    this.maxSizePerSession = nonNegativeInteger(
      options.maxSizePerSession ?? 0,
      "maxSizePerSession",
    );
    this.maxMemoryPerSession =
      options.maxMemoryPerSession === undefined
        ? 0
        : parseSize(options.maxMemoryPerSession, "maxMemoryPerSession");
    this.#clock = options.clock ?? systemClock;
    this.#quota = this.maxSizePerSession > 0 || this.maxMemoryPerSession > 0;
  }

  /** Live entries in the whole store. */
  get count(): number {
    return this.#count;
  }

  /** Estimated bytes held by the whole store. */
  get bytes(): number {
    return this.#bytes;
  }

  getSync(key: string, scope: Scope): Entry | undefined {
    const partition = this.#partition(scope, false);
    const node = partition?.map.get(key);
    if (node === undefined) return undefined;
    const expiresAt = node.entry.expiresAt;
    if (expiresAt !== undefined && expiresAt <= this.#clock.now()) {
      this.#remove(node);
      this.#emit(node, "expired");
      return undefined;
    }
    this.#touch(node);
    return node.entry;
  }

  /** Like `getSync` without counting as a use: no LRU move. Expired entries read as absent. */
  peekSync(key: string, scope: Scope): Entry | undefined {
    const node = this.#partition(scope, false)?.map.get(key);
    if (node === undefined) return undefined;
    const expiresAt = node.entry.expiresAt;
    return expiresAt !== undefined && expiresAt <= this.#clock.now() ? undefined : node.entry;
  }

  setSync(key: string, scope: Scope, entry: Entry): SetOutcome {
    entry = withDefaultTtl(entry, this.ttl);
    if (mayPin(entry.value) || entry.rawKey !== undefined) entry = unpinEntry(entry);
    const bytes = this.#measure(key, entry);
    const sessionBudget = scope.session === undefined ? 0 : this.maxMemoryPerSession;
    if (
      (this.maxMemory > 0 && bytes > this.maxMemory) ||
      (sessionBudget > 0 && bytes > sessionBudget)
    ) {
      // Refuse it rather than flush everything else; the old value under this key is stale now.
      // (Looked up without creating its scope, so a refusal leaves nothing behind.)
      const stale = this.#partition(scope, false)?.map.get(key);
      if (stale !== undefined) this.#remove(stale);
      return "too-large";
    }
    const partition = this.#partition(scope, true) as Partition;
    const existing = partition.map.get(key);
    if (existing !== undefined) {
      this.#resize(existing, bytes);
      if (existing.entry.tags !== undefined) this.#untag(existing);
      existing.entry = entry;
      if (entry.tags !== undefined) this.#tag(existing);
      this.#touch(existing);
    } else {
      let target = partition;
      let node: Node;
      const victim = this.#head;
      if (this.maxSize > 0 && this.#count >= this.maxSize && victim !== undefined) {
        // Full by count: evict first and reuse the victim's node, sparing an allocation per
        // insert. Its scope may have emptied and been dropped, so find ours again.
        this.#evict(victim, "size");
        target = this.#partition(scope, true) as Partition;
        victim.key = key;
        victim.partition = target;
        victim.entry = entry;
        victim.bytes = bytes;
        node = victim;
      } else {
        node = new Node(key, partition, entry, bytes);
      }
      // The cache layer's keys are concatenations that may hold a sliced argument. Flattened in
      // place, not copied: hits find the entry with this very string, a pointer compare.
      flattenInPlace(key);
      target.map.set(key, node);
      this.#append(node);
      if (entry.tags !== undefined) this.#tag(node);
      this.#resize(node, bytes, true);
      this.#enforce(target);
      return "stored";
    }
    this.#enforce(partition);
    return "stored";
  }

  deleteSync(key: string, scope: Scope): boolean {
    const node = this.#partition(scope, false)?.map.get(key);
    if (node === undefined) return false;
    this.#remove(node);
    return true;
  }

  clearSync(scope?: ClearScope): number {
    let removed = 0;
    for (const partition of this.#partitions(scope)) {
      for (const node of partition.map.values()) {
        this.#unlinkGlobal(node);
        removed++;
      }
      this.#dropPartition(partition);
    }
    return removed;
  }

  sizeSync(scope?: ClearScope): number {
    if (scope?.namespace === undefined && scope?.session === undefined) return this.#count;
    if (scope.session === undefined) {
      return this.#namespaces.get(scope.namespace as string)?.entries ?? 0;
    }
    let total = 0;
    for (const partition of this.#partitions(scope)) total += partition.map.size;
    return total;
  }

  /**
   * Removes the live entries `filter` matches and returns how many (expired ones it meets are
   * dropped too, uncounted, as a read would). By tag: through the tag index, reading only the
   * entries that carry one of the tags. By age alone: a walk of every entry, because the LRU
   * list is in order of use, not of writing (a hit moves an old entry to the young end), so
   * there is no end to stop at; an index by write time would cost every write a sorted insert.
   */
  purgeSync(filter: PurgeFilter): number {
    const checked = checkPurgeFilter(filter);
    const now = this.#clock.now();
    let candidates: Iterable<Node> = [];
    if (checked.allTags !== undefined) {
      // The rarest of the tags every match carries: the others are checked per entry.
      let rarest: Set<Node> | undefined;
      for (const tag of checked.allTags) {
        const nodes = this.#tagged.get(tag);
        if (nodes === undefined) return 0;
        if (rarest === undefined || nodes.size < rarest.size) rarest = nodes;
      }
      candidates = [...(rarest as Set<Node>)];
    } else if (checked.tags !== undefined) {
      const union: Node[] = [];
      candidates = union;
      const seen = new Set<Node>();
      for (const tag of checked.tags) {
        for (const node of this.#tagged.get(tag) ?? []) {
          if (seen.has(node)) continue;
          seen.add(node);
          union.push(node);
        }
      }
    } else {
      const all: Node[] = [];
      candidates = all;
      for (let node = this.#head; node !== undefined; node = node.next) all.push(node);
    }
    let removed = 0;
    for (const node of candidates) {
      const entry = node.entry;
      if (!matchesPurge(entry, node.partition.scope.namespace, checked)) continue;
      this.#remove(node);
      if (entry.expiresAt !== undefined && entry.expiresAt <= now) this.#emit(node, "expired");
      else removed++;
    }
    return removed;
  }

  async purge(filter: PurgeFilter): Promise<number> {
    return this.purgeSync(filter);
  }

  /** Removes every expired entry now (expiry is otherwise checked when an entry is read). */
  purgeExpired(): number {
    const now = this.#clock.now();
    let removed = 0;
    for (let node = this.#head; node !== undefined; ) {
      const next = node.next;
      const expiresAt = node.entry.expiresAt;
      if (expiresAt !== undefined && expiresAt <= now) {
        this.#remove(node);
        this.#emit(node, "expired");
        removed++;
      }
      node = next;
    }
    return removed;
  }

  async get(key: string, scope: Scope): Promise<Entry | undefined> {
    return this.getSync(key, scope);
  }

  async set(key: string, scope: Scope, entry: Entry): Promise<SetOutcome> {
    return this.setSync(key, scope, entry);
  }

  async delete(key: string, scope: Scope): Promise<boolean> {
    return this.deleteSync(key, scope);
  }

  async clear(scope?: ClearScope): Promise<number> {
    return this.clearSync(scope);
  }

  async size(scope?: ClearScope): Promise<number> {
    return this.sizeSync(scope);
  }

  async *entries(scope: Scope): AsyncIterable<[key: string, entry: Entry]> {
    yield* this.entriesSync(scope);
  }

  /** The live entries of one scope, least recently used first. */
  *entriesSync(scope: Scope): Iterable<[key: string, entry: Entry]> {
    const partition = this.#partition(scope, false);
    if (partition === undefined) return;
    const now = this.#clock.now();
    // Snapshot first: the caller may write to the store while iterating.
    const nodes: Node[] = [];
    if (partition.ordered) {
      for (let node = partition.head; node !== undefined; node = node.partNext) nodes.push(node);
    } else {
      for (let node = this.#head; node !== undefined; node = node.next) {
        if (node.partition === partition) nodes.push(node);
      }
    }
    for (const node of nodes) {
      const expiresAt = node.entry.expiresAt;
      if (expiresAt === undefined || expiresAt > now) yield [node.key, node.entry];
    }
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  usage(namespace: string): { entries: number; bytes: number } {
    const record = this.#namespaces.get(namespace);
    return { entries: record?.entries ?? 0, bytes: record?.bytes ?? 0 };
  }

  async close(): Promise<void> {
    this.clearSync();
  }

  #measure(key: string, entry: Entry): number {
    // Keys are short: count them at two bytes a character instead of scanning them.
    let bytes = ENTRY_OVERHEAD + KEY_OVERHEAD + 2 * key.length + estimateBytes(entry.value);
    if (entry.rawKey !== undefined && entry.rawKey !== key) bytes += estimateBytes(entry.rawKey);
    // The tags and their slots in the tag index (a Set entry each, ~40 bytes).
    if (entry.tags !== undefined) bytes += estimateBytes(entry.tags) + 40 * entry.tags.length;
    return bytes;
  }

  #partition(scope: Scope, create: boolean): Partition | undefined {
    if (scope === this.#lastScope) return this.#lastPartition;
    const partition = this.#resolve(scope, create);
    if (partition !== undefined) {
      this.#lastScope = scope;
      this.#lastPartition = partition;
    }
    return partition;
  }

  #resolve(scope: Scope, create: boolean): Partition | undefined {
    let record = this.#namespaces.get(scope.namespace);
    if (record === undefined) {
      if (!create) return undefined;
      record = new NamespaceRecord(scope.namespace);
      this.#namespaces.set(scope.namespace, record);
    }
    const session = scope.session;
    if (session === undefined) {
      if (record.global === undefined && create) {
        record.global = new Partition({ namespace: scope.namespace }, record, false);
      }
      return record.global;
    }
    let partition = record.sessions.get(session);
    if (partition === undefined && create) {
      partition = new Partition({ namespace: scope.namespace, session }, record, this.#quota);
      record.sessions.set(session, partition);
    }
    return partition;
  }

  *#partitions(scope: ClearScope | undefined): Iterable<Partition> {
    const records =
      scope?.namespace === undefined
        ? [...this.#namespaces.values()]
        : [this.#namespaces.get(scope.namespace)].filter((r) => r !== undefined);
    for (const record of records) {
      const session = scope?.session;
      if (session === null) {
        if (record.global !== undefined) yield record.global;
        continue;
      }
      if (session !== undefined) {
        const partition = record.sessions.get(session);
        if (partition !== undefined) yield partition;
        continue;
      }
      if (record.global !== undefined) yield record.global;
      yield* [...record.sessions.values()];
    }
  }

  #enforce(partition: Partition): void {
    if (partition.scope.session !== undefined) {
      while (
        (this.maxSizePerSession > 0 && partition.map.size > this.maxSizePerSession) ||
        (this.maxMemoryPerSession > 0 && partition.bytes > this.maxMemoryPerSession)
      ) {
        this.#evict(partition.head as Node, "quota");
      }
    }
    while (this.maxSize > 0 && this.#count > this.maxSize) this.#evict(this.#head as Node, "size");
    while (this.maxMemory > 0 && this.#bytes > this.maxMemory) {
      this.#evict(this.#head as Node, "memory");
    }
  }

  #evict(node: Node, reason: EvictReason): void {
    this.#remove(node);
    this.#emit(node, reason);
  }

  #emit(node: Node, reason: EvictReason): void {
    if (this.#listeners.size === 0) return;
    const event: StoreEvent = {
      type: "evict",
      reason,
      scope: node.partition.scope,
      key: node.key,
      entry: node.entry,
    };
    for (const listener of this.#listeners) listener(event);
  }

  #resize(node: Node, bytes: number, fresh = false): void {
    const delta = fresh ? bytes : bytes - node.bytes;
    node.bytes = bytes;
    node.partition.bytes += delta;
    node.partition.owner.bytes += delta;
    this.#bytes += delta;
  }

  #append(node: Node): void {
    node.prev = this.#tail;
    if (this.#tail === undefined) this.#head = node;
    else this.#tail.next = node;
    this.#tail = node;
    const partition = node.partition;
    if (partition.ordered) {
      node.partPrev = partition.tail;
      if (partition.tail === undefined) partition.head = node;
      else partition.tail.partNext = node;
      partition.tail = node;
    }
    this.#count++;
    partition.owner.entries++;
  }

  #touch(node: Node): void {
    if (this.#tail !== node) {
      this.#unlinkGlobalOnly(node);
      node.prev = this.#tail;
      node.next = undefined;
      (this.#tail as Node).next = node;
      this.#tail = node;
    }
    const partition = node.partition;
    if (partition.ordered && partition.tail !== node) {
      this.#unlinkPartitionOnly(node);
      node.partPrev = partition.tail;
      node.partNext = undefined;
      (partition.tail as Node).partNext = node;
      partition.tail = node;
    }
  }

  #remove(node: Node): void {
    const partition = node.partition;
    partition.map.delete(node.key);
    if (partition.ordered) this.#unlinkPartitionOnly(node);
    this.#unlinkGlobal(node);
    partition.bytes -= node.bytes;
    if (partition.map.size === 0) this.#dropPartition(partition);
  }

  #tag(node: Node): void {
    for (const tag of node.entry.tags as readonly string[]) {
      let nodes = this.#tagged.get(tag);
      if (nodes === undefined) {
        nodes = new Set();
        this.#tagged.set(tag, nodes);
      }
      nodes.add(node);
    }
  }

  #untag(node: Node): void {
    for (const tag of node.entry.tags as readonly string[]) {
      const nodes = this.#tagged.get(tag);
      if (nodes === undefined) continue;
      nodes.delete(node);
      if (nodes.size === 0) this.#tagged.delete(tag);
    }
  }

  /** Takes a node off the global list and out of the store-wide and namespace counters. */
  #unlinkGlobal(node: Node): void {
    if (node.entry.tags !== undefined) this.#untag(node);
    this.#unlinkGlobalOnly(node);
    this.#count--;
    this.#bytes -= node.bytes;
    node.partition.owner.entries--;
    node.partition.owner.bytes -= node.bytes;
  }

  #unlinkGlobalOnly(node: Node): void {
    if (node.prev === undefined) this.#head = node.next;
    else node.prev.next = node.next;
    if (node.next === undefined) this.#tail = node.prev;
    else node.next.prev = node.prev;
    node.prev = undefined;
    node.next = undefined;
  }

  #unlinkPartitionOnly(node: Node): void {
    const partition = node.partition;
    if (node.partPrev === undefined) partition.head = node.partNext;
    else node.partPrev.partNext = node.partNext;
    if (node.partNext === undefined) partition.tail = node.partPrev;
    else node.partNext.partPrev = node.partPrev;
    node.partPrev = undefined;
    node.partNext = undefined;
  }

  #dropPartition(partition: Partition): void {
    if (this.#lastPartition === partition) {
      this.#lastScope = undefined;
      this.#lastPartition = undefined;
    }
    partition.map.clear();
    partition.head = undefined;
    partition.tail = undefined;
    partition.bytes = 0;
    const record = partition.owner;
    if (partition.scope.session === undefined) record.global = undefined;
    else record.sessions.delete(partition.scope.session);
    if (record.global === undefined && record.sessions.size === 0) {
      this.#namespaces.delete(record.name);
    }
  }
}
