/**
 * The HTTP side of `xray-backend`: an auth backend that follows the ExtAuth / Hysteria 2 contract
 * of the chosen dialect (docs/xray-extauth.md §2, §6), with an admin API under /admin/ and fault injection for
 * testing proxies. Events are POSTed to any path outside /admin/.
 *
 * This file starts, listens and closes; requests.ts takes each request to events.ts or
 * admin.ts and logs it. Robustness: a request body is read up to a limit (larger: 413, and
 * reading stops), anything unreadable is a 4xx with {"error"}, slow and vanished clients are timed
 * out or dropped, and no request can crash the process.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { clearStaleSocket } from '../../shared/unix-socket.js';
import { describeListenAt, listenOn } from '../../shared/listen.js';
import { HTTP_TOKEN } from '../../shared/text.js';
import { InputError } from '../../shared/errors.js';
import type { Dialect } from '../wire/dialect.js';
import { BackendState } from './state.js';
import { credentialKind, loadXrayUsers, watchXrayUsers, type UsersSnapshot, type UsersWatcher } from './users.js';
import { AdminRoute } from './admin.js';
import { EventRoute } from './events.js';
import { checkFaults, FaultInjector, type FaultOptions } from './faults.js';
import { RequestGuard } from './guard.js';
import { RequestRouter } from './requests.js';
import { RequestStats, type BackendStats } from './stats.js';


export const DEFAULT_BODY_LIMIT = 1 << 20;
/** 3 heartbeats of 30 s, the interval the ExtAuth discussion's example uses. */
export const DEFAULT_SESSION_IDLE_MS = 90_000;

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

/** How long closing waits for requests in flight before dropping their connections. */
const CLOSE_GRACE_MS = 1000;

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
  const stats = new RequestStats();
  const guard = new RequestGuard(options.secret, options.headers ?? []);
  const closing = new AbortController();
  const faults = new FaultInjector(options.faults ?? {}, stats, closing.signal);
  const router = new RequestRouter(
    new EventRoute(dialect, state, guard, faults, stats, limit),
    new AdminRoute(state, guard, stats, kind, limit),
    stats,
    options.logRequests === false ? undefined : log,
  );
  const server = createHttpServer(router, limit, options.requestTimeoutMs ?? 30_000);

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
    stats: () => stats.snapshot(state),
    reloadUsers: async () => watcher?.check(),
    close() {
      closed ??= (async () => {
        watcher?.close();
        clearInterval(janitor);
        // Delayed replies go out at once.
        closing.abort();
        const done = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        await withinGrace(router.idle(), CLOSE_GRACE_MS);
        server.closeAllConnections();
        await done; // Node removes a Unix socket file when its server closes
      })();
      return closed;
    },
  };
}

function createHttpServer(router: RequestRouter, bodyLimit: number, requestTimeout: number): Server {
  const server = createServer(
    {
      // Room for X17's 16 KB Authorization header (Node's default limit is 16 KiB for all headers).
      maxHeaderSize: 64 * 1024,
      requestTimeout,
      headersTimeout: Math.min(requestTimeout, 20_000),
      connectionsCheckingInterval: Math.min(30_000, Math.max(50, requestTimeout / 4)),
    },
    (req, res) => void router.handle(req, res),
  );
  // `Expect: 100-continue`: a body that will be refused is not invited.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    if (!(Number(req.headers['content-length']) > bodyLimit)) res.writeContinue();
    void router.handle(req, res);
  });
  // Longer than Go's 90 s IdleConnTimeout, so the proxy, not the backend, closes idle connections
  // (a POST on a connection the server just closed is not retried by Go).
  server.keepAliveTimeout = 120_000;
  return server;
}

/** Waits for `settled`, but no longer than `ms`. */
async function withinGrace(settled: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([settled, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

function checkOptions(options: XrayBackendOptions): void {
  if ((options.unixSocket === undefined) === (options.port === undefined)) throw new InputError('listen on a TCP port or a Unix socket (one of them)');
  if ((options.usersFile === undefined) === (options.users === undefined)) throw new InputError('give a users file or a users snapshot (one of them)');
  checkFaults(options.faults ?? {});
  if (options.sessionIdleMs !== undefined && !(options.sessionIdleMs > 0)) throw new InputError('session idle time: expected more than 0');
  for (const [name] of options.headers ?? []) {
    if (!HTTP_TOKEN.test(name)) throw new InputError(`header name "${name}" is not a valid HTTP header name`);
  }
}

/** Listens where the options say; the URL proxies are to POST to. */
async function listen(server: Server, options: XrayBackendOptions): Promise<Pick<XrayBackend, 'url' | 'unixSocket' | 'port'>> {
  const socketPath = options.unixSocket;
  if (socketPath !== undefined) await clearStaleSocket(socketPath, '--unix-socket');
  const host = options.host ?? '127.0.0.1';
  await listenOn(server, socketPath !== undefined ? { path: socketPath } : { host, port: options.port ?? 0 });
  if (socketPath !== undefined) return { url: 'http://localhost/', unixSocket: socketPath };
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port!;
  return { url: `http://${describeListenAt({ host, port })}/`, port };
}
