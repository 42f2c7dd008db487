/**
 * `SealedStore`: encryption at rest for any store. Wrap the persistent or shared store
 * (`new SealedStore(new SqliteStore(…), { keys })`) and what reaches its file, its server or an
 * export is sealed:
 *
 * - the value, the raw key (`Cache.keys()`), the tags and the entry's own key and session are
 *   sealed together with AES-256-GCM (a random 96-bit IV per write, the key id in the clear in
 *   front, so older keys still open what they sealed after a rotation);
 * - the key the inner store sees is a keyed hash (HMAC-SHA256 under a key derived from the
 *   encryption key with HKDF), and so are sessions (a session id may be a user's id) and tags, so
 *   neither the key space nor an index can confirm a guessed prompt;
 * - the stored address (namespace, hashed session, hashed key) and the envelope's header are the
 *   associated data: a sealed value copied under another key, scope or key id does not open.
 *
 * What stays in the clear: namespaces (they name a cache, not its content), the entry's times
 * (`createdAt`, `expiresAt`, `staleAt`, `computeMs`: the store expires and purges by them) and
 * the sizes of values. A value that fails its tag (tampered, or sealed by another key under the
 * same id) reads as corrupt: a miss, and the entry is dropped. One sealed under a key id this
 * store does not hold is a miss and left alone (another process may hold that key).
 *
 * Not for in-process stores: a MemoryStore holds live objects. Put the SealedStore *inside* a
 * TieredStore (`new TieredStore({ store: new SealedStore(sqlite, …) })`): its memory tier then
 * holds plaintext in this process's heap, and only what leaves the process is sealed.
 */

import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from "node:crypto";
import { scopeId } from "./address.js";
import { CorruptEntryError, decodeEntry, encodeOrRefuse } from "./envelope.js";
import type {
  ClearScope,
  Entry,
  FlightCoordinator,
  FlightLease,
  InvalidationBus,
  InvalidationMessage,
  PurgeFilter,
  Scope,
  SetOutcome,
  Store,
  StoreEvent,
  StoreHealth,
} from "./store.js";

/**
 * One encryption key: 32 bytes, as bytes or as base64 (or 64 hex digits) text, optionally with
 * an id. Without an id, the id is a fingerprint of the key (8 hex digits, derived with HKDF, so
 * it says nothing about the key).
 */
export type EncryptionKey =
  | Uint8Array
  | string
  | { readonly id: string; readonly key: Uint8Array | string };

export interface SealedStoreOptions {
  /**
   * The keys, newest first: new writes use the first, the others only open and find what they
   * sealed (rotation). A string is the command line's form: `[id:]base64` entries separated by
   * commas, e.g. `"k2:BASE64,k1:BASE64"`.
   */
  keys: string | readonly EncryptionKey[];
}

/** A key ready for use: its id and the two keys HKDF derives from it. */
interface RingKey {
  readonly id: string;
  /** The id as it is written in front of a sealed value. */
  readonly idBytes: Buffer;
  readonly cipherKey: Buffer;
  readonly hashKey: Buffer;
}

/** "ICS" and the sealed format's version, in front of every sealed value. */
const MAGIC = Buffer.from([0x49, 0x43, 0x53, 0x01]);
const IV_BYTES = 12;
const TAG_BYTES = 16;
const ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
/** The namespace of the check values that tell a wrong key from an empty store. */
export const SEAL_CHECK_NAMESPACE = "infercache-seal";
const CHECK_VALUE = "infercache sealed store check";

/** Thrown by `check()` when the store's entries were sealed with other keys. */
export class EncryptionKeyError extends Error {
  override readonly name = "EncryptionKeyError";
}

/**
 * Parses keys given as text or values into a key ring, newest first. @throws TypeError naming
 * the entry that is wrong, never the key's content.
 */
export function parseEncryptionKeys(
  keys: string | readonly EncryptionKey[],
  what = "keys",
): readonly RingKey[] {
  const list: EncryptionKey[] =
    typeof keys === "string"
      ? keys
          .split(",")
          .map((part) => part.trim())
          .filter((part) => part !== "")
      : [...keys];
  if (!Array.isArray(list) || list.length === 0) {
    throw new TypeError(
      `Expected \`${what}\` to hold at least one 32-byte key (base64, or [id:]base64 entries separated by commas, newest first), got none`,
    );
  }
  const ring: RingKey[] = [];
  for (const [at, item] of list.entries()) {
    const where = list.length === 1 ? `\`${what}\`` : `\`${what}\` entry ${at + 1}`;
    let id: string | undefined;
    let material: Uint8Array | string;
    if (typeof item === "string") {
      const colon = item.indexOf(":");
      if (colon >= 0) {
        id = item.slice(0, colon);
        material = item.slice(colon + 1);
      } else material = item;
    } else if (item instanceof Uint8Array) material = item;
    else if (typeof item === "object" && item !== null && "key" in item) {
      id = item.id;
      material = item.key;
    } else {
      throw new TypeError(
        `Expected ${where} to be a key (bytes, base64 text or { id, key }), got ${typeof item}`,
      );
    }
    if (id !== undefined && (typeof id !== "string" || !ID_PATTERN.test(id))) {
      throw new TypeError(
        `Expected the id of ${where} to be 1-64 letters, digits, '.', '_' or '-', got \`${String(id).slice(0, 64)}\``,
      );
    }
    const bytes = keyBytes(material);
    if (bytes === undefined) {
      const length =
        material instanceof Uint8Array
          ? `${material.length} bytes`
          : `${material.length} characters`;
      throw new TypeError(
        `Expected ${where} to be 32 bytes (44 characters of base64, or 64 hex digits), got ${length}; make one with \`openssl rand -base64 32\``,
      );
    }
    const cipherKey = derive(bytes, "infercache seal v1: aes-256-gcm");
    const hashKey = derive(bytes, "infercache seal v1: hmac-sha256");
    const keyId = id ?? derive(bytes, "infercache seal v1: key id").subarray(0, 4).toString("hex");
    if (ring.some((other) => other.id === keyId)) {
      throw new TypeError(`Expected the key ids in \`${what}\` to differ, got \`${keyId}\` twice`);
    }
    ring.push({ id: keyId, idBytes: Buffer.from(keyId, "utf8"), cipherKey, hashKey });
  }
  return ring;
}

function keyBytes(material: Uint8Array | string): Buffer | undefined {
  if (material instanceof Uint8Array)
    return material.length === 32 ? Buffer.from(material) : undefined;
  if (typeof material !== "string") return undefined;
  if (/^[0-9a-fA-F]{64}$/.test(material)) return Buffer.from(material, "hex");
  if (!/^[A-Za-z0-9+/_-]{43}=?$/.test(material)) return undefined;
  const bytes = Buffer.from(material, "base64");
  return bytes.length === 32 ? bytes : undefined;
}

function derive(key: Buffer, info: string): Buffer {
  return Buffer.from(hkdfSync("sha256", key, Buffer.alloc(0), info, 32));
}

/** What `open` found in a stored entry. */
type Opened =
  | {
      readonly state: "open";
      readonly key: string;
      readonly scope: Scope;
      readonly entry: Entry;
      readonly keyId: string;
    }
  | { readonly state: "plain" }
  | { readonly state: "unknown-key"; readonly keyId: string }
  | { readonly state: "corrupt"; readonly reason: string };

export class SealedStore implements Store {
  readonly kind: string;
  readonly inner: Store;
  readonly flights: FlightCoordinator | undefined;
  readonly purge?: (filter: PurgeFilter) => Promise<number>;
  readonly publishInvalidation?: (message: Omit<InvalidationMessage, "origin">) => Promise<void>;
  readonly onInvalidation?: (
    listener: (message: InvalidationMessage) => void,
  ) => Promise<() => void>;
  readonly #ring: readonly RingKey[];
  readonly #current: RingKey;
  readonly #byId: Map<string, RingKey>;
  readonly #listeners = new Set<(event: StoreEvent) => void>();

  constructor(inner: Store, options: SealedStoreOptions) {
    if (inner === undefined || inner === null || typeof inner.get !== "function") {
      throw new TypeError(
        "new SealedStore() needs the store to seal as its first argument (a SqliteStore, a RedisStore, any Store)",
      );
    }
    if (inner.sync !== undefined) {
      throw new TypeError(
        `new SealedStore(): the ${inner.kind} store lives in this process (nothing of it is at rest); seal the store behind it instead, e.g. new TieredStore({ store: new SealedStore(sqlite, …) })`,
      );
    }
    this.#ring = parseEncryptionKeys(options?.keys as SealedStoreOptions["keys"], "keys");
    this.#current = this.#ring[0] as RingKey;
    this.#byId = new Map(this.#ring.map((key) => [key.id, key]));
    this.inner = inner;
    this.kind = `sealed(${inner.kind})`;
    this.flights = inner.flights === undefined ? undefined : this.#sealFlights(inner.flights);
    const purge = inner.purge?.bind(inner);
    if (purge !== undefined) {
      // Tags are hashed under the key that sealed the entry: one purge per key of the ring (an
      // entry is under exactly one), so `allTags` compares tags hashed alike.
      this.purge = async (filter) => {
        if (filter.tags === undefined && filter.allTags === undefined) return purge(filter);
        let removed = 0;
        for (const key of this.#ring) {
          const hashed = (tags: readonly string[]) =>
            tags.map((tag) => this.#hash(key, "tag", tag));
          removed += await purge({
            ...filter,
            ...(filter.tags !== undefined && { tags: hashed(filter.tags) }),
            ...(filter.allTags !== undefined && { allTags: hashed(filter.allTags) }),
          });
        }
        return removed;
      };
    }
    const bus = inner as Partial<InvalidationBus>;
    if (typeof bus.publishInvalidation === "function" && typeof bus.onInvalidation === "function") {
      const publish = bus.publishInvalidation.bind(inner);
      const listen = bus.onInvalidation.bind(inner);
      this.publishInvalidation = (message) => publish(this.#sealMessage(message));
      this.onInvalidation = (listener) => listen((message) => listener(this.#openMessage(message)));
    }
  }

  /** The id new writes are sealed with. */
  get currentKeyId(): string {
    return this.#current.id;
  }

  async get(key: string, scope: Scope): Promise<Entry | undefined> {
    for (const ringKey of this.#ring) {
      const innerScope = this.#innerScope(ringKey, scope);
      const innerKey = this.#hash(ringKey, "key", key);
      const stored = await this.inner.get(innerKey, innerScope);
      if (stored === undefined) continue;
      const opened = this.#open(innerKey, innerScope, stored);
      if (opened.state === "open" && opened.key === key && opened.scope.session === scope.session) {
        return opened.entry;
      }
      if (opened.state === "corrupt" || opened.state === "open" || opened.state === "plain") {
        // Bytes this ring's key does not open, or an entry that is not the one asked for: it can
        // never be served, and a later write under the key replaces it anyway.
        await this.inner.delete(innerKey, innerScope);
        this.#emit({ type: "evict", reason: "corrupt", scope, key });
      }
    }
    return undefined;
  }

  async set(key: string, scope: Scope, entry: Entry): Promise<SetOutcome> {
    const sealed = this.seal(key, scope, entry);
    if (sealed === "not-serializable") return sealed;
    const outcome = await this.inner.set(sealed.key, sealed.scope, sealed.entry);
    // An entry under an older key's address would be found before a miss: drop it.
    if (this.#ring.length > 1) await this.#deleteOlder(key, scope);
    return outcome;
  }

  async delete(key: string, scope: Scope): Promise<boolean> {
    let deleted = false;
    for (const ringKey of this.#ring) {
      if (
        await this.inner.delete(this.#hash(ringKey, "key", key), this.#innerScope(ringKey, scope))
      )
        deleted = true;
    }
    return deleted;
  }

  async clear(scope?: ClearScope): Promise<number> {
    let removed = 0;
    for (const innerScope of this.#clearScopes(scope))
      removed += await this.inner.clear(innerScope);
    return removed;
  }

  async size(scope?: ClearScope): Promise<number> {
    let count = 0;
    for (const innerScope of this.#clearScopes(scope)) count += await this.inner.size(innerScope);
    // The check values (one per key id) are bookkeeping, not entries.
    if (
      scope?.namespace === undefined &&
      (scope?.session === undefined || scope.session === null)
    ) {
      count -= await this.inner.size({ namespace: SEAL_CHECK_NAMESPACE, session: null });
    }
    return count;
  }

  /** The entries of `scope` this ring opens, under their own keys; others are left out. */
  async *entries(scope: Scope): AsyncIterable<[key: string, entry: Entry]> {
    for (const ringKey of this.#ring) {
      const innerScope = this.#innerScope(ringKey, scope);
      for await (const [innerKey, stored] of this.inner.entries(innerScope)) {
        const opened = this.#open(innerKey, innerScope, stored);
        if (opened.state === "open" && opened.keyId === ringKey.id)
          yield [opened.key, opened.entry];
      }
    }
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    // Evictions the inner store reports name the stored (hashed) key and session: only the
    // sealed value knows the real ones, and an eviction without the entry cannot be opened.
    this.#listeners.add(listener);
    const unsubscribe = this.inner.subscribe?.(listener);
    return () => {
      this.#listeners.delete(listener);
      unsubscribe?.();
    };
  }

  usage(namespace: string): { entries: number; bytes: number } {
    return this.inner.usage?.(namespace) ?? { entries: 0, bytes: 0 };
  }

  health(): StoreHealth {
    return this.inner.health?.() ?? { state: "ok" };
  }

  secret(name: string): Promise<string> {
    if (this.inner.secret === undefined) {
      return Promise.reject(new Error(`infercache: the ${this.inner.kind} store keeps no secrets`));
    }
    return this.inner.secret(name);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /**
   * Checks the keys against the store: each key id keeps a small sealed check value in the
   * store (namespace `infercache-seal`). Throws `EncryptionKeyError` when a check value of one
   * of these ids does not open (the right id, the wrong key), or when the store holds check
   * values and none is of these keys; then writes the current key's check value. The command
   * line runs it before any work; call it once after opening a store in a program.
   */
  async check(): Promise<void> {
    const scope: Scope = { namespace: SEAL_CHECK_NAMESPACE };
    const seen: string[] = [];
    let known = false;
    for await (const [id, stored] of this.inner.entries(scope)) {
      seen.push(id);
      const ringKey = this.#byId.get(id);
      if (ringKey === undefined) continue;
      const opened = this.#open(id, scope, stored);
      if (opened.state !== "open" || opened.entry.value !== CHECK_VALUE) {
        throw new EncryptionKeyError(
          `infercache: the store's entries under key id \`${id}\` were sealed with another key: pass the key they were written with`,
        );
      }
      known = true;
    }
    if (seen.length > 0 && !known) {
      throw new EncryptionKeyError(
        `infercache: the store's entries are sealed with key id${seen.length > 1 ? "s" : ""} ${seen.map((id) => `\`${id}\``).join(", ")}, and the keys given are ${this.#ring.map((key) => `\`${key.id}\``).join(", ")}: pass the key they were written with (newest first, older ones after it)`,
      );
    }
    if (!seen.includes(this.#current.id)) {
      const sealed = this.#sealAs(this.#current, this.#current.id, scope, scope, {
        value: CHECK_VALUE,
        createdAt: Date.now(),
      });
      if (sealed !== "not-serializable")
        await this.inner.set(sealed.key, sealed.scope, sealed.entry);
    }
  }

  /**
   * An entry as the inner store keeps it: under the hashed key and session, sealed with the
   * current key. `"not-serializable"` for a value that cannot leave the process.
   */
  seal(
    key: string,
    scope: Scope,
    entry: Entry,
  ): { key: string; scope: Scope; entry: Entry } | "not-serializable" {
    const ringKey = this.#current;
    return this.#sealAs(
      ringKey,
      this.#hash(ringKey, "key", key),
      this.#innerScope(ringKey, scope),
      scope,
      entry,
      key,
    );
  }

  /**
   * What a stored entry holds, read from the inner store's `key` and `scope`: `open` with the
   * entry's own key and scope, `plain` (not sealed), `unknown-key` (sealed under an id this
   * store does not hold) or `corrupt` (it fails its tag: tampered, moved or another key).
   */
  open(innerKey: string, innerScope: Scope, stored: Entry): Opened {
    return this.#open(innerKey, innerScope, stored);
  }

  #sealAs(
    ringKey: RingKey,
    innerKey: string,
    innerScope: Scope,
    scope: Scope,
    entry: Entry,
    key = innerKey,
  ): { key: string; scope: Scope; entry: Entry } | "not-serializable" {
    // Inside: the value, the raw key with the entry's own key and session, the tags.
    const inside: Entry = {
      value: entry.value,
      createdAt: entry.createdAt,
      rawKey:
        entry.rawKey === undefined
          ? [key, scope.session ?? null]
          : [key, scope.session ?? null, entry.rawKey],
    };
    if (entry.tags !== undefined) inside.tags = entry.tags;
    const plaintext = encodeOrRefuse(inside);
    if (plaintext === "not-serializable") return plaintext;
    const header = Buffer.allocUnsafe(MAGIC.length + 1 + ringKey.idBytes.length + IV_BYTES);
    MAGIC.copy(header, 0);
    header[MAGIC.length] = ringKey.idBytes.length;
    ringKey.idBytes.copy(header, MAGIC.length + 1);
    randomBytes(IV_BYTES).copy(header, MAGIC.length + 1 + ringKey.idBytes.length);
    const iv = header.subarray(header.length - IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", ringKey.cipherKey, iv);
    cipher.setAAD(associatedData(header, innerKey, innerScope));
    const value = Buffer.concat([
      header,
      cipher.update(plaintext),
      cipher.final(),
      cipher.getAuthTag(),
    ]);
    const outer: Entry = { value, createdAt: entry.createdAt };
    if (entry.expiresAt !== undefined) outer.expiresAt = entry.expiresAt;
    if (entry.computeMs !== undefined) outer.computeMs = entry.computeMs;
    if (entry.staleAt !== undefined) outer.staleAt = entry.staleAt;
    if (entry.tags !== undefined)
      outer.tags = entry.tags.map((tag) => this.#hash(ringKey, "tag", tag));
    return { key: innerKey, scope: innerScope, entry: outer };
  }

  #open(innerKey: string, innerScope: Scope, stored: Entry): Opened {
    const value = stored.value;
    if (
      !(value instanceof Uint8Array) ||
      value.length < MAGIC.length + 1 ||
      !MAGIC.equals(value.subarray(0, MAGIC.length))
    ) {
      return { state: "plain" };
    }
    const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    const idLength = bytes[MAGIC.length] as number;
    const headerLength = MAGIC.length + 1 + idLength + IV_BYTES;
    if (bytes.length < headerLength + TAG_BYTES)
      return { state: "corrupt", reason: "it is shorter than its header" };
    const keyId = bytes.toString("utf8", MAGIC.length + 1, MAGIC.length + 1 + idLength);
    const ringKey = this.#byId.get(keyId);
    if (ringKey === undefined) return { state: "unknown-key", keyId };
    const header = bytes.subarray(0, headerLength);
    let plaintext: Buffer;
    try {
      const decipher = createDecipheriv(
        "aes-256-gcm",
        ringKey.cipherKey,
        header.subarray(headerLength - IV_BYTES),
      );
      decipher.setAAD(associatedData(header, innerKey, innerScope));
      decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
      plaintext = Buffer.concat([
        decipher.update(bytes.subarray(headerLength, bytes.length - TAG_BYTES)),
        decipher.final(),
      ]);
    } catch {
      return {
        state: "corrupt",
        reason: `it does not open with key \`${keyId}\` (tampered, moved, or another key under that id)`,
      };
    }
    let inside: Entry;
    try {
      inside = decodeEntry(plaintext);
    } catch (error) {
      if (error instanceof CorruptEntryError)
        return { state: "corrupt", reason: "its sealed envelope is damaged" };
      throw error;
    }
    const parts = inside.rawKey as unknown[];
    const key = parts?.[0];
    const session = parts?.[1];
    if (
      !Array.isArray(parts) ||
      typeof key !== "string" ||
      (session !== null && typeof session !== "string")
    ) {
      return { state: "corrupt", reason: "its sealed envelope is damaged" };
    }
    const entry: Entry = { value: inside.value, createdAt: stored.createdAt };
    if (stored.expiresAt !== undefined) entry.expiresAt = stored.expiresAt;
    if (stored.computeMs !== undefined) entry.computeMs = stored.computeMs;
    if (stored.staleAt !== undefined) entry.staleAt = stored.staleAt;
    if (parts.length > 2) entry.rawKey = parts[2];
    if (inside.tags !== undefined) entry.tags = inside.tags;
    const scope: Scope =
      session === null
        ? { namespace: innerScope.namespace }
        : { namespace: innerScope.namespace, session };
    return { state: "open", key, scope, entry, keyId };
  }

  /** HMAC-SHA256 of `text` under `key`'s hash key, labelled by what it is, as base64url. */
  #hash(ringKey: RingKey, label: "key" | "session" | "tag", text: string): string {
    return createHmac("sha256", ringKey.hashKey)
      .update(label)
      .update("\0")
      .update(text)
      .digest("base64url");
  }

  #innerScope(ringKey: RingKey, scope: Scope): Scope {
    return scope.session === undefined
      ? scope
      : { namespace: scope.namespace, session: this.#hash(ringKey, "session", scope.session) };
  }

  /** The inner scopes a clear or size covers: a session under each key's hash of it. */
  #clearScopes(scope: ClearScope | undefined): ClearScope[] {
    if (typeof scope?.session !== "string") return [scope ?? {}];
    const session = scope.session;
    return this.#ring.map((ringKey) => ({
      namespace: scope.namespace,
      session: this.#hash(ringKey, "session", session),
    }));
  }

  async #deleteOlder(key: string, scope: Scope): Promise<void> {
    for (const ringKey of this.#ring) {
      if (ringKey === this.#current) continue;
      await this.inner.delete(this.#hash(ringKey, "key", key), this.#innerScope(ringKey, scope));
    }
  }

  #emit(event: StoreEvent): void {
    for (const listener of this.#listeners) listener(event);
  }

  #sealFlights(flights: FlightCoordinator): FlightCoordinator {
    const current = this.#current;
    return {
      acquire: (key: string, scope: Scope): Promise<FlightLease | undefined> =>
        flights.acquire(this.#hash(current, "key", key), this.#innerScope(current, scope)),
      waitFor: (key: string, scope: Scope, timeoutMs: number) =>
        flights.waitFor(
          this.#hash(current, "key", key),
          this.#innerScope(current, scope),
          timeoutMs,
        ),
    };
  }

  /** An invalidation with its key and session sealed (other processes hold the same keys). */
  #sealMessage(message: Omit<InvalidationMessage, "origin">): Omit<InvalidationMessage, "origin"> {
    const sealed: Omit<InvalidationMessage, "origin"> = { ...message };
    if (typeof message.key === "string") sealed.key = this.#sealText(message.key);
    if (typeof message.session === "string") sealed.session = this.#sealText(message.session);
    return sealed;
  }

  /** The other side of `#sealMessage`; one that does not open drops the whole namespace. */
  #openMessage(message: InvalidationMessage): InvalidationMessage {
    const key = typeof message.key === "string" ? this.#openText(message.key) : message.key;
    const session =
      typeof message.session === "string" ? this.#openText(message.session) : message.session;
    if (key === null || session === null) {
      return { origin: message.origin, kind: "clear", namespace: message.namespace };
    }
    return { ...message, key, session };
  }

  #sealText(text: string): string {
    const ringKey = this.#current;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", ringKey.cipherKey, iv);
    cipher.setAAD(Buffer.from("infercache invalidation"));
    const body = Buffer.concat([cipher.update(text, "utf8"), cipher.final(), cipher.getAuthTag()]);
    return `${ringKey.id}:${Buffer.concat([iv, body]).toString("base64")}`;
  }

  #openText(text: string): string | null {
    const colon = text.indexOf(":");
    const ringKey = colon < 0 ? undefined : this.#byId.get(text.slice(0, colon));
    if (ringKey === undefined) return null;
    const bytes = Buffer.from(text.slice(colon + 1), "base64");
    if (bytes.length < IV_BYTES + TAG_BYTES) return null;
    try {
      const decipher = createDecipheriv(
        "aes-256-gcm",
        ringKey.cipherKey,
        bytes.subarray(0, IV_BYTES),
      );
      decipher.setAAD(Buffer.from("infercache invalidation"));
      decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
      return Buffer.concat([
        decipher.update(bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES)),
        decipher.final(),
      ]).toString("utf8");
    } catch {
      return null;
    }
  }
}

/** The sealed value's header and its stored address: what a value is bound to. */
function associatedData(header: Buffer, innerKey: string, innerScope: Scope): Buffer {
  return Buffer.concat([header, Buffer.from(scopeId(innerScope, innerKey), "utf8")]);
}

/** Whether a stored entry's value is a sealed value (whatever key sealed it). */
export function isSealed(entry: Entry): boolean {
  const value = entry.value;
  return (
    value instanceof Uint8Array &&
    value.length > MAGIC.length &&
    MAGIC.equals(value.subarray(0, MAGIC.length))
  );
}
