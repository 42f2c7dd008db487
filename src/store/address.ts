/**
 * One unambiguous string for a scope and a key, for maps that hold entries of several scopes
 * (flight tables, the Keyv adapter). Every part is length-prefixed, so no namespace, session or
 * key — whatever characters it holds — can make two addresses equal.
 */

import type { Scope } from "./store.js";

/** The address of `key` in `scope` (or of the scope alone, as a prefix of its keys' addresses). */
export function scopeId(scope: Scope, key = ""): string {
  const session = scope.session === undefined ? "-" : `s${scope.session.length}:${scope.session}`;
  return `${scope.namespace.length}:${scope.namespace}|${session}|${key}`;
}
