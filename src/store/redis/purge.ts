/**
 * RedisStore's `purge`: finds the entries a filter names through the namespace's purge indexes
 * (`{ns}:t:<tag>` for tags, `{ns}:c` for age; see bookkeeping.ts for how they are written and
 * bounded) and deletes them with their index members, one namespace at a time (each namespace
 * is one cluster slot, so a chunk's commands share a transaction).
 *
 * A tag index may hold stale members (an entry deleted, expired, evicted, or rewritten without
 * the tag since). Each member is checked against `{ns}:c`: it matches only while the entry's
 * creation time there is the one it was tagged with. Stale members met are dropped. An entry
 * rewritten between that check and the delete (a set racing the purge) is removed too: a miss,
 * never a stale hit.
 *
 * When Redis may evict the indexes (maxmemory-policy allkeys-*, `bookkeeping: "scan"`), the
 * indexes cannot be trusted to be complete, so purge SCANs the namespace's entries and reads
 * each one (exact, O(keys in the database), as clears do then).
 */

import { CorruptEntryError, decodeEntry } from "../envelope.js";
import type { PurgeFilter, Scope } from "../store.js";
import { matchesPurge } from "../tags.js";
import { type Bookkeeping, CHUNK } from "./bookkeeping.js";
import type { Connection } from "./connection.js";
import type { RedisLayout } from "./layout.js";

export class RedisPurge {
  readonly #conn: Connection;
  readonly #layout: RedisLayout;
  readonly #bookkeeping: Bookkeeping;
  readonly #now: () => number;

  constructor(conn: Connection, layout: RedisLayout, bookkeeping: Bookkeeping, now: () => number) {
    this.#conn = conn;
    this.#layout = layout;
    this.#bookkeeping = bookkeeping;
    this.#now = now;
  }

  /** Removes what a checked filter matches; returns how many live entries went. */
  async purge(filter: PurgeFilter): Promise<number> {
    await this.#bookkeeping.detected;
    const namespaces =
      filter.namespace !== undefined ? [filter.namespace] : await this.#bookkeeping.namespaces();
    let removed = 0;
    for (const namespace of namespaces) {
      if (this.#bookkeeping.scanning) removed += await this.#scan(namespace, filter);
      else if (filter.tags !== undefined || filter.allTags !== undefined) {
        removed += await this.#byTags(namespace, filter);
      } else removed += await this.#byAge(namespace, filter.olderThan as number);
    }
    return removed;
  }

  async #byTags(namespace: string, filter: PurgeFilter): Promise<number> {
    const handled = new Set<string>();
    let removed = 0;
    // With `allTags`, one of them is walked and the others checked per member.
    const walked =
      filter.allTags !== undefined ? [filter.allTags[0] as string] : (filter.tags ?? []);
    for (const tag of walked) {
      const tagKey = this.#layout.tagKey(namespace, tag);
      let cursor = "0";
      do {
        const [next, flat] = (await this.#send(
          ["ZSCAN", tagKey, cursor, "COUNT", String(CHUNK)],
          tagKey,
        )) as [string, string[]];
        cursor = String(next);
        const members: string[] = [];
        const scores: number[] = [];
        for (let i = 0; i < flat.length; i += 2) {
          const member = String(flat[i]);
          if (handled.has(member)) continue;
          handled.add(member);
          members.push(member);
          scores.push(Number(flat[i + 1]));
        }
        if (members.length > 0) {
          removed += await this.#checkAndRemove(namespace, tagKey, members, scores, filter);
        }
      } while (cursor !== "0");
    }
    return removed;
  }

  /** Deletes the members whose entry is as tagged (and old enough); drops the stale ones. */
  async #checkAndRemove(
    namespace: string,
    tagKey: string,
    members: string[],
    taggedAt: number[],
    filter: PurgeFilter,
  ): Promise<number> {
    const createdKey = this.#layout.createdKey(namespace);
    const current = (await this.#send(["ZMSCORE", createdKey, ...members], createdKey)) as (
      | string
      | null
    )[];
    let matching: string[] = [];
    let matchedAt: number[] = [];
    const stale: string[] = [];
    for (const [i, member] of members.entries()) {
      const createdAt = current[i] === null || current[i] === undefined ? NaN : Number(current[i]);
      if (createdAt !== taggedAt[i]) stale.push(member);
      else if (filter.olderThan === undefined || createdAt < filter.olderThan) {
        matching.push(member);
        matchedAt.push(createdAt);
      }
    }
    if (filter.allTags !== undefined) {
      // The other tags must be on the entry as it is now: in their index at its creation time.
      // Members that fail only these tests are not stale, and stay in the walked index.
      for (const tag of filter.allTags.slice(1)) {
        if (matching.length === 0) break;
        const has = await this.#taggedNow(namespace, tag, matching, matchedAt);
        matching = matching.filter((_, i) => has[i]);
        matchedAt = matchedAt.filter((_, i) => has[i]);
      }
      if (filter.tags !== undefined && matching.length > 0) {
        const any = matching.map(() => false);
        for (const tag of filter.tags) {
          const has = await this.#taggedNow(namespace, tag, matching, matchedAt);
          for (const [i, yes] of has.entries()) if (yes) any[i] = true;
        }
        matching = matching.filter((_, i) => any[i]);
      }
    }
    const removed = await this.#removeMembers(namespace, matching);
    const done = [...stale, ...matching];
    if (done.length > 0) await this.#send(["ZREM", tagKey, ...done], tagKey);
    return removed;
  }

  /** For each member: whether `tag`'s index holds it at the entry's creation time. */
  async #taggedNow(
    namespace: string,
    tag: string,
    members: string[],
    createdAt: number[],
  ): Promise<boolean[]> {
    const tagKey = this.#layout.tagKey(namespace, tag);
    const scores = (await this.#send(["ZMSCORE", tagKey, ...members], tagKey)) as (string | null)[];
    return members.map((_, i) => {
      const score = scores[i];
      return score !== null && score !== undefined && Number(score) === createdAt[i];
    });
  }

  async #byAge(namespace: string, olderThan: number): Promise<number> {
    const createdKey = this.#layout.createdKey(namespace);
    let removed = 0;
    for (;;) {
      // Each round's members leave `{ns}:c` with their entries, so the next round starts at 0.
      const members = (
        (await this.#send(
          ["ZRANGEBYSCORE", createdKey, "-inf", `(${olderThan}`, "LIMIT", "0", String(CHUNK)],
          createdKey,
        )) as unknown[]
      ).map(String);
      if (members.length === 0) return removed;
      removed += await this.#removeMembers(namespace, members);
      if (members.length < CHUNK) return removed;
    }
  }

  /** Deletes the entries of purge-index members (with their other index members). */
  async #removeMembers(namespace: string, members: string[]): Promise<number> {
    const byScope = new Map<string, { scope: Scope; keys: string[] }>();
    const unreadable: string[] = [];
    for (const member of members) {
      const parsed = this.#layout.parseMember(namespace, member);
      if (parsed === undefined) {
        unreadable.push(member);
        continue;
      }
      const id = this.#layout.indexKey(parsed.scope);
      let group = byScope.get(id);
      if (group === undefined) {
        group = { scope: parsed.scope, keys: [] };
        byScope.set(id, group);
      }
      group.keys.push(parsed.key);
    }
    if (unreadable.length > 0) {
      const createdKey = this.#layout.createdKey(namespace);
      await this.#send(["ZREM", createdKey, ...unreadable], createdKey);
    }
    let removed = 0;
    for (const { scope, keys } of byScope.values()) {
      removed += await this.#bookkeeping.remove(scope, keys);
    }
    return removed;
  }

  /** The exact path when the indexes may be evicted: every entry of the namespace, read. */
  async #scan(namespace: string, filter: PurgeFilter): Promise<number> {
    const now = this.#now();
    let removed = 0;
    for (const [scope, keys] of await this.#bookkeeping.scanScopes({ namespace })) {
      for (let i = 0; i < keys.length; i += CHUNK) {
        const chunk = keys.slice(i, i + CHUNK);
        const entryKeys = chunk.map((key) => this.#layout.entryKey(scope, key));
        const values = (await this.#conn.run(() =>
          this.#conn.driver.sendForBytes(["MGET", ...entryKeys], entryKeys[0]),
        )) as (Buffer | null)[];
        const matching: string[] = [];
        for (const [j, bytes] of values.entries()) {
          if (bytes === null) continue;
          try {
            const entry = decodeEntry(bytes);
            const live = entry.expiresAt === undefined || entry.expiresAt > now;
            if (live && matchesPurge(entry, namespace, filter)) matching.push(chunk[j] as string);
          } catch (error) {
            if (!(error instanceof CorruptEntryError)) throw error;
          }
        }
        removed += await this.#bookkeeping.remove(scope, matching);
      }
    }
    return removed;
  }

  #send(args: string[], routeKey: string): Promise<unknown> {
    return this.#conn.run(() => this.#conn.driver.send(args, routeKey));
  }
}
