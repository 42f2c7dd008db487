/**
 * Tags on entries and the purge filter: what a valid tag is, the checks every store's `purge`
 * runs on its filter, and the one predicate that says whether an entry matches (for stores that
 * scan, and for the index hits that a store verifies against the entry as it is now).
 *
 * A tag is 1 to 200 characters with no whitespace, comma or control character, at most 32 an
 * entry: short labels (`model:gpt-4o-mini`, `upstream:https://api.openai.com`, `docs-v3`), that
 * travel comma-separated in one header (`x-infercache-tags`) and index cheaply. Not for prompt
 * text: tags are stored in the clear next to the entry, and listed by the admin API.
 */

import type { Entry, PurgeFilter } from "./store.js";

/** The longest tag, in characters. */
export const MAX_TAG_LENGTH = 200;
/** The most tags one entry may carry (the gateway's three automatic ones included). */
export const MAX_TAGS = 32;

/** Whitespace, commas and control characters (C0, DEL, C1, and Unicode's line separators). */
const FORBIDDEN = /[\s,\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

function describe(value: unknown): string {
  const text = typeof value === "string" ? JSON.stringify(value) : String(value);
  return `\`${text.length > 40 ? `${text.slice(0, 40)}…` : text}\` (${typeof value})`;
}

/** Checks one tag; `option` names it in the error (`tags[2]`). */
export function checkTag(tag: unknown, option: string): string {
  if (typeof tag !== "string" || tag.length === 0 || tag.length > MAX_TAG_LENGTH) {
    throw new TypeError(
      `Expected \`${option}\` to be a string of 1 to ${MAX_TAG_LENGTH} characters, got ${describe(tag)}`,
    );
  }
  if (FORBIDDEN.test(tag)) {
    throw new TypeError(
      `Expected \`${option}\` to be a tag without whitespace, commas or control characters (such as "docs-v3" or "model:gpt-4o-mini"), got ${describe(tag)}`,
    );
  }
  return tag;
}

/**
 * Checks a list of tags and returns it without repeats (order kept), or `undefined` for none.
 * @throws TypeError naming `option` and the bad item
 */
export function checkTags(tags: unknown, option = "tags"): readonly string[] | undefined {
  if (tags === undefined) return undefined;
  if (!Array.isArray(tags)) {
    throw new TypeError(`Expected \`${option}\` to be an array of strings, got ${describe(tags)}`);
  }
  for (const [i, tag] of tags.entries()) checkTag(tag, `${option}[${i}]`);
  const unique = [...new Set(tags as string[])];
  if (unique.length > MAX_TAGS) {
    throw new TypeError(
      `Expected \`${option}\` to hold at most ${MAX_TAGS} tags, got ${unique.length}`,
    );
  }
  return unique.length === 0 ? undefined : unique;
}

/** Two tag lists as one (automatic tags after the caller's), without repeats, checked. */
export function mergeTags(
  first: readonly string[] | undefined,
  second: readonly string[] | undefined,
): readonly string[] | undefined {
  if (second === undefined || second.length === 0) return first;
  if (first === undefined || first.length === 0) return second;
  return checkTags([...first, ...second]);
}

/**
 * Checks a purge filter and returns it normalised (tags without repeats). An empty filter is
 * refused: purging everything is `clear()`, and a filter that lost its fields on the way (an
 * empty tag list computed by the caller) must not empty the cache.
 */
export function checkPurgeFilter(filter: PurgeFilter): PurgeFilter {
  if (filter === null || typeof filter !== "object") {
    throw new TypeError(
      `Expected the purge filter to be an object with \`tags\` and/or \`olderThan\`, got ${describe(filter)}`,
    );
  }
  const { namespace, tags, allTags, olderThan } = filter;
  if (namespace !== undefined && typeof namespace !== "string") {
    throw new TypeError(`Expected \`namespace\` to be a string, got ${describe(namespace)}`);
  }
  if (olderThan !== undefined && !(typeof olderThan === "number" && Number.isFinite(olderThan))) {
    throw new TypeError(
      `Expected \`olderThan\` to be a time in ms since the epoch, got ${describe(olderThan)}`,
    );
  }
  if (Array.isArray(tags) && tags.length === 0) {
    throw new TypeError(
      "Expected `tags` to hold at least one tag, got `[]`; leave `tags` out to purge by `olderThan` alone",
    );
  }
  if (Array.isArray(allTags) && allTags.length === 0) {
    throw new TypeError(
      "Expected `allTags` to hold at least one tag, got `[]`; leave `allTags` out instead",
    );
  }
  const checked = checkTags(tags);
  const all = checkTags(allTags, "allTags");
  if (checked === undefined && all === undefined && olderThan === undefined) {
    throw new TypeError(
      namespace === undefined
        ? "Expected the purge filter to have `tags` or `olderThan`, got neither; to remove every entry use clear()"
        : "Expected the purge filter to have `tags` or `olderThan`, got only `namespace`; to remove a whole namespace use clear({ namespace })",
    );
  }
  const out: {
    namespace?: string;
    tags?: readonly string[];
    allTags?: readonly string[];
    olderThan?: number;
  } = {};
  if (namespace !== undefined) out.namespace = namespace;
  if (checked !== undefined) out.tags = checked;
  if (all !== undefined) out.allTags = all;
  if (olderThan !== undefined) out.olderThan = olderThan;
  return out;
}

/** Whether `entry` (in `namespace`) matches a checked filter. */
export function matchesPurge(entry: Entry, namespace: string, filter: PurgeFilter): boolean {
  if (filter.namespace !== undefined && filter.namespace !== namespace) return false;
  if (filter.olderThan !== undefined && !(entry.createdAt < filter.olderThan)) return false;
  if (filter.allTags !== undefined) {
    const tags = entry.tags;
    if (tags === undefined) return false;
    for (const tag of filter.allTags) if (!tags.includes(tag)) return false;
  }
  if (filter.tags !== undefined) {
    const tags = entry.tags;
    if (tags === undefined) return false;
    let any = false;
    for (const tag of filter.tags) {
      if (tags.includes(tag)) {
        any = true;
        break;
      }
    }
    if (!any) return false;
  }
  return true;
}
