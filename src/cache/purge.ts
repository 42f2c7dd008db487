/**
 * `purge` for `Cache` and `fn.cache`: the library's filter (`tag`/`tags`, `olderThan` as an age
 * or a `Date`), checked and turned into the store's `PurgeFilter` for this cache's namespace, and
 * the `tags` option of `cache(fn)` (a list, or a function of the call's arguments).
 *
 * A purge is an explicit act, so unlike reads and writes it does not fail open: a store that
 * cannot purge, or fails to, rejects (and is counted in `stats().errors`), so stale entries are
 * never reported as gone.
 */

import type { Clock } from "../base/clock.js";
import { type Duration, parseDuration } from "../base/duration.js";
import type { PurgeFilter, Store } from "../store/store.js";
import { checkTag, checkTags } from "../store/tags.js";

/** What `purge` removes: entries matching every field given (tags: any of them). */
export interface PurgeOptions {
  /** Entries carrying this tag. */
  tag?: string;
  /** Entries carrying any of these tags. */
  tags?: readonly string[];
  /**
   * Entries written longer ago than this age (ms or `"7d"`, on the cache's clock), or before
   * this `Date`.
   */
  olderThan?: Duration | Date;
}

/** The store filter for `options` in `namespace`. @throws TypeError naming the bad field */
export function purgeFilter(namespace: string, options: PurgeOptions, clock: Clock): PurgeFilter {
  if (options === null || typeof options !== "object") {
    throw new TypeError(
      `Expected the purge options to be an object such as { tag: "docs-v1" } or { olderThan: "7d" }, got \`${String(options)}\` (${options === null ? "null" : typeof options})`,
    );
  }
  const { tag, tags, olderThan } = options;
  if (tag !== undefined && tags !== undefined) {
    throw new TypeError("Expected either `tag` or `tags` in the purge options, got both");
  }
  const list = tag !== undefined ? [checkTag(tag, "tag")] : checkTags(tags);
  if (Array.isArray(tags) && tags.length === 0) {
    throw new TypeError("Expected `tags` to hold at least one tag, got `[]`");
  }
  let before: number | undefined;
  if (olderThan instanceof Date) {
    before = olderThan.getTime();
    if (Number.isNaN(before)) throw new TypeError("Expected `olderThan` to be a valid Date");
  } else if (olderThan !== undefined) {
    before = clock.now() - parseDuration(olderThan, "olderThan");
  }
  if (list === undefined && before === undefined) {
    throw new TypeError(
      "Expected the purge options to have `tag`, `tags` or `olderThan`, got none; to remove every entry use clear()",
    );
  }
  const filter: { namespace: string; tags?: readonly string[]; olderThan?: number } = {
    namespace,
  };
  if (list !== undefined) filter.tags = list;
  if (before !== undefined) filter.olderThan = before;
  return filter;
}

/** Runs a purge on `store`; rejects when the store cannot purge. */
export async function purgeStore(store: Store, filter: PurgeFilter): Promise<number> {
  if (store.purge === undefined) {
    throw new Error(
      `infercache: the ${store.kind} store cannot purge by tag or age; use clear(), or a store with purge() (MemoryStore, SqliteStore, RedisStore, TieredStore)`,
    );
  }
  return store.purge(filter);
}

/** The `tags` option of `cache(fn)`: a list for every entry, or a function of the call. */
export type TagsOption<A extends unknown[]> =
  | readonly string[]
  | ((...args: A) => readonly string[] | undefined);

/** Checks the option once; returns what gives a call's tags. */
export function resolveTagsOption(
  option: unknown,
):
  | readonly string[]
  | ((thisArg: unknown, args: unknown[]) => readonly string[] | undefined)
  | undefined {
  if (option === undefined) return undefined;
  if (typeof option === "function") {
    return (thisArg, args) =>
      checkTags((option as (...a: unknown[]) => unknown).apply(thisArg, args));
  }
  if (!Array.isArray(option)) {
    throw new TypeError(
      `Expected \`tags\` to be an array of tags or a function of the arguments returning one, got \`${String(option)}\` (${typeof option})`,
    );
  }
  return checkTags(option);
}
