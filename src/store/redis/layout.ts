/**
 * Where RedisStore keeps things: the key and channel names, and the reverse (an entry key back to
 * its scope and key) for the clears that scan instead of reading the index. Pure string work, no
 * I/O.
 *
 * Every key of a namespace carries the same hash tag, `{<length>:<namespace>}`, so a namespace
 * lives in one cluster slot and its commands can share a transaction. Length prefixes (on the
 * namespace and the session) keep keys unambiguous whatever characters the names hold.
 *   <prefix>{ns}:e:<session>:<key>   the entry (an envelope, PX for TTL)
 *   <prefix>{ns}:i:<session>         sorted set of the scope's keys, scored by last use (µs)
 *   <prefix>{ns}:s                   set of the namespace's sessions
 *   <prefix>{ns}:l:<session>:<key>   single-flight lock
 *   <prefix>{ns}:c                   sorted set of the namespace's entries (`<session>:<key>`,
 *                                    their member), scored by creation time (ms): age purges
 *   <prefix>{ns}:t:<tag>             sorted set of the members written with that tag, scored by
 *                                    the creation time they were written with: tag purges
 *   <prefix>namespaces               set of namespaces (for clears across namespaces)
 *   <prefix>done, <prefix>invalidate pub/sub channels
 * `<session>` is `-` for the shared entries and `s<length>:<session>` for a session's.
 */

import type { ClearScope, Scope } from "../store.js";

/** The keys of one scope, built once per scope object (a cache reuses its shared scope). */
interface ScopeKeys {
  namespace: string;
  session: string | undefined;
  /** Entry keys are this plus the key. */
  entry: string;
  /** Lock keys are this plus the key. */
  lock: string;
  /** Purge-index members are this plus the key. */
  member: string;
  index: string;
}

export class RedisLayout {
  readonly #scopes = new WeakMap<Scope, ScopeKeys>();

  constructor(readonly prefix: string) {}

  tag(namespace: string): string {
    return `${this.prefix}{${namespace.length}:${namespace}}`;
  }

  entryKey(scope: Scope, key: string): string {
    return this.#keys(scope).entry + key;
  }

  lockKey(scope: Scope, key: string): string {
    return this.#keys(scope).lock + key;
  }

  indexKey(scope: Scope): string {
    return this.#keys(scope).index;
  }

  #keys(scope: Scope): ScopeKeys {
    let keys = this.#scopes.get(scope);
    // Checked, not trusted: a plain object passed again may have been changed meanwhile.
    if (
      keys === undefined ||
      keys.namespace !== scope.namespace ||
      keys.session !== scope.session
    ) {
      const { namespace, session } = scope;
      const tag = this.tag(namespace);
      const part = sessionPart(session);
      keys = {
        namespace,
        session,
        entry: `${tag}:e:${part}:`,
        lock: `${tag}:l:${part}:`,
        member: `${part}:`,
        index: `${tag}:i:${part}`,
      };
      this.#scopes.set(scope, keys);
    }
    return keys;
  }

  /** The entry's member in its namespace's purge indexes (`createdKey`, `tagKey`). */
  member(scope: Scope, key: string): string {
    return this.#keys(scope).member + key;
  }

  /** The scope and key of a purge-index member of `namespace`, or `undefined`. */
  parseMember(namespace: string, member: string): { scope: Scope; key: string } | undefined {
    return this.parseEntryKey(`${this.tag(namespace)}:e:${member}`);
  }

  createdKey(namespace: string): string {
    return `${this.tag(namespace)}:c`;
  }

  tagKey(namespace: string, tag: string): string {
    return `${this.tag(namespace)}:t:${tag}`;
  }

  sessionsKey(namespace: string): string {
    return `${this.tag(namespace)}:s`;
  }

  get namespacesKey(): string {
    return `${this.prefix}namespaces`;
  }

  channel(name: "done" | "invalidate"): string {
    return `${this.prefix}${name}`;
  }

  /**
   * A SCAN MATCH pattern that every entry key of `scope` matches. It can match more (a namespace
   * or session whose characters look like the layout's), so callers check each key with
   * `parseEntryKey` and `inScope`.
   */
  entryPattern(scope: ClearScope | undefined): string {
    const tag =
      scope?.namespace === undefined ? `${glob(this.prefix)}{*}` : glob(this.tag(scope.namespace));
    if (scope?.session === undefined) return `${tag}:e:*`;
    if (scope.session === null) return `${tag}:e:-:*`;
    return `${tag}:e:${glob(sessionPart(scope.session))}:*`;
  }

  /** The scope and key of an entry key of this layout, or `undefined` for any other key. */
  parseEntryKey(fullKey: string): { scope: Scope; key: string } | undefined {
    if (!fullKey.startsWith(`${this.prefix}{`)) return undefined;
    let at = this.prefix.length + 1;
    const namespace = readCounted(fullKey, at, "}");
    if (namespace === undefined) return undefined;
    at = namespace.end;
    if (!fullKey.startsWith(":e:", at)) return undefined;
    at += 3;
    if (fullKey.startsWith("-:", at)) {
      return { scope: { namespace: namespace.text }, key: fullKey.slice(at + 2) };
    }
    if (fullKey[at] !== "s") return undefined;
    const session = readCounted(fullKey, at + 1, ":");
    if (session === undefined) return undefined;
    return {
      scope: { namespace: namespace.text, session: session.text },
      key: fullKey.slice(session.end),
    };
  }
}

/** Whether a concrete scope is covered by a clear scope. */
export function inScope(scope: Scope, target: ClearScope | undefined): boolean {
  if (target?.namespace !== undefined && scope.namespace !== target.namespace) return false;
  if (target?.session === undefined) return true;
  if (target.session === null) return scope.session === undefined;
  return scope.session === target.session;
}

function sessionPart(session: string | undefined): string {
  return session === undefined ? "-" : `s${session.length}:${session}`;
}

/** Reads `<length>:<text><terminator>` at `at`; `end` is just past the terminator. */
function readCounted(
  text: string,
  at: number,
  terminator: string,
): { text: string; end: number } | undefined {
  const colon = text.indexOf(":", at);
  if (colon <= at) return undefined;
  const digits = text.slice(at, colon);
  if (!/^\d+$/.test(digits)) return undefined;
  const start = colon + 1;
  const end = start + Number(digits);
  if (end > text.length || text[end] !== terminator) return undefined;
  return { text: text.slice(start, end), end: end + 1 };
}

/** Escapes Redis glob characters, so a name matches only itself. */
function glob(text: string): string {
  return text.replace(/[*?[\]\\^]/g, "\\$&");
}
