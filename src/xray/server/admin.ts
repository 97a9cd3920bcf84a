/**
 * The admin API of `xray-backend`, under /admin/ and always behind the secret and headers: the
 * live sessions, the counters, and revoking or restoring a credential (what conformance check
 * X22's revoke hook calls).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { maskCredential } from '../redact.js';
import type { BackendState } from './state.js';
import type { CredentialKind } from './users.js';
import type { RequestGuard } from './guard.js';
import { readBody, send, sendTooLarge, type RequestLog } from './http-io.js';
import { logCredential } from './events.js';
import type { RequestStats } from './stats.js';

/** Each endpoint and the one method it takes. */
const ROUTES: Record<string, string> = { '/admin/sessions': 'GET', '/admin/stats': 'GET', '/admin/revoke': 'POST', '/admin/restore': 'POST' };

export class AdminRoute {
  constructor(
    private readonly state: BackendState,
    private readonly guard: RequestGuard,
    private readonly stats: RequestStats,
    private readonly kind: CredentialKind,
    private readonly bodyLimit: number,
  ) {}

  static owns(path: string): boolean {
    return path === '/admin' || path.startsWith('/admin/');
  }

  async handle(req: IncomingMessage, res: ServerResponse, path: string, entry: RequestLog): Promise<void> {
    entry.type = 'admin';
    if (!this.guard.admits(req)) {
      entry.note = 'missing or wrong secret';
      return send(res, 401, { error: 'missing or wrong secret or header' });
    }
    const method = ROUTES[path];
    if (method === undefined) return send(res, 404, { error: `no such admin endpoint (${Object.keys(ROUTES).join(', ')})` });
    if (req.method !== method) return send(res, 405, { error: `${path} takes ${method}` }, { allow: method });
    if (path === '/admin/sessions') return send(res, 200, { sessions: this.sessions() });
    if (path === '/admin/stats') return send(res, 200, this.stats.snapshot(this.state));
    return this.revokeOrRestore(req, res, path === '/admin/revoke', entry);
  }

  /** POST {"credential"}: a revocation holds until restored, even for a credential not (yet) in the users file. */
  private async revokeOrRestore(req: IncomingMessage, res: ServerResponse, revoking: boolean, entry: RequestLog): Promise<void> {
    const body = await readBody(req, this.bodyLimit);
    if (body === 'aborted') return;
    if (body === 'too-large') return sendTooLarge(res, this.bodyLimit);
    let credential: unknown;
    try {
      credential = (JSON.parse(body.toString('utf8')) as { credential?: unknown } | null)?.credential;
    } catch {
      return send(res, 400, { error: 'body is not JSON: expected {"credential": "..."}' });
    }
    if (typeof credential !== 'string') return send(res, 400, { error: 'expected {"credential": "..."}' });
    entry.credential = logCredential(credential);
    const result = revoking ? this.state.revoke(credential) : this.state.restore(credential);
    if (!result) return send(res, 400, { error: this.kind === 'uuid' ? '"credential" must be a UUID or a text id of 1 to 30 bytes' : '"credential" must be a non-empty string' });
    entry.note = revoking ? 'revoked' : 'restored';
    return send(res, 200, { credential: maskCredential(result.credential), known: result.known, revoked: revoking, changed: result.changed });
  }

  /** The live sessions, credentials masked. */
  private sessions(): unknown[] {
    return this.state.sessions().map((s) => ({
      connection: s.connectionId ?? null,
      email: this.state.users.byCredential.get(s.credential)?.email ?? null,
      credential: maskCredential(s.credential),
      ip: s.ip,
      firstSeen: new Date(s.firstSeen).toISOString(),
      lastSeen: new Date(s.lastSeen).toISOString(),
      via: s.via,
    }));
  }
}
