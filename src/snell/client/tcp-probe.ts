/**
 * One probe over TCP (client.ts has the outcomes it gives): connect and send the first packet,
 * read the reply behind the server's salt, and judge a close that came instead of a reply.
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { AeadDirection, aeadKey } from '../wire/aead.js';
import { aeadForVersion, isFramedVersion } from '../wire/first-packet.js';
import { deriveSnellKey, SALT_BYTES, type KdfBackend } from '../wire/kdf.js';
import { encodeRequest, type SnellRequest } from '../wire/request.js';
import { decodeReply } from '../wire/reply.js';
import { decodeServerDatagram, encodeClientDatagram } from '../wire/udp.js';
import { ObfsUnwrapper, ObfsWrapper } from '../server/obfs-stream.js';
import { SnellStreamReader, SnellStreamWriter, type StreamFormat } from '../wire/stream.js';
import { DecodeError } from '../../shared/errors.js';
import { describeSocketError } from '../../shared/net-errors.js';
import { concatBytes, utf8 } from '../../shared/bytes.js';
import type { ProbeAction, ProbeOptions, ProbeOutcome, ProbeResult } from './probe-types.js';

/** What a probe over TCP asks for: everything but the QUIC envelope, which goes over UDP. */
export type TcpAction = Exclude<ProbeAction, { kind: 'quic' }>;

/** A reply byte arriving this long after the header without a close suggests the lazy reply is waiting on the target. */
const QUIET_AFTER_DATA_MS = 300;

/** Derives the first packet's key, then runs one probe over TCP. */
export async function probeTcp(options: ProbeOptions, action: TcpAction, kdf: KdfBackend): Promise<ProbeResult> {
  const psk = typeof options.psk === 'string' ? utf8.encode(options.psk) : options.psk;
  const format: StreamFormat = isFramedVersion(options.version) ? 'v4' : 'legacy';
  const aead = aeadForVersion(options.version);
  const salt = randomBytes(SALT_BYTES);
  const writer = new SnellStreamWriter(new AeadDirection(aead, aeadKey(await deriveSnellKey(kdf, psk, salt), aead)), salt, format, options.paddingStyle);
  // Each direction has its own salt and key (docs/snell.md §1): the reply's come from the server.
  const replyReader = new ReplyReader(async (replySalt) => new SnellStreamReader(new AeadDirection(aead, aeadKey(await deriveSnellKey(kdf, psk, replySalt), aead)), format));
  return new TcpProbe(options, action, writer, replyReader).run();
}

/** The request the action makes (docs/snell.md §5); the client id stays empty, as OpenSnell's and Surge's. */
function requestFor(action: TcpAction): SnellRequest {
  const clientId = new Uint8Array(0);
  if (action.kind === 'ping') return { command: 'ping', clientId };
  if (action.kind === 'udp') return { command: 'udp', clientId };
  return { command: action.command, clientId, host: action.host, port: action.port };
}

/**
 * The server's direction: its salt first (docs/snell.md §1), then frames or chunks under the key
 * derived from it. Bytes are buffered until the salt is whole.
 */
class ReplyReader {
  private head: Uint8Array = new Uint8Array(0);
  private reader: SnellStreamReader | undefined;

  constructor(private readonly readerForSalt: (salt: Uint8Array) => Promise<SnellStreamReader>) {}

  /** Whether any byte came back (past obfs): a close then is not "with nothing sent". */
  get heardAnything(): boolean {
    return this.head.length > 0;
  }

  /** The payloads these bytes complete; undefined while the salt is still short. */
  async push(bytes: Uint8Array): Promise<{ payloads: Uint8Array[]; error?: Error } | undefined> {
    if (!this.reader) {
      this.head = concatBytes(this.head, bytes);
      if (this.head.length < SALT_BYTES) return undefined;
      this.reader = await this.readerForSalt(this.head.subarray(0, SALT_BYTES));
      bytes = this.head.subarray(SALT_BYTES);
    }
    return this.reader.pushAll(bytes);
  }
}

/**
 * One TCP probe: connect and send the first packet, read the reply, and judge how the connection
 * ended. `finish` settles it once; everything after that is ignored.
 */
class TcpProbe {
  private readonly wrap: ObfsWrapper;
  private readonly unwrap: ObfsUnwrapper;
  private readonly started = performance.now();
  private sentAt = this.started;
  private connectMs: number | undefined;
  private firstByteMs: number | undefined;
  private reply: ProbeResult['reply'];
  private readonly received: Uint8Array[] = [];
  private receivedBytes = 0;
  /** The server reset the connection (ECONNRESET or EPIPE) rather than closing it with a FIN. */
  private reset = false;
  private close: ProbeResult['close'];
  private settled = false;
  private socket!: net.Socket;
  private deadline: NodeJS.Timeout | undefined;
  private quiet: NodeJS.Timeout | undefined;
  /** The reply key needs a derivation: chunks are handled in order behind it. */
  private chunks = Promise.resolve();
  private resolve!: (result: ProbeResult) => void;

  constructor(private readonly options: ProbeOptions, private readonly action: TcpAction, private readonly writer: SnellStreamWriter, private readonly replyReader: ReplyReader) {
    this.wrap = new ObfsWrapper(options.obfs, 'client', options.obfsHost);
    this.unwrap = new ObfsUnwrapper(options.obfs, 'client');
  }

  run(): Promise<ProbeResult> {
    return new Promise<ProbeResult>((resolve) => {
      this.resolve = resolve;
      this.socket = net.connect({ host: this.options.host, port: this.options.port });
      this.socket.setNoDelay(true);
      this.deadline = setTimeout(() => this.timedOut(), this.options.timeoutMs);
      this.socket.once('connect', () => this.sendFirstPacket());
      this.socket.on('error', (error: NodeJS.ErrnoException) => this.failed(error));
      this.socket.on('close', () => this.closed());
      this.socket.on('data', (chunk: Buffer) => {
        this.firstByteMs ??= msSince(this.sentAt);
        this.chunks = this.chunks.then(() => this.readChunk(chunk));
      });
    });
  }

  /** The request and any early data in one payload, as Surge sends them (docs/snell.md §3, §10). */
  private sendFirstPacket(): void {
    this.connectMs = msSince(this.started);
    this.sentAt = performance.now();
    const early = this.action.kind === 'connect' && this.options.send ? this.options.send : new Uint8Array(0);
    this.write(concatBytes(encodeRequest(requestFor(this.action)), early));
  }

  private write(payload: Uint8Array): void {
    this.socket.write(this.wrap.wrap(this.writer.write(payload)));
  }

  private finish(outcome: ProbeOutcome, note?: string): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.deadline);
    clearTimeout(this.quiet);
    this.socket.destroy();
    const received = this.received.length > 0 ? concatBytes(...this.received) : undefined;
    const { reply, connectMs, firstByteMs, close } = this;
    this.resolve({ outcome, reply, received, connectMs, firstByteMs, totalMs: msSince(this.started), note, ...(close ? { close } : {}) });
  }

  private timedOut(): void {
    if (this.reply) this.finish('authenticated');
    else if (this.connectMs === undefined) this.finish('connect-failed', `no connection within ${this.options.timeoutMs} ms`);
    else this.finish('timeout', `no reply within ${this.options.timeoutMs} ms and the connection is still open: past a multi-user server's 50 ms no-match delay, so the PSK is probably accepted (OpenSnell replies to CONNECT only when the target sends; use --send or --ping)`);
  }

  private failed(error: NodeJS.ErrnoException): void {
    if (this.connectMs === undefined) this.finish('connect-failed', describeSocketError(error));
    // A server that closes with our bytes unread resets the connection: a close all the same.
    else if (error.code === 'ECONNRESET' || error.code === 'EPIPE') {
      this.reset = true;
      this.closed();
    } else if (this.reply) this.finish('authenticated');
    else this.finish('rejected', `the connection failed (${error.code ?? error.message}) before any reply`);
  }

  /** A close with no reply is a rejection; its timing tells which kind (docs/snell.md §9 "How the close looks"). */
  private closed(): void {
    if (this.reply) {
      this.finish('authenticated');
      return;
    }
    const afterMs = msSince(this.sentAt);
    const heardAnything = this.replyReader.heardAnything;
    if (!heardAnything) this.close = { kind: this.reset ? 'reset' : 'fin', afterMs };
    this.finish('rejected', heardAnything ? 'closed before a whole reply arrived' : silentCloseNote(afterMs, this.reset));
  }

  private async readChunk(chunk: Buffer): Promise<void> {
    if (this.settled) return;
    let bytes: Uint8Array;
    try {
      bytes = this.unwrap.push(chunk);
    } catch (error) {
      this.finish('rejected', `the server did not answer with the expected obfs (${(error as Error).message})`);
      return;
    }
    const read = await this.replyReader.push(bytes);
    if (!read) return;
    try {
      for (const payload of read.payloads) {
        this.onPayload(payload);
        if (this.settled) return;
      }
    } catch (failure) {
      this.finish(this.reply ? 'authenticated' : 'rejected', `the reply is not a Snell reply (${reasonOf(failure)})`);
      return;
    }
    if (read.error) {
      if (this.reply) this.finish('authenticated', `the stream failed to decrypt after the reply (${reasonOf(read.error)})`);
      else this.finish('rejected', `the reply does not decrypt with this PSK: not a Snell server, or another PSK (${reasonOf(read.error)})`);
    }
  }

  private onPayload(payload: Uint8Array): void {
    if (!this.reply) {
      if (payload.length > 0) this.onReply(payload);
      return;
    }
    // A zero chunk: the server is done (docs/snell.md §3).
    if (payload.length === 0) this.finish('authenticated');
    else if (this.action.kind === 'udp') {
      this.keep(decodeServerDatagram(payload).payload);
      this.finish('authenticated');
    } else {
      this.keep(payload);
      this.waitForMore();
    }
  }

  /** The first payload opens with the reply (docs/snell.md §6); a tunnel's may carry data. */
  private onReply(payload: Uint8Array): void {
    const decoded = decodeReply(payload);
    const { action } = this;
    if (decoded.kind !== 'tunnel') {
      this.reply = decoded.kind === 'pong' ? { kind: 'pong' } : { kind: 'error', code: decoded.code, message: decoded.message };
      this.finish('authenticated');
      return;
    }
    this.reply = { kind: action.kind === 'udp' ? 'udp' : 'tunnel' };
    if (decoded.data.length > 0) this.keep(decoded.data);
    if (action.kind === 'udp') {
      // UDP is ready: one datagram per frame (docs/snell.md §6 "UDP-over-TCP").
      this.write(encodeClientDatagram({ host: action.host, port: action.port, payload: this.options.send ?? utf8.encode('authkit') }));
    }
    this.waitForMore();
  }

  private keep(bytes: Uint8Array): void {
    this.received.push(bytes);
    this.receivedBytes += bytes.length;
  }

  /** A CONNECT is done once what was sent has come back, or once the tunnel has gone quiet. */
  private waitForMore(): void {
    const want = this.options.send?.length ?? 0;
    if (this.action.kind === 'connect' && want > 0 && this.receivedBytes >= want) {
      this.finish('authenticated');
      return;
    }
    clearTimeout(this.quiet);
    if (this.action.kind === 'connect') this.quiet = setTimeout(() => this.finish('authenticated'), QUIET_AFTER_DATA_MS);
  }
}

/**
 * A close with nothing sent: about 50 ms after the first packet is a multi-user server's no-match
 * delay (docs/snell.md §9 step 7); sooner or later, a single-user server or not Snell at all.
 */
function silentCloseNote(afterMs: number, reset: boolean): string {
  const how = `${reset ? 'reset' : 'closed'} after ${afterMs.toFixed(1)} ms with nothing sent`;
  return afterMs >= 35 && afterMs <= 250
    ? `${how}: a multi-user server's no-match delay (50 ms): no user has this PSK`
    : `${how}: a single-user server with another PSK, a server expecting another obfs, or not a Snell server`;
}

function reasonOf(error: unknown): string {
  return error instanceof DecodeError ? error.reason : (error as Error).message;
}

/** Milliseconds since `t`, to the microsecond. */
export function msSince(t: number): number {
  return Math.round((performance.now() - t) * 1000) / 1000;
}
