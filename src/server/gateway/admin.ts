/**
 * The admin API, behind a bearer token (off without one): stats, purging a namespace or the
 * entries a filter names (tag, model, upstream, tenant, age; `purge-request.ts`), forgetting one
 * answer by the key its response carried, and the per-request dashboard feed.
 */

import { createHash, timingSafeEqual } from "node:crypto";
import type { Answer } from "../../llm/answer.js";
import { header } from "../../llm/protocol.js";
import type { Store } from "../../store/store.js";
import { HttpError, json } from "../http/errors.js";
import type { HttpRequest, Router } from "../http/node-http.js";
import type { DashboardFeed } from "./dashboard/feed.js";
import type { Metrics } from "./metrics.js";
import { hasPurgeFields, type PurgeFields, purgeFilterOf } from "./purge-request.js";

export interface AdminOptions {
  token: string | undefined;
  store: Store;
  namespace: string;
  metrics: Metrics;
  feed: DashboardFeed;
  /** The gateway's clock, for `olderThan`. @default Date.now */
  now?: () => number;
}

/**
 * Whether a request carries the admin token as `Authorization: Bearer <token>`. Both sides are
 * hashed first, so the comparison takes the same time whatever the lengths (it leaks neither the
 * token nor its length).
 */
export function isAdmin(request: HttpRequest, token: string | undefined): boolean {
  if (token === undefined || token === "") return false;
  const match = /^Bearer\s+(.+)$/i.exec(header(request.headers, "authorization") ?? "");
  if (match === null) return false;
  const digest = (text: string) => createHash("sha256").update(text).digest();
  return timingSafeEqual(digest(match[1] as string), digest(token));
}

export function adminRoutes(router: Router, options: AdminOptions): void {
  const guard =
    (handler: (request: HttpRequest) => Answer | Promise<Answer>) =>
    (request: HttpRequest): Answer | Promise<Answer> => {
      if (options.token === undefined) {
        throw new HttpError(404, "the admin API is off: start the gateway with an admin token");
      }
      if (!isAdmin(request, options.token)) {
        throw new HttpError(401, "the admin API needs `Authorization: Bearer <admin token>`");
      }
      return handler(request);
    };
  router.on(
    "GET",
    "/admin/stats",
    guard(() => json(options.metrics.snapshot())),
  );
  router.on(
    "GET",
    "/admin/events",
    guard(() => options.feed.stream(true)),
  );
  router.on(
    "POST",
    "/admin/purge",
    guard(async (request) => {
      const text = (await request.body()).toString("utf8");
      let wanted: PurgeFields;
      try {
        wanted = text === "" ? {} : (JSON.parse(text) as PurgeFields);
      } catch {
        throw new HttpError(
          400,
          'the body must be JSON like { "namespace": "gateway" } (or empty)',
        );
      }
      if (typeof wanted !== "object" || wanted === null) {
        throw new HttpError(400, 'the body must be a JSON object like { "namespace": "gateway" }');
      }
      if (wanted.namespace !== undefined && typeof wanted.namespace !== "string") {
        throw new HttpError(400, "`namespace` must be a string");
      }
      if (hasPurgeFields(wanted)) {
        // Fields combine with AND: { "model": "m", "tenant": "t", "olderThan": "7d" }.
        let filter: ReturnType<typeof purgeFilterOf>;
        try {
          filter = purgeFilterOf(wanted, (options.now ?? Date.now)(), options.namespace);
        } catch (error) {
          throw new HttpError(400, (error as Error).message);
        }
        if (options.store.purge === undefined) {
          throw new HttpError(
            501,
            `the ${options.store.kind} store cannot purge by tag or age; purge a namespace instead`,
          );
        }
        return json({ removed: await options.store.purge(filter) });
      }
      // "*": every namespace, as a filter's `namespace` reads it.
      const removed = await options.store.clear(
        wanted.namespace === "*" ? undefined : { namespace: wanted.namespace ?? options.namespace },
      );
      return json({ removed });
    }),
  );
  router.under(
    "DELETE",
    "/admin/entries/",
    guard(async (request) => {
      let key: string;
      try {
        key = decodeURIComponent(request.path.slice("/admin/entries/".length));
      } catch {
        throw new HttpError(400, "the entry's key is not valid percent-encoding");
      }
      if (key === "") {
        throw new HttpError(
          400,
          "name the entry: DELETE /admin/entries/<x-infercache-key of a response>",
        );
      }
      const query = new URLSearchParams(request.search);
      const session = query.get("session");
      const deleted = await options.store.delete(key, {
        namespace: query.get("namespace") ?? options.namespace,
        ...(session !== null && { session }),
      });
      return json({ deleted });
    }),
  );
  router.under(
    "*",
    "/admin/",
    guard((request) => {
      throw new HttpError(404, `no admin route for ${request.method} ${request.path}`);
    }),
  );
}
