/**
 * snell-serve: a Snell server that behaves like OpenSnell alpha (docs/snell.md §9), multi-user
 * (trial authentication over a users snapshot: IP cache, serial up to 16 users, parallel above)
 * or single-user (one PSK: no cache, no delay). This file starts, listens and closes; each client
 * is a Connection (connection.ts), its request a tunnel (tunnel.ts). Unlike OpenSnell, scans are
 * bounded (auth-limiter.ts), shared with the QUIC relay on the UDP twin (quic-relay.ts).
 */
import net from 'node:net';
import { selectKdf, type KdfBackend } from '../wire/kdf.js';
import type { ObfsMode } from '../wire/obfs.js';
import { TrialAuthenticator } from '../model.js';
import { AuthLimiter, defaultAuthQueue, defaultMaxPendingAuth } from './auth-limiter.js';
import { type SnellUser, UserStore } from '../user-store.js';
import { Connection, type ConnectionSettings } from './connection.js';
import type { SnellAuthenticated } from '../record.js';
import type { TargetPolicy } from './targets.js';
import { startQuicRelay } from './quic-relay.js';
import { utf8 } from '../../shared/bytes.js';
import { listenOn } from '../../shared/listen.js';
import { InputError } from '../../shared/errors.js';
import type { SnellServerStats } from './stats.js';


/** Connections with no traffic for this long are closed, unless the options say otherwise. */
const DEFAULT_IDLE_TIMEOUT_MS = 300_000;

export interface SnellServerOptions {
  host: string;
  port: number;
  /** Multi-user: trial authentication over these users. */
  users?: UserStore | readonly SnellUser[];
  /** Single-user: this PSK, OpenSnell's plain path. */
  psk?: string;
  obfs: ObfsMode;
  udp: boolean;
  /** v5 QUIC envelopes on the same port, over UDP. */
  quic?: boolean;
  targets: TargetPolicy;
  authorizeUrl?: string;
  /** false: no client-IP cache, every connection scans (for measuring the cold path). */
  ipCache?: boolean;
  /** Scans (trial authentications past the IP cache) running at once; default 2 per core. */
  maxPendingAuth?: number;
  /** Connections waiting for a scan slot; past it they are closed as `busy`. Default 16 per core. */
  authQueue?: number;
  /** Closes a connection with no traffic for this long; default 300 s. */
  idleTimeoutMs?: number;
  /** false: targets are dialled over IPv4 only, as OpenSnell with ipv6 off ("dial tcp4 ..."). */
  ipv6?: boolean;
  kdf?: KdfBackend;
  log?: (line: string) => void;
  /** Each connection's trial authentication, once decided (multi-user only). */
  onAuthenticated?: (entry: SnellAuthenticated) => void;
}

export interface SnellServer {
  address: net.AddressInfo;
  stats(): SnellServerStats;
  /** Scans running and connections waiting for one, now. */
  authLoad(): { running: number; waiting: number; maxRunning: number; maxWaiting: number };
  /** Replaces the users as a whole snapshot; handshakes under way keep the one they started with. */
  replaceUsers(users: UserStore | readonly SnellUser[]): void;
  close(): Promise<void>;
}

export async function startSnellServer(options: SnellServerOptions): Promise<SnellServer> {
  const kdf = options.kdf ?? (await selectKdf());
  const authenticator = options.users === undefined ? undefined : await TrialAuthenticator.create(options.users, { kdf, detectLegacy: false, cacheCapacity: options.ipCache === false ? 0 : undefined });
  const singlePsk = options.psk === undefined ? undefined : utf8.encode(options.psk);
  const log = options.log ?? (() => undefined);
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const stats: SnellServerStats = { accepted: 0, authenticated: 0, rejected: 0, busy: 0, open: 0, users: {} };
  const limiter = new AuthLimiter(options.maxPendingAuth ?? defaultMaxPendingAuth(), options.authQueue ?? defaultAuthQueue());
  const settings: ConnectionSettings = {
    obfs: options.obfs, kdf, authenticator, singlePsk, limiter, stats, log, onAuthenticated: options.onAuthenticated,
    tunnel: { udp: options.udp, targets: options.targets, authorizeUrl: options.authorizeUrl, log, idleTimeoutMs, ipv6: options.ipv6 ?? true },
  };
  const sockets = new Set<net.Socket>();

  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    stats.accepted++;
    stats.open++;
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.setTimeout(idleTimeoutMs, () => socket.destroy());
    socket.on('error', () => undefined);
    socket.on('close', () => {
      stats.open--;
      sockets.delete(socket);
    });
    new Connection(socket, settings).serve().catch((error: unknown) => {
      log(`${socket.remoteAddress}:${socket.remotePort} - - error (${(error as Error).message})`);
      socket.destroy();
    });
  });
  // A burst of new connections (a node restarting its clients) must not overflow the accept queue.
  await listenOn(server, { host: options.host, port: options.port, backlog: 4096 }).catch(async (error: unknown) => {
    await authenticator?.close();
    throw error;
  });
  const address = server.address() as net.AddressInfo;
  let quic;
  try {
    quic = options.quic
      ? await startQuicRelay({ host: options.host, port: address.port, authenticator, limiter, psk: singlePsk, kdf, targets: options.targets, log, idleTimeoutMs })
      : undefined;
  } catch (error) {
    server.close();
    await authenticator?.close();
    throw new InputError(`--quic: cannot listen on udp ${options.host}:${address.port}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  return {
    address,
    stats: () => stats,
    authLoad: () => ({ running: limiter.runningCount, waiting: limiter.waitingCount, maxRunning: limiter.maxRunning, maxWaiting: limiter.maxWaiting }),
    replaceUsers(users) {
      if (!authenticator) throw new Error('a single-PSK server has no users to replace');
      authenticator.replaceUsers(users instanceof UserStore ? users : UserStore.fromUsers(users));
    },
    async close() {
      quic?.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      await authenticator?.close();
    },
  };
}
