/**
 * One client of snell-serve, as OpenSnell alpha's handleConn takes it (docs/snell.md §9): obfs
 * off, salt and first header read whole (a short read closes at once), trial authentication
 * (multi-user) or the one PSK (single-user), 50 ms before closing on no match, a fresh salt for
 * the reply stream, then the request (tunnel.ts). Unlike OpenSnell, a connection finding the
 * scans and their queue full closes at once as `busy` (auth-limiter.ts).
 */
import net from 'node:net';
import { randomPooled } from '../../shared/random-pool.js';
import { AeadDirection, aeadKey } from '../wire/aead.js';
import { deriveSnellKey, SALT_BYTES, type KdfBackend } from '../wire/kdf.js';
import { HEADER_SEALED_BYTES } from '../wire/frame.js';
import { ObfsError, ObfsUnwrapper, ObfsWrapper } from './obfs-stream.js';
import { TLS_HELLO_DATA_OFFSET, type ObfsMode } from '../wire/obfs.js';
import { SnellStreamReader, SnellStreamWriter } from '../wire/stream.js';
import type { GatedOutcome, MatchedKey, ScanGate, TrialAuthenticator } from '../model.js';
import type { AuthLimiter } from './auth-limiter.js';
import { serveTunnel } from './tunnel.js';
import { type TunnelSettings } from './tunnel-settings.js';
import type { SnellAuthenticated } from '../record.js';
import type { SnellServerStats } from './stats.js';
import { canonicalIp } from '../../shared/ip.js';
import { concatBytes } from '../../shared/bytes.js';

/** OpenSnell's unauthDelay (docs/snell.md §9 step 7). */
export const NO_MATCH_DELAY_MS = 50;
/** Salt and first sealed header: what OpenSnell reads whole before it authenticates (§9 step 2). */
const FIRST_BYTES = SALT_BYTES + HEADER_SEALED_BYTES;

/** What every connection of one server shares. */
export interface ConnectionSettings {
  obfs: ObfsMode;
  kdf: KdfBackend;
  /** Multi-user: trial authentication over its users. */
  authenticator: TrialAuthenticator | undefined;
  /** Single-user: this PSK, OpenSnell's plain path. */
  singlePsk: Uint8Array | undefined;
  limiter: AuthLimiter;
  stats: SnellServerStats;
  tunnel: TunnelSettings;
  log: (line: string) => void;
  /** Each trial authentication that reached a verdict (snell-serve --record). */
  onAuthenticated?: (entry: SnellAuthenticated) => void;
}

/** Who the first bytes belong to, and the key the scan derived for them, if it did. */
interface Authenticated {
  user: string;
  psk: Uint8Array;
  derived: Uint8Array | undefined;
}

export class Connection {
  private readonly remote: string;
  /** The client's IP as the IP cache keys it (§9 step 1). */
  private readonly ip: string;
  private readonly unwrap: ObfsUnwrapper;
  private readonly wrap: ObfsWrapper;
  /** Bytes past obfs so far, until salt and header are whole. */
  private first: Uint8Array = new Uint8Array(0);
  /** Raw bytes received when salt and header were whole: what Go's buffered http reader has taken by then. */
  private receivedAtHeader = 0;
  /** The one log line of a connection that ends before its tunnel has gone out. */
  private logged = false;

  constructor(private readonly socket: net.Socket, private readonly settings: ConnectionSettings) {
    this.remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    this.ip = canonicalIp(socket.remoteAddress ?? '');
    this.unwrap = new ObfsUnwrapper(settings.obfs, 'server');
    this.wrap = new ObfsWrapper(settings.obfs, 'server');
  }

  async serve(): Promise<void> {
    const { stats } = this.settings;
    const firstBytes = await this.readSaltAndHeader();
    if (!firstBytes) {
      this.logOnce(`rejected (closed after ${this.first.length} bytes, before salt and header)`);
      stats.rejected++;
      this.socket.destroy();
      return;
    }
    const key = this.settings.authenticator ? await this.trialAuthenticate(this.settings.authenticator, firstBytes) : { user: 'default', psk: this.settings.singlePsk!, derived: undefined };
    if (!key) return;
    // The scan's own derivation keys the reader (OpenSnell derives it once more: ~30 µs, not
    // visible on the wire); the reply gets a fresh salt and its own key (§9 step 8).
    const readKey = aeadKey(key.derived ?? (await deriveSnellKey(this.settings.kdf, key.psk, firstBytes.subarray(0, SALT_BYTES))), 'aes-128-gcm');
    const reader = new SnellStreamReader(new AeadDirection('aes-128-gcm', readKey));
    let payloads: Uint8Array[];
    try {
      payloads = reader.push(firstBytes.subarray(SALT_BYTES));
    } catch {
      // Single-user: a wrong PSK fails on the first open and closes at once (§9 step 11).
      stats.rejected++;
      this.logOnce('rejected (the first frame does not authenticate)');
      this.socket.destroy();
      return;
    }
    const replySalt = randomPooled(SALT_BYTES);
    const writeKey = aeadKey(await deriveSnellKey(this.settings.kdf, key.psk, replySalt), 'aes-128-gcm');
    const writer = new SnellStreamWriter(new AeadDirection('aes-128-gcm', writeKey), replySalt);
    // The client may have gone while the keys were derived: nothing to serve then.
    if (this.socket.destroyed) {
      this.logOnce(`closed by the client after authenticating (${key.user})`);
      return;
    }
    await this.tunnel(key.user, reader, writer, payloads);
  }

  /** Salt and first header, whole; undefined when obfs is wrong or the client closes first (no delay). */
  private readSaltAndHeader(): Promise<Uint8Array | undefined> {
    const { socket } = this;
    return new Promise((resolve) => {
      const onData = (chunk: Buffer): void => {
        try {
          this.first = concatBytes(this.first, this.unwrap.push(chunk));
        } catch (error) {
          socket.off('data', onData);
          this.logOnce(`rejected (${error instanceof ObfsError ? error.message : 'bad obfs'})`);
          resolve(undefined);
          return;
        }
        if (this.first.length >= FIRST_BYTES) {
          socket.off('data', onData);
          socket.pause();
          this.receivedAtHeader = socket.bytesRead;
          resolve(this.first);
        }
      };
      socket.on('data', onData);
      // A FIN before the header is whole is a short read: closed at once. (The server is half-open
      // so that a FIN after it does not end the socket under the no-match delay.)
      socket.once('end', () => resolve(undefined));
      socket.once('close', () => resolve(undefined));
    });
  }

  /** Multi-user: the scan behind the limiter's gate; undefined when the connection has been closed. */
  private async trialAuthenticate(authenticator: TrialAuthenticator, firstBytes: Uint8Array): Promise<Authenticated | undefined> {
    const { socket } = this;
    const { limiter, stats } = this.settings;
    // A connection closed while it waits for a scan slot (the idle timeout, a reset noticed)
    // gives its place up. The socket is paused, so a client's FIN alone is not seen here.
    const gone = new AbortController();
    const onClose = (): void => gone.abort();
    socket.once('close', onClose);
    const gate: ScanGate = () => limiter.acquire(gone.signal);
    const matched: MatchedKey = {};
    let outcome: GatedOutcome;
    try {
      outcome = await authenticator.authenticateGated(firstBytes, this.ip, matched, gate);
    } finally {
      // Past the scan nothing waits on the signal; an abort on every close would build a DOMException each time.
      socket.off('close', onClose);
    }
    if (!outcome.ok && outcome.reason === 'busy') {
      stats.busy++;
      this.logOnce(`busy (scans: ${limiter.runningCount} running, ${limiter.waitingCount} waiting; --max-pending-auth ${limiter.maxRunning}, --auth-queue ${limiter.maxWaiting})`);
      socket.destroy();
      return undefined;
    }
    if (socket.destroyed || (!outcome.ok && outcome.reason === 'gone')) {
      this.logOnce(`closed by the client during authentication${!outcome.ok && outcome.reason === 'gone' ? ' (while waiting for a scan slot)' : ''}`);
      socket.destroy();
      return undefined;
    }
    this.settings.onAuthenticated?.({
      source: this.remote, ip: this.ip, user: outcome.ok ? outcome.user : null, path: outcome.ok ? outcome.path : outcome.reason,
      trials: outcome.trials, micros: outcome.micros, firstBytes,
    });
    if (!outcome.ok) {
      stats.rejected++;
      await new Promise((resolve) => setTimeout(resolve, NO_MATCH_DELAY_MS));
      this.logOnce(`rejected (${outcome.reason === 'empty-store' ? 'no users' : 'no user matches'}, ${outcome.trials} trials)`);
      this.closeAsGoWould();
      return undefined;
    }
    return { user: outcome.user, psk: matched.store!.psk(outcome.index), derived: matched.derived };
  }

  private async tunnel(user: string, reader: SnellStreamReader, writer: SnellStreamWriter, payloads: Uint8Array[]): Promise<void> {
    const { stats } = this.settings;
    stats.authenticated++;
    const totals = (stats.users[user] ??= { connections: 0, bytesIn: 0, bytesOut: 0, errors: 0 });
    totals.connections++;
    const { socket, unwrap, wrap, remote } = this;
    const result = await serveTunnel({ socket, reader, writer, unwrap, wrap, payloads, user, remote }, this.settings.tunnel);
    totals.bytesIn += result.bytesIn;
    totals.bytesOut += result.bytesOut;
    if (result.error) totals.errors++;
    this.settings.log(`${remote} ${user} ${result.target ?? '-'} ${result.outcome} in=${result.bytesIn} out=${result.bytesOut}`);
  }

  private logOnce(outcome: string): void {
    if (this.logged) return;
    this.logged = true;
    this.settings.log(`${this.remote} - - ${outcome}`);
  }

  /**
   * OpenSnell's reader takes from the socket only what it needs for salt and header, so closing
   * with the client's other bytes still in the kernel makes Linux send a reset, not a FIN
   * (docs/snell.md §9 "How the close looks"): obfs off reads 39 bytes; tls reads the ClientHello
   * up to the embedded data (skip, then a 2-byte length) and 39 bytes of it, leaving the rest of
   * the hello; http's bufio.Reader and the Content-Length body read take the request whole with
   * whatever arrived along with it.
   */
  private closeAsGoWould(): void {
    const { obfs } = this.settings;
    const consumed = obfs === 'off' ? FIRST_BYTES : obfs === 'tls' ? TLS_HELLO_DATA_OFFSET + FIRST_BYTES : this.receivedAtHeader;
    // bytesRead counts what arrived during the delay too: Go would not have read that either.
    if (this.socket.bytesRead > consumed) this.socket.resetAndDestroy();
    else this.socket.destroy();
  }
}
