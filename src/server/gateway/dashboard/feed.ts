/**
 * The dashboard's event feed: the recent requests, and what each viewer is pushed.
 *
 * Who sees what: anyone who can reach the gateway follows `/events` and gets aggregates — the
 * totals, the per-second series (hit rate, requests by route, time and tokens saved, upstream
 * latency) and the breakdown by route (route names are the gateway's). Admins follow
 * `/admin/events` (bearer token) and also get the per-request rows (route, model, badge, store
 * key) and the breakdown by model, because a request's key and model belong to its tenant.
 *
 * Messages: `snapshot` first (the whole 10-minute series, the recent rows for admins, and
 * `adminApi`: whether the gateway has an admin token, so the page offers a sign-in only then),
 * then `stats` every second with the last few points of the series (a viewer merges them by
 * time, so a late tick loses nothing), and `request` for each request (admins). The feed keeps
 * the last 50 requests with model names cut to 64 characters, serves at most `maxViewers`
 * streams at once (and 4 more for admins), and drops a viewer that stops reading (`SseChannel`).
 */

import { type Clock, systemClock } from "../../../base/clock.js";
import type { Answer } from "../../../llm/answer.js";
import type { LlmResult } from "../../../llm/call.js";
import { HttpError } from "../../http/errors.js";
import { SseChannel } from "../../http/sse.js";
import { cutLabel } from "../breakdown.js";
import type { Metrics } from "../metrics.js";

export interface DashboardEvent {
  at: number;
  route: string;
  model: string | undefined;
  outcome: string;
  status: number;
  durationMs: number;
  savedMs: number;
  savedTokens: number;
  /** The store key (chat and text completions), for the admin's "forget" action. */
  key: string | undefined;
  /** The tenant's id (a keyed hash, never a credential), for a purge by `tenant`. */
  tenant: string | undefined;
}

export interface DashboardFeedOptions {
  /** Recent requests kept for admins who open the page. @default 50 */
  keep?: number;
  /** Anonymous streams at once. @default 16 */
  maxViewers?: number;
  /** Whether the gateway has an admin token (the page offers a sign-in only then). @default false */
  adminApi?: boolean;
  /** @default Date.now */
  clock?: Clock | undefined;
}

/** Streams for admins, on top of the anonymous viewers. */
const ADMIN_VIEWERS = 4;
/** Points of the series in each `stats` message: a tick that comes late still covers its gap. */
const TAIL_SECONDS = 5;

/** Keeps the recent requests and pushes stats (to everyone) and requests (to admins). */
export class DashboardFeed {
  readonly recent: DashboardEvent[] = [];
  readonly #admins = new Set<SseChannel>();
  readonly #viewers = new Set<SseChannel>();
  readonly #metrics: Metrics;
  readonly #keep: number;
  readonly #maxViewers: number;
  readonly #adminApi: boolean;
  readonly #clock: Clock;
  #timer: NodeJS.Timeout | undefined;

  constructor(metrics: Metrics, options: DashboardFeedOptions = {}) {
    this.#metrics = metrics;
    this.#keep = options.keep ?? 50;
    this.#maxViewers = options.maxViewers ?? 16;
    this.#adminApi = options.adminApi ?? false;
    this.#clock = options.clock ?? systemClock;
  }

  get viewers(): number {
    return this.#viewers.size;
  }

  record(result: LlmResult): void {
    const event: DashboardEvent = {
      at: this.#clock.now(),
      route: result.route,
      model: result.model === undefined ? undefined : cutLabel(result.model),
      outcome: result.outcome,
      status: result.status,
      durationMs: result.durationMs,
      savedMs: result.savedMs,
      savedTokens: result.savedTokens,
      key: result.key,
      tenant: result.tenant,
    };
    this.recent.push(event);
    if (this.recent.length > this.#keep) this.recent.shift();
    if (this.#admins.size === 0) return;
    const data = JSON.stringify(event);
    for (const channel of this.#admins) channel.send(data, "request");
  }

  /** Ends every open stream (a shutdown does not wait for dashboards to disconnect). */
  closeAll(): void {
    for (const channel of [...this.#viewers]) channel.close();
  }

  /** The first message of a stream: everything a page needs to draw itself. */
  snapshot(admin: boolean): Record<string, unknown> {
    return {
      now: this.#clock.now(),
      adminApi: this.#adminApi,
      admin,
      stats: this.#metrics.snapshot(),
      series: this.#metrics.series(),
      ...(admin && { models: this.#metrics.models() }),
      recent: admin ? this.recent : [],
    };
  }

  /** A viewer's event stream: a snapshot first, then stats every second (and requests for admins). */
  stream(admin: boolean): Answer {
    // Admins have places of their own: anonymous viewers cannot lock them out.
    const anonymous = this.#viewers.size - this.#admins.size;
    if (admin ? this.#admins.size >= ADMIN_VIEWERS : anonymous >= this.#maxViewers) {
      throw new HttpError(
        503,
        `the dashboard has ${admin ? ADMIN_VIEWERS : this.#maxViewers} ${admin ? "admin " : ""}viewers already; close one and retry`,
      );
    }
    const channel = new SseChannel();
    this.#viewers.add(channel);
    if (admin) this.#admins.add(channel);
    channel.onClose(() => {
      this.#viewers.delete(channel);
      this.#admins.delete(channel);
      if (this.#viewers.size === 0) {
        clearInterval(this.#timer);
        this.#timer = undefined;
      }
    });
    channel.send(JSON.stringify(this.snapshot(admin)), "snapshot");
    this.#timer ??= setInterval(() => this.#tick(), 1000);
    this.#timer.unref();
    return {
      status: 200,
      headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
      body: channel.body(),
    };
  }

  #tick(): void {
    const common = {
      now: this.#clock.now(),
      stats: this.#metrics.snapshot(),
      series: this.#metrics.series(TAIL_SECONDS),
    };
    const data = JSON.stringify(common);
    const forAdmins =
      this.#admins.size === 0
        ? data
        : JSON.stringify({ ...common, models: this.#metrics.models() });
    for (const viewer of this.#viewers)
      viewer.send(this.#admins.has(viewer) ? forAdmins : data, "stats");
  }
}
