/**
 * Every request to `xray-backend` passes through here: it is counted, sent to the admin API or the
 * event route, kept from crashing the process (an unexpected error is a 500), and logged in one
 * line with the credential masked and no secret, header value or query string. Requests in flight
 * are tracked so that closing can wait for them.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { escapeForDisplay } from '../../shared/text.js';
import { AdminRoute } from './admin.js';
import type { EventRoute } from './events.js';
import { send, type RequestLog } from './http-io.js';
import { RequestStats } from './stats.js';

export class RequestRouter {
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];

  /** `log`: undefined when requests are not logged. */
  constructor(
    private readonly events: EventRoute,
    private readonly admin: AdminRoute,
    private readonly stats: RequestStats,
    private readonly log: ((line: string) => void) | undefined,
  ) {}

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    this.inFlight++;
    this.stats.requests++;
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const entry: RequestLog = { type: '-' };
    try {
      if (AdminRoute.owns(path)) await this.admin.handle(req, res, path, entry);
      else await this.events.handle(req, res, entry);
    } catch (error) {
      entry.note = `internal error: ${(error as Error)?.message ?? String(error)}`;
      send(res, 500, { error: 'internal error' });
    } finally {
      this.finished();
      const status = res.headersSent ? String(res.statusCode) : 'aborted';
      RequestStats.bump(this.stats.byStatus, status);
      RequestStats.bump(this.stats.byEvent, entry.type === '-' ? 'invalid' : entry.type);
      const ms = (performance.now() - started).toFixed(1);
      // A path as a log may show it: no control characters, bounded length.
      this.log?.([req.method ?? '-', escapeForDisplay(path, 80), entry.type, status, `${ms}ms`, entry.credential, entry.note].filter((x) => x !== undefined).join(' '));
    }
  }

  /** Resolves once no request is in flight. */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private finished(): void {
    this.inFlight--;
    if (this.inFlight > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
