/**
 * The tags an LLM answer is stored with: the request's own (`x-infercache-tags: a,b`, checked:
 * a bad one is a 400 naming it) and three automatic ones, `model:<model>`, `upstream:<origin>`
 * and `tenant:<tenant id>` (the id the admin API and the dashboard feed show), so an operator
 * can purge by any of them. The header is ours (`x-infercache-*`): never sent upstream, never
 * part of the key.
 *
 * A model name or origin that is not a valid tag (spaces, commas, over 200 characters) is
 * written percent-encoded, or as a hash when still too long; `autoTag` is the one spelling, used
 * by the pipeline and the admin API alike.
 */

import { createHash } from "node:crypto";
import { checkTag, MAX_TAG_LENGTH, MAX_TAGS } from "../store/tags.js";
import type { Call } from "./call.js";
import { header, type RawHeaders, RequestError } from "./protocol.js";

export const TAGS_HEADER = "x-infercache-tags";

/** The tags a request asks for, or `undefined`. @throws RequestError (400) naming the bad one */
export function requestTags(headers: RawHeaders): readonly string[] | undefined {
  const value = header(headers, TAGS_HEADER);
  if (value === undefined) return undefined;
  const tags: string[] = [];
  for (const part of value.split(",")) {
    const tag = part.trim();
    if (tag === "") continue;
    try {
      checkTag(tag, TAGS_HEADER);
    } catch (error) {
      throw new RequestError(400, (error as Error).message);
    }
    if (!tags.includes(tag)) tags.push(tag);
  }
  // Three of the entry's tags are the gateway's own.
  if (tags.length > MAX_TAGS - 3) {
    throw new RequestError(
      400,
      `Expected \`${TAGS_HEADER}\` to hold at most ${MAX_TAGS - 3} tags, got ${tags.length}`,
    );
  }
  return tags.length === 0 ? undefined : tags;
}

const FORBIDDEN = /[\s,\p{Cc}\p{Cf}\p{Zl}\p{Zp}%]/gu;

/** The automatic tag `<kind>:<value>`, always a valid tag. */
export function autoTag(kind: "model" | "upstream" | "tenant", value: string): string {
  const tag = `${kind}:${value.replace(FORBIDDEN, (c) => encodeURIComponent(c))}`;
  if (tag.length <= MAX_TAG_LENGTH) return tag;
  return `${kind}:sha256:${createHash("sha256").update(value).digest("hex").slice(0, 32)}`;
}

/** Every tag of the entry a call stores. */
export function entryTags(call: Call): readonly string[] {
  const tags = call.tags === undefined ? [] : [...call.tags];
  const model = call.parsed.model;
  if (model !== undefined && model !== "") tags.push(autoTag("model", model));
  tags.push(autoTag("upstream", call.request.url.origin));
  if (call.tenant !== undefined) tags.push(autoTag("tenant", call.tenant));
  return tags;
}
