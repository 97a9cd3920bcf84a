/**
 * The HTTP side of `xray-backend`: an auth backend that follows the ExtAuth / Hysteria 2 contract
 * of the chosen dialect (docs/xray-extauth.md §2, §6), with an admin API under /admin/ and fault injection for
 * testing proxies. Events are POSTed to any path outside /admin/.
 *
 * Robustness: a request body is read up to a limit (larger: 413, and reading stops), anything
 * unreadable is a 4xx with {"error"}, slow and vanished clients are timed out or dropped, and no
 * request can crash the process. One log line per request, with credentials masked and no
 * secret, header value or query string.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { clearStaleSocket } from '../../shared/unix-socket.js';
import { listenOn } from '../../shared/listen.js';
import { escapeForDisplay, HTTP_TOKEN } from '../../shared/text.js';
import { describeFsError, InputError } from '../../shared/errors.js';
import { isUuid } from '../wire/credential.js';
import { BadEventError, parseEventBody, type Dialect, type EventType } from '../wire/dialect.js';
import { maskCredential } from '../redact.js';
import { BackendState, denyStatus, type Decision, type EventFacts } from './state.js';
import { credentialKind, loadXrayUsers, watchXrayUsers, type UsersSnapshot, type UsersWatcher, type XrayUser } from './users.js';

export const DEFAULT_BODY_LIMIT = 1 << 20;
/** 3 heartbeats of 30 s, the interval the ExtAuth discussion's example uses. */
export const DEFAULT_SESSION_IDLE_MS = 90_000;

export interface FaultOptions {
  /** Every event reply waits a uniformly random time in [min, max] ms. */
  latencyMs?: readonly [number, number];
  /** Share of events (0..1) answered 503 without being acted on. */
  errorRate?: number;
  /** Share of events (0..1) answered 200 with a body cut mid-JSON, without being acted on. */
  garbageRate?: number;
  /** Math.random unless a test needs otherwise. */
  random?: () => number;
}

export interface XrayBackendOptions {
  dialect: Dialect;
  /** The users file, loaded now and reloaded when it changes; or `users`, a fixed snapshot. */
  usersFile?: string;
  users?: UsersSnapshot;
  /** TCP: host (default 127.0.0.1) and port (0: any free port). */
  host?: string;
  port?: number;
  /** Or a Unix socket path (a stale socket file is replaced). */
  unixSocket?: string;
  /** Required as `Authorization: Bearer <secret>` on events (not for hysteria2, which cannot send one) and on /admin/. */
  secret?: string;
  /** Headers that must be present with exactly these values, like the wiki dialect's `headers` map. */
  headers?: readonly (readonly [string, string])[];
  faults?: FaultOptions;
  /** A session not heard from for this long, or 3 of its heartbeat intervals if longer, expires. */
  sessionIdleMs?: number;
  /** Request body limit in bytes (default 1 MiB). */
  bodyLimit?: number;
  /** Whole-request deadline for slow clients (default 30 s). */
  requestTimeoutMs?: number;
  /** Users file stat polling (default 1000 ms); change notifications usually come first. */
  usersPollMs?: number;
  now?: () => number;
  /** One line per request, and users file reloads. */
  log?: (line: string) => void;
  /** false: no line per request (start, reloads and notes still go to log). */
  logRequests?: boolean;
}

export interface BackendStats {
  requests: number;
  /** Requests by event type, plus `admin` and `invalid` (no readable event). */
  byEvent: Record<string, number>;
  /** Replies by status code ("aborted" when the client left first). */
  byStatus: Record<string, number>;
  /** Event decisions: `allow`, or the deny reason. */
  decisions: Record<string, number>;
  injected: { delayed: number; error: number; garbage: number };
  users: number;
  sessions: number;
  revoked: number;
}

export interface XrayBackend {
  /** Where proxies POST events; for a Unix socket `http://localhost/`, with `unixSocket` set. */
  url: string;
  unixSocket?: string;
  port?: number;
  dialect: Dialect;
  state: BackendState;
  stats(): BackendStats;
  /** Reads the users file now, as a change would (resolves when done). */
  reloadUsers(): Promise<void>;
  close(): Promise<void>;
}

/** What a request turned out to be, for its log line. */
interface RequestLog {
  type: string;
  credential?: string;
  note?: string;
}

export async function startXrayBackend(options: XrayBackendOptions): Promise<XrayBackend> {
  const { dialect } = options;
  checkOptions(options);
  const log = options.log ?? (() => {});
  const kind = credentialKind(dialect);
  let users = options.users;
  if (options.usersFile !== undefined) {
    const loaded = await loadXrayUsers(options.usersFile, kind);
    users = loaded.snapshot;
    loaded.warnings.forEach(log);
  }
  if (!users) throw new InputError('a users file is required');

  const state = new BackendState(users, { kind, sessionIdleMs: options.sessionIdleMs ?? DEFAULT_SESSION_IDLE_MS, now: options.now });
  const limit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const faults = options.faults ?? {};
  const random = faults.random ?? Math.random;
  const secret = options.secret;
  const headers = (options.headers ?? []).map(([name, value]) => [name.toLowerCase(), value.trim()] as const);
  /** Hysteria 2 sends no secret and no headers (H13): they guard only /admin/ there. */
  const eventsGuarded = dialect.secret !== 'none' || dialect.customHeaders;
  const closing = new AbortController();
  let inFlight = 0;

  const stats = { requests: 0, byEvent: {} as Record<string, number>, byStatus: {} as Record<string, number>, decisions: {} as Record<string, number>, injected: { delayed: 0, error: 0, garbage: 0 } };
  const bump = (table: Record<string, number>, key: string): void => {
    table[key] = (table[key] ?? 0) + 1;
  };

  const guardOk = (req: IncomingMessage): boolean => {
    let ok = true;
    if (secret !== undefined) ok = safeEqual(bearerToken(req.headers.authorization), secret) && ok;
    for (const [name, value] of headers) ok = safeEqual(headerText(req, name)?.trim(), value) && ok;
    return ok;
  };

  const handleEvent = async (req: IncomingMessage, res: ServerResponse, entry: RequestLog): Promise<void> => {
    const reply = async (status: number, body?: unknown, extra: Record<string, string> = {}): Promise<void> => {
      const [min = 0, max = min] = faults.latencyMs ?? [];
      if (max > 0) {
        stats.injected.delayed++;
        try {
          await delay(min + random() * (max - min), undefined, { signal: closing.signal });
        } catch {
          // closing: answer at once
        }
      }
      send(res, status, body, extra);
    };
    if (req.method !== 'POST') return reply(405, { error: 'events are POSTed' }, { allow: 'POST' });
    if (eventsGuarded && !guardOk(req)) {
      entry.note = 'missing or wrong secret';
      return reply(401, { error: 'missing or wrong secret or header' });
    }
    const body = await readBody(req, limit);
    if (body === 'aborted') return;
    if (body === 'too-large') {
      entry.note = `body over ${limit} bytes`;
      return reply(413, { error: `request body over ${limit} bytes` }, { connection: 'close' });
    }
    let event;
    try {
      event = parseEventBody(dialect, body.toString('utf8'));
    } catch (error) {
      if (!(error instanceof BadEventError)) throw error;
      entry.note = error.message;
      return reply(400, { error: error.message });
    }
    entry.type = event.type;
    entry.credential = logCredential(event.facts.credential!);
    const roll = random();
    const errorRate = faults.errorRate ?? 0;
    if (roll < errorRate) {
      stats.injected.error++;
      entry.note = 'injected error';
      return reply(503, { error: 'injected fault (error rate)' });
    }
    if (roll < errorRate + (faults.garbageRate ?? 0)) {
      stats.injected.garbage++;
      entry.note = 'injected garbage';
      return reply(200, dialect.reply === 'hysteria-ok' ? '{"ok":tru' : '{"user":{"email":"');
    }
    const facts: EventFacts = { credential: event.facts.credential!, connectionId: event.facts.connectionId, sourceIp: event.facts.sourceIp };
    const [status, answer] = decide(event.type, facts);
    return reply(status, answer);
  };

  /** The status and body for an event, and the state change it makes. */
  const decide = (type: EventType, facts: EventFacts): [number, unknown] => {
    let decision: Decision;
    switch (type) {
      case 'connect':
        state.connect(facts);
        return [204, undefined];
      case 'disconnect':
        state.disconnect(facts);
        return [204, undefined];
      case 'heartbeat':
        decision = state.heartbeat(facts);
        break;
      default:
        decision = state.authorize(facts);
    }
    bump(stats.decisions, decision.allow ? 'allow' : decision.reason);
    if (dialect.reply === 'hysteria-ok') return [200, decision.allow ? { ok: true, id: displayName(decision.user) } : { ok: false }];
    if (!decision.allow) return [denyStatus(type, decision.reason), { error: decision.reason }];
    return [200, type === 'authorization' ? { user: { email: displayName(decision.user), level: decision.user.level } } : {}];
  };

  const handleAdmin = async (req: IncomingMessage, res: ServerResponse, path: string, entry: RequestLog): Promise<void> => {
    entry.type = 'admin';
    if (!guardOk(req)) {
      entry.note = 'missing or wrong secret';
      return send(res, 401, { error: 'missing or wrong secret or header' });
    }
    const routes: Record<string, string> = { '/admin/sessions': 'GET', '/admin/stats': 'GET', '/admin/revoke': 'POST', '/admin/restore': 'POST' };
    const method = routes[path];
    if (method === undefined) return send(res, 404, { error: `no such admin endpoint (${Object.keys(routes).join(', ')})` });
    if (req.method !== method) return send(res, 405, { error: `${path} takes ${method}` }, { allow: method });
    if (path === '/admin/sessions') return send(res, 200, { sessions: sessionsView() });
    if (path === '/admin/stats') return send(res, 200, snapshotStats());
    const body = await readBody(req, limit);
    if (body === 'aborted') return;
    if (body === 'too-large') return send(res, 413, { error: `request body over ${limit} bytes` }, { connection: 'close' });
    let credential: unknown;
    try {
      credential = (JSON.parse(body.toString('utf8')) as { credential?: unknown } | null)?.credential;
    } catch {
      return send(res, 400, { error: 'body is not JSON: expected {"credential": "..."}' });
    }
    if (typeof credential !== 'string') return send(res, 400, { error: 'expected {"credential": "..."}' });
    entry.credential = logCredential(credential);
    const revoking = path === '/admin/revoke';
    const result = revoking ? state.revoke(credential) : state.restore(credential);
    if (!result) return send(res, 400, { error: kind === 'uuid' ? '"credential" must be a UUID or a text id of 1 to 30 bytes' : '"credential" must be a non-empty string' });
    entry.note = revoking ? 'revoked' : 'restored';
    return send(res, 200, { credential: maskCredential(result.credential), known: result.known, revoked: revoking, changed: result.changed });
  };

  const sessionsView = (): unknown[] =>
    state.sessions().map((s) => ({
      connection: s.connectionId ?? null,
      email: state.users.byCredential.get(s.credential)?.email ?? null,
      credential: maskCredential(s.credential),
      ip: s.ip,
      firstSeen: new Date(s.firstSeen).toISOString(),
      lastSeen: new Date(s.lastSeen).toISOString(),
      via: s.via,
    }));

  const snapshotStats = (): BackendStats => ({
    requests: stats.requests,
    byEvent: { ...stats.byEvent },
    byStatus: { ...stats.byStatus },
    decisions: { ...stats.decisions },
    injected: { ...stats.injected },
    users: state.users.users.length,
    sessions: state.sessions().length,
    revoked: state.revokedCount,
  });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = performance.now();
    inFlight++;
    stats.requests++;
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const entry: RequestLog = { type: '-' };
    try {
      if (path === '/admin' || path.startsWith('/admin/')) await handleAdmin(req, res, path, entry);
      else await handleEvent(req, res, entry);
    } catch (error) {
      entry.note = `internal error: ${(error as Error)?.message ?? String(error)}`;
      send(res, 500, { error: 'internal error' });
    } finally {
      inFlight--;
      const status = res.headersSent ? String(res.statusCode) : 'aborted';
      bump(stats.byStatus, status);
      bump(stats.byEvent, entry.type === '-' ? 'invalid' : entry.type);
      const ms = (performance.now() - started).toFixed(1);
      if (options.logRequests !== false) log([req.method ?? '-', printable(path), entry.type, status, `${ms}ms`, entry.credential, entry.note].filter((x) => x !== undefined).join(' '));
    }
  };

  const requestTimeout = options.requestTimeoutMs ?? 30_000;
  const serverOptions = {
    // Room for X17's 16 KB Authorization header (Node's default limit is 16 KiB for all headers).
    maxHeaderSize: 64 * 1024,
    requestTimeout,
    headersTimeout: Math.min(requestTimeout, 20_000),
    connectionsCheckingInterval: Math.min(30_000, Math.max(50, requestTimeout / 4)),
  };
  const server = createServer(serverOptions, (req, res) => {
    void handle(req, res);
  });
  // `Expect: 100-continue`: a body that will be refused is not invited.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    if (!(Number(req.headers['content-length']) > limit)) res.writeContinue();
    void handle(req, res);
  });
  // Longer than Go's 90 s IdleConnTimeout, so the proxy, not the backend, closes idle connections
  // (a POST on a connection the server just closed is not retried by Go).
  server.keepAliveTimeout = 120_000;

  const where = await listen(server, options);
  const watcher: UsersWatcher | undefined =
    options.usersFile === undefined
      ? undefined
      : watchXrayUsers(options.usersFile, { current: users, kind, onReload: (snapshot) => state.replaceUsers(snapshot), log, pollMs: options.usersPollMs });
  const janitor = setInterval(() => state.sweep(), Math.max(1000, Math.min(options.sessionIdleMs ?? DEFAULT_SESSION_IDLE_MS, 60_000)));
  janitor.unref();

  let closed: Promise<void> | undefined;
  return {
    ...where,
    dialect,
    state,
    stats: snapshotStats,
    reloadUsers: async () => watcher?.check(),
    close() {
      closed ??= (async () => {
        watcher?.close();
        clearInterval(janitor);
        closing.abort();
        const done = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        for (let waited = 0; inFlight > 0 && waited < 1000; waited += 10) await delay(10);
        server.closeAllConnections();
        await done; // Node removes a Unix socket file when its server closes
      })();
      return closed;
    },
  };
}

function checkOptions(options: XrayBackendOptions): void {
  if ((options.unixSocket === undefined) === (options.port === undefined)) throw new InputError('listen on a TCP port or a Unix socket (one of them)');
  if ((options.usersFile === undefined) === (options.users === undefined)) throw new InputError('give a users file or a users snapshot (one of them)');
  const { latencyMs, errorRate = 0, garbageRate = 0 } = options.faults ?? {};
  if (latencyMs && !(latencyMs[0] >= 0 && latencyMs[1] >= latencyMs[0] && Number.isFinite(latencyMs[1]))) throw new InputError('latency: expected 0 <= min <= max');
  for (const [name, rate] of [['error rate', errorRate], ['garbage rate', garbageRate]] as const) {
    if (!(rate >= 0 && rate <= 1)) throw new InputError(`${name}: expected a share from 0 to 1`);
  }
  if (errorRate + garbageRate > 1) throw new InputError('error rate + garbage rate: at most 1 together');
  if (options.sessionIdleMs !== undefined && !(options.sessionIdleMs > 0)) throw new InputError('session idle time: expected more than 0');
  for (const [name] of options.headers ?? []) {
    if (!HTTP_TOKEN.test(name)) throw new InputError(`header name "${name}" is not a valid HTTP header name`);
  }
}

async function listen(server: Server, options: XrayBackendOptions): Promise<Pick<XrayBackend, 'url' | 'unixSocket' | 'port'>> {
  const socketPath = options.unixSocket;
  if (socketPath !== undefined) await clearStaleSocket(socketPath, '--unix-socket');
  const host = options.host ?? '127.0.0.1';
  await listenOn(server, socketPath !== undefined ? { path: socketPath } : { host, port: options.port ?? 0 });
  if (socketPath !== undefined) return { url: 'http://localhost/', unixSocket: socketPath };
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port!;
  return { url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/`, port };
}


/** The body, or why there is none. Over the limit, reading stops (the 413 closes the connection). */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | 'too-large' | 'aborted'> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.resolve('too-large');
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (result: Buffer | 'too-large' | 'aborted'): void => {
      if (done) return;
      done = true;
      req.off('data', onData);
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        req.pause();
        finish('too-large');
      } else {
        chunks.push(chunk);
      }
    };
    req.on('data', onData);
    req.on('end', () => finish(Buffer.concat(chunks)));
    req.on('error', () => finish('aborted'));
    req.on('close', () => finish('aborted'));
  });
}

function send(res: ServerResponse, status: number, body?: unknown, extra: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  if (body === undefined) {
    res.writeHead(status, extra).end();
    return;
  }
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...extra });
  res.end(text);
  if (extra.connection === 'close') {
    // Reading has stopped: give the client a moment to read the reply, then drop the connection.
    res.once('finish', () => setTimeout(() => res.socket?.destroy(), 1000).unref());
  }
}

/** The reply's name for a user: the email, or the credential when the file gives none (never empty, X02). */
function displayName(user: XrayUser): string {
  return user.email ?? user.credential;
}

/** `550e8400…` for a UUID; a Hysteria auth string shows only its length. */
export function logCredential(credential: string): string {
  return isUuid(credential) ? `${credential.slice(0, 8)}…` : maskCredential(credential);
}

function bearerToken(value: string | undefined): string | undefined {
  const match = /^\s*Bearer\s+(.*?)\s*$/i.exec(value ?? '');
  return match?.[1];
}

function headerText(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Constant-time comparison of a presented value with the expected one. */
function safeEqual(presented: string | undefined, expected: string): boolean {
  const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();
  return timingSafeEqual(digest(presented ?? ''), digest(expected)) && presented !== undefined;
}

/** A path as a log may show it: no control characters, bounded length. */
function printable(path: string): string {
  return escapeForDisplay(path, 80);
}
