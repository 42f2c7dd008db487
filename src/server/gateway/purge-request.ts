/**
 * What a purge by the gateway's fields means, for the admin API (`POST /admin/purge`) and the
 * CLI (`infercache purge --tag --model --upstream --tenant --older-than`): the fields, combined
 * with AND, become one store `PurgeFilter`. `model`, `upstream` and `tenant` are the automatic
 * tags every stored answer carries (`llm/entry-tags.ts`), spelled the same way here.
 *
 * - `tag`: a tag, or a list of tags (entries carrying any of them).
 * - `upstream`: an origin or any URL on it (`https://api.openai.com/v1`: its origin is used).
 * - `olderThan`: seconds (a number, or a string of digits) or a duration (`"7d"`, `"1h30m"`).
 * - `namespace`: the gateway's own namespace when absent; `"*"` for every namespace.
 */

import { parseDuration } from "../../base/duration.js";
import { autoTag } from "../../llm/entry-tags.js";
import type { PurgeFilter } from "../../store/store.js";
import { checkPurgeFilter, checkTag } from "../../store/tags.js";

export interface PurgeFields {
  namespace?: unknown;
  tag?: unknown;
  model?: unknown;
  upstream?: unknown;
  tenant?: unknown;
  olderThan?: unknown;
}

const FIELDS = ["tag", "model", "upstream", "tenant", "olderThan"] as const;

/** Whether any filtering field is given (without one, a purge clears the namespace). */
export function hasPurgeFields(fields: PurgeFields): boolean {
  return FIELDS.some((name) => fields[name] !== undefined);
}

/** The store filter for `fields`. @throws TypeError naming the bad field */
export function purgeFilterOf(
  fields: PurgeFields,
  now: number,
  defaultNamespace: string,
): PurgeFilter {
  const { namespace, tag, model, upstream, tenant, olderThan } = fields;
  if (namespace !== undefined && typeof namespace !== "string") {
    throw new TypeError(`Expected \`namespace\` to be a string, got ${typeof namespace}`);
  }
  const filter: { namespace?: string; tags?: string[]; allTags?: string[]; olderThan?: number } =
    {};
  if (namespace !== "*") filter.namespace = namespace ?? defaultNamespace;
  if (tag !== undefined) {
    const list = Array.isArray(tag) ? tag : [tag];
    filter.tags = list.map((item, i) => checkTag(item, Array.isArray(tag) ? `tag[${i}]` : "tag"));
  }
  const all: string[] = [];
  if (model !== undefined) all.push(autoTag("model", text(model, "model")));
  if (upstream !== undefined) all.push(autoTag("upstream", originOf(text(upstream, "upstream"))));
  if (tenant !== undefined) all.push(autoTag("tenant", text(tenant, "tenant")));
  if (all.length > 0) filter.allTags = all;
  if (olderThan !== undefined) filter.olderThan = now - ageMs(olderThan);
  return checkPurgeFilter(filter);
}

function text(value: unknown, name: string): string {
  if (typeof value === "string" && value !== "") return value;
  throw new TypeError(
    `Expected \`${name}\` to be a non-empty string, got \`${String(value)}\` (${typeof value})`,
  );
}

function originOf(value: string): string {
  try {
    return new URL(value).origin;
  } catch {
    throw new TypeError(
      `Expected \`upstream\` to be an origin such as "https://api.openai.com", got \`${value}\``,
    );
  }
}

function ageMs(value: unknown): number {
  if (typeof value === "number" && Number.isFinite(value) && value >= 0) return value * 1000;
  if (typeof value === "string" && /^\d+(\.\d+)?$/.test(value.trim())) {
    return Number(value.trim()) * 1000;
  }
  if (typeof value === "string") return parseDuration(value, "olderThan");
  throw new TypeError(
    `Expected \`olderThan\` to be seconds or a duration such as "7d" or "1h30m", got \`${String(value)}\` (${typeof value})`,
  );
}
