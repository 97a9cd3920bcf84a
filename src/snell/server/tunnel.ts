/**
 * What an authenticated Snell connection asks for (docs/snell.md §5-§6): PING (PONG, then close),
 * CONNECT and CONNECT-v2 (a lazy `00` merged with the first upstream bytes; v2 reuses the
 * stream: a zero chunk each way ends one request and the next request follows with continuing
 * nonces), UDP-over-TCP; error replies carry the errno as OpenSnell's do.
 */
import net from 'node:net';
import dgram from 'node:dgram';
import { constants } from 'node:os';
import { request as httpRequest } from 'undici';
import { decodeRequest, type SnellRequest } from '../wire/request.js';
import { encodeReply } from '../wire/reply.js';
import { decodeClientDatagram, encodeServerDatagram } from '../wire/udp.js';
import type { SnellStreamReader, SnellStreamWriter } from '../wire/stream.js';
import type { ObfsUnwrapper, ObfsWrapper } from './obfs-stream.js';
import type { TargetPolicy } from './targets.js';
import { DecodeError } from '../../shared/errors.js';

export interface TunnelSettings {
  udp: boolean;
  targets: TargetPolicy;
  authorizeUrl?: string;
  log: (line: string) => void;
  /** Upstream connections idle this long are closed too. */
  idleTimeoutMs: number;
  /** false: dial IPv4 only, and say so as Go does ("dial tcp4 ..."). */
  ipv6: boolean;
}

/** Echoed bytes waiting for a client that does not read: above this the client is paused. */
const ECHO_HIGH_WATER = 1 << 20;
/** A target that does not answer the dial within this long gets an error reply. */
const DIAL_TIMEOUT_MS = 10_000;

export interface TunnelIo {
  socket: net.Socket;
  reader: SnellStreamReader;
  writer: SnellStreamWriter;
  unwrap: ObfsUnwrapper;
  wrap: ObfsWrapper;
  /** Payloads already read with the first bytes. */
  payloads: Uint8Array[];
  user: string;
  remote: string;
}

export interface TunnelResult {
  target?: string;
  outcome: string;
  bytesIn: number;
  bytesOut: number;
  error?: boolean;
}

/** Where a tunnel's bytes go: a real socket, or the in-process echo. */
interface Upstream {
  write(bytes: Uint8Array): boolean;
  end(): void;
  destroy(): void;
  pause(): void;
  resume(): void;
}

type Mode = 'request' | 'connecting' | 'tunnel' | 'draining' | 'udp' | 'closed';

export function serveTunnel(io: TunnelIo, settings: TunnelSettings): Promise<TunnelResult> {
  return new Promise((resolve) => new Tunnel(io, settings, resolve).start());
}

class Tunnel {
  private mode: Mode = 'request';
  private request = Buffer.alloc(0);
  private upstream: Upstream | undefined;
  private replied = false;
  private reuse = false;
  private clientDone = false;
  /** The client's FIN: OpenSnell's relay has no half-close, so it ends the connection. */
  private clientEnded = false;
  private pendingEarly: Uint8Array[] = [];
  private firstTarget: string | undefined;
  private udpSocket: dgram.Socket | undefined;
  private readonly result: TunnelResult = { outcome: 'closed', bytesIn: 0, bytesOut: 0 };
  private requests = 0;
  /** The upstream socket being dialled or in use: the only one whose events count. */
  private current: net.Socket | undefined;

  constructor(private readonly io: TunnelIo, private readonly settings: TunnelSettings, private readonly done: (r: TunnelResult) => void) {}

  start(): void {
    const { socket } = this.io;
    socket.on('data', (chunk: Buffer) => {
      let payloads: Uint8Array[];
      try {
        payloads = this.io.reader.push(this.io.unwrap.push(chunk));
      } catch (error) {
        this.close(`bad frame (${error instanceof DecodeError ? error.reason : (error as Error).message})`, true);
        return;
      }
      for (const p of payloads) this.payload(p);
    });
    socket.on('close', () => this.close(this.result.outcome));
    socket.on('end', () => this.clientEnd());
    socket.on('drain', () => {
      this.upstream?.resume();
      if (this.mode === 'udp') socket.resume();
    });
    // The client may have gone while it was being authenticated.
    if (socket.destroyed) {
      this.close('closed by the client');
      return;
    }
    socket.resume();
    for (const p of this.io.payloads) this.payload(p);
    // A FIN that came while the client was being authenticated has been emitted already.
    if (socket.readableEnded) this.clientEnd();
  }

  /** A request being dialled finishes first (the socket is paused then); anything else closes now. */
  private clientEnd(): void {
    this.clientEnded = true;
    if (this.mode !== 'connecting') this.close(this.result.outcome);
  }

  /** False when the client is not keeping up (the upstream is paused until it drains). */
  private send(plain: Uint8Array): boolean {
    if (this.mode === 'closed') return true;
    this.result.bytesOut += Math.max(0, plain.length);
    if (this.io.socket.write(this.io.wrap.wrap(this.io.writer.write(plain)))) return true;
    this.upstream?.pause();
    return false;
  }

  private payload(p: Uint8Array): void {
    switch (this.mode) {
      case 'request':
        if (p.length > 0) this.request = Buffer.concat([this.request, p]);
        this.readRequest();
        return;
      case 'connecting':
        if (p.length === 0) this.clientDone = true;
        else this.pendingEarly.push(p);
        return;
      case 'tunnel':
        if (p.length === 0) {
          this.clientDone = true;
          if (!this.reuse) this.close('client ended');
          else this.upstream?.end();
          return;
        }
        this.result.bytesIn += p.length;
        if (!this.upstream!.write(p)) this.io.socket.pause();
        return;
      case 'draining':
        if (p.length === 0) this.nextRequest();
        return;
      case 'udp':
        this.datagram(p);
        return;
      default:
    }
  }

  private readRequest(): void {
    const bytes = this.request;
    if (bytes.length >= 2 && bytes[0] === 0x01 && bytes[1] === 0x00) {
      // PING: PONG before the client id is read, then close.
      this.send(encodeReply({ kind: 'pong' }));
      this.close('pong');
      return;
    }
    let decoded: { request: SnellRequest; end: number };
    try {
      decoded = decodeRequest(bytes);
    } catch (error) {
      if (error instanceof DecodeError && error.reason.startsWith('truncated')) return;
      const reason = error instanceof DecodeError ? error.reason : String(error);
      if (reason === 'empty host') this.send(encodeReply({ kind: 'error', code: 0, message: 'snell connect host is empty' }));
      this.close(`bad request (${reason})`, true);
      return;
    }
    const early = bytes.subarray(decoded.end);
    this.request = Buffer.alloc(0);
    this.requests++;
    const { command, host, port } = decoded.request;
    if (command === 'udp') {
      if (!this.settings.udp) {
        this.send(encodeReply({ kind: 'error', code: 1, message: 'UDP disabled' }));
        this.close('udp refused (UDP disabled)', true);
        return;
      }
      this.mode = 'udp';
      this.result.target = 'udp';
      this.result.outcome = 'udp';
      this.send(Uint8Array.of(0x00));
      if (early.length > 0) this.datagram(early);
      return;
    }
    this.reuse = command === 'connect-v2';
    this.connect(host!, port!, early);
  }

  private connect(host: string, port: number, early: Uint8Array): void {
    const target = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    // A long reused stream names its first target and counts the rest (the log line stays short).
    this.firstTarget ??= target;
    this.result.target = this.requests > 1 ? `${this.firstTarget} (+${this.requests - 1} more)` : target;
    this.mode = 'connecting';
    // Nothing more is read from the client until the target is there (bounded memory).
    this.io.socket.pause();
    this.replied = false;
    this.clientDone = false;
    this.pendingEarly = early.length > 0 ? [early] : [];
    const allowed = this.settings.targets.allows(host, port);
    if (!allowed && !this.settings.targets.echo) {
      this.fail(0, `target ${target} is not allowed by snell-serve (--allow-target, --echo)`, 'target refused');
      return;
    }
    void this.authorize(target).then((refusal) => {
      if (this.mode !== 'connecting') return;
      if (refusal) {
        this.fail(0, refusal, 'refused by --authorize-url');
        return;
      }
      if (allowed) this.dial(host, port, target);
      else this.open(new EchoUpstream((bytes) => this.upstreamData(bytes), () => this.upstreamEnd(), () => this.io.socket.resume()));
    });
  }

  /** The OnAuthorize hook: a non-2xx answer becomes an error reply. */
  private async authorize(target: string): Promise<string | undefined> {
    if (!this.settings.authorizeUrl) return undefined;
    try {
      const response = await httpRequest(this.settings.authorizeUrl, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user: this.io.user, remote: this.io.remote, target }), signal: AbortSignal.timeout(5000),
      });
      await response.body.dump();
      return response.statusCode >= 200 && response.statusCode < 300 ? undefined : `not authorized (HTTP ${response.statusCode} from the authorize hook)`;
    } catch (error) {
      // The hook's address and error stay in the server's log; the client learns only the refusal.
      this.settings.log(`${this.io.remote} ${this.io.user} ${target} authorize hook failed: ${(error as Error).message}`);
      return 'not authorized (the authorize hook failed)';
    }
  }

  private dial(host: string, port: number, target: string): void {
    const network = this.settings.ipv6 ? 'tcp' : 'tcp4';
    if (!this.settings.ipv6 && net.isIP(host) === 6) {
      // Go's resolver turns the address down before any dial (errNoSuitableAddress).
      this.fail(0, `dial tcp4: address ${host}: no suitable address found`, 'connect failed (IPv6 off)');
      return;
    }
    const socket = net.connect({ host, port, family: this.settings.ipv6 ? 0 : 4 });
    this.current = socket;
    socket.setNoDelay(true);
    let connected = false;
    // An old upstream of a reused stream may still say something: only the current one counts.
    const mine = (): boolean => this.current === socket;
    socket.setTimeout(DIAL_TIMEOUT_MS, () => {
      if (connected) {
        if (mine()) this.close('upstream idle', true);
        socket.destroy();
        return;
      }
      socket.destroy();
      if (mine()) this.fail(110, `dial ${network} ${target}: i/o timeout`, 'connect failed (timeout)');
    });
    socket.once('connect', () => {
      connected = true;
      socket.setTimeout(this.settings.idleTimeoutMs);
      if (mine()) this.open(socketUpstream(socket));
      else socket.destroy();
    });
    socket.on('data', (bytes: Buffer) => mine() && this.upstreamData(bytes));
    socket.on('end', () => mine() && this.upstreamEnd());
    socket.on('drain', () => mine() && this.io.socket.resume());
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (!mine()) return;
      if (connected) {
        this.close(`upstream error (${error.code ?? error.message})`, true);
        return;
      }
      const errno = error.code ? (constants.errno as Record<string, number>)[error.code] ?? 0 : 0;
      this.fail(errno & 0xff, `dial ${network} ${target}: connect: ${goErrorText(error)}`, `connect failed (${error.code ?? error.message})`);
    });
  }

  private open(upstream: Upstream): void {
    if (this.mode !== 'connecting') {
      upstream.destroy();
      return;
    }
    this.upstream = upstream;
    this.mode = 'tunnel';
    this.result.outcome = 'tunnel';
    this.io.socket.resume();
    for (const bytes of this.pendingEarly) {
      this.result.bytesIn += bytes.length;
      upstream.write(bytes);
    }
    this.pendingEarly = [];
    if (this.clientEnded) this.close('client ended');
    else if (this.clientDone) {
      if (this.reuse) upstream.end();
      else this.close('client ended');
    }
  }

  /** The lazy reply: `00` goes out with the first upstream bytes. */
  private upstreamData(bytes: Uint8Array): void {
    if (this.mode !== 'tunnel') return;
    if (!this.replied) {
      this.replied = true;
      const out = new Uint8Array(1 + bytes.length);
      out.set(bytes, 1);
      this.send(out);
    } else {
      this.send(bytes);
    }
  }

  private upstreamEnd(): void {
    if (this.mode !== 'tunnel') return;
    if (!this.replied) {
      this.replied = true;
      this.send(Uint8Array.of(0x00));
    }
    this.upstream = undefined;
    this.current = undefined;
    // A client paused behind a slow upstream must be heard again: its zero chunk comes next.
    this.io.socket.resume();
    if (!this.reuse) {
      this.send(new Uint8Array(0));
      this.close('upstream ended');
      return;
    }
    // CONNECT-v2: our zero chunk ends this request; the client's (seen or awaited) ends theirs.
    this.send(new Uint8Array(0));
    if (this.clientDone) this.nextRequest();
    else this.mode = 'draining';
  }

  private nextRequest(): void {
    if (this.clientEnded) {
      this.close(this.result.outcome);
      return;
    }
    this.mode = 'request';
    this.io.socket.resume();
    if (this.request.length > 0) this.readRequest();
  }

  /** An error reply; on a reused stream OpenSnell then reads the next request at once. */
  private fail(code: number, message: string, outcome: string): void {
    this.result.outcome = outcome;
    this.result.error = true;
    this.send(encodeReply({ kind: 'error', code, message }));
    this.pendingEarly = [];
    this.current = undefined;
    if (this.reuse) this.nextRequest();
    else this.close(outcome, true);
  }

  private datagram(p: Uint8Array): void {
    let datagram;
    try {
      datagram = decodeClientDatagram(p);
    } catch (error) {
      this.close(`bad datagram (${error instanceof DecodeError ? error.reason : String(error)})`, true);
      return;
    }
    this.result.bytesIn += datagram.payload.length;
    const { host, port, payload } = datagram;
    if (!this.settings.targets.allows(host, port)) {
      if (this.settings.targets.echo && port >= 1 && port <= 65535 && !this.send(encodeServerDatagram({ host: net.isIP(host) ? host : '127.0.0.1', port, payload }))) {
        this.io.socket.pause();
      }
      return;
    }
    if (!this.udpSocket) {
      this.udpSocket = dgram.createSocket(net.isIP(host) === 6 ? 'udp6' : 'udp4');
      this.udpSocket.on('message', (message, info) => this.send(encodeServerDatagram({ host: info.address, port: info.port, payload: message })));
      this.udpSocket.on('error', () => undefined);
    }
    try {
      this.udpSocket.send(payload, port, host);
    } catch {
      // A datagram that cannot go is dropped, as UDP does.
    }
  }

  private closed = false;

  private close(outcome: string, error = false): void {
    if (this.closed) return;
    this.closed = true;
    this.result.outcome = outcome;
    if (error) this.result.error = true;
    this.mode = 'closed';
    this.upstream?.destroy();
    this.current?.destroy();
    this.udpSocket?.close();
    this.udpSocket = undefined;
    this.io.socket.end();
    setTimeout(() => this.io.socket.destroy(), 1000).unref();
    this.done(this.result);
  }
}

function socketUpstream(socket: net.Socket): Upstream {
  return {
    write: (bytes) => socket.write(bytes),
    end: () => socket.end(),
    destroy: () => socket.destroy(),
    pause: () => socket.pause(),
    resume: () => socket.resume(),
  };
}

/** `--echo`: whatever the client sends comes back; a half-close ends it. */
class EchoUpstream implements Upstream {
  private paused = false;
  private queued: Uint8Array[] = [];
  private queuedBytes = 0;
  private full = false;
  private ended = false;
  private dead = false;
  constructor(private readonly onData: (bytes: Uint8Array) => void, private readonly onEnd: () => void, private readonly onDrain: () => void) {}
  write(bytes: Uint8Array): boolean {
    if (this.dead) return false;
    this.queued.push(Uint8Array.from(bytes));
    this.queuedBytes += bytes.length;
    setImmediate(() => this.flush());
    this.full = this.queuedBytes > ECHO_HIGH_WATER;
    return !this.full;
  }
  end(): void {
    this.ended = true;
    setImmediate(() => this.flush());
  }
  destroy(): void {
    this.dead = true;
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
    setImmediate(() => this.flush());
  }
  private flush(): void {
    while (!this.dead && !this.paused && this.queued.length > 0) {
      const bytes = this.queued.shift()!;
      this.queuedBytes -= bytes.length;
      this.onData(bytes);
    }
    if (this.full && this.queuedBytes <= ECHO_HIGH_WATER / 2) {
      this.full = false;
      this.onDrain();
    }
    if (!this.dead && this.ended && this.queued.length === 0) {
      this.dead = true;
      this.onEnd();
    }
  }
}

function goErrorText(error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ETIMEDOUT':
      return 'connection timed out';
    case 'EHOSTUNREACH':
      return 'no route to host';
    case 'ENETUNREACH':
      return 'network is unreachable';
    case 'ENOTFOUND':
      return 'no such host';
    default:
      return error.code ?? error.message;
  }
}
