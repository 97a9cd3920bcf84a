/**
 * What an authenticated Snell connection asks for (docs/snell.md §5-§6), request after request:
 * PING (PONG, then close), CONNECT and CONNECT-v2 (tcp-tunnel.ts; v2 reuses the stream, so the
 * next request follows here with continuing nonces), UDP-over-TCP (udp-over-tcp.ts). This file
 * reads the client's frames, the requests in them, and closes the connection once.
 */
import net from 'node:net';
import { decodeRequest, type SnellRequest } from '../wire/request.js';
import { encodeReply } from '../wire/reply.js';
import { decodeClientDatagram } from '../wire/udp.js';
import type { SnellStreamReader, SnellStreamWriter } from '../wire/stream.js';
import type { ObfsUnwrapper, ObfsWrapper } from './obfs-stream.js';
import { TcpTunnel, type ClientStream } from './tcp-tunnel.js';
import { UdpForwarder } from './udp-over-tcp.js';
import { DecodeError } from '../../shared/errors.js';
import type { TunnelResult, TunnelSettings } from './tunnel-settings.js';
import { hostPort } from '../../shared/ip.js';

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

/** `tcp`: a CONNECT or CONNECT-v2 request is under way (tcp-tunnel.ts has its own states). */
type Mode = 'request' | 'tcp' | 'udp' | 'closed';

export function serveTunnel(io: TunnelIo, settings: TunnelSettings): Promise<TunnelResult> {
  return new Promise((resolve) => new Tunnel(io, settings, resolve).start());
}

class Tunnel {
  private mode: Mode = 'request';
  private request = Buffer.alloc(0);
  /** The client's FIN: OpenSnell's relay has no half-close, so it ends the connection. */
  private clientEnded = false;
  /** The CONNECT request under way, or the last one. */
  private tcp: TcpTunnel | undefined;
  private udp: UdpForwarder | undefined;
  private readonly result: TunnelResult = { outcome: 'closed', bytesIn: 0, bytesOut: 0 };
  private requests = 0;
  private firstTarget: string | undefined;
  private closed = false;
  /** What a CONNECT request sees of this connection. */
  private readonly client: ClientStream;

  constructor(private readonly io: TunnelIo, private readonly settings: TunnelSettings, private readonly done: (r: TunnelResult) => void) {
    this.client = {
      settings, user: io.user, remote: io.remote, result: this.result,
      clientEnded: () => this.clientEnded,
      send: (plain) => this.send(plain),
      pause: () => io.socket.pause(),
      resume: () => io.socket.resume(),
      close: (outcome, error) => this.close(outcome, error),
      nextRequest: () => this.nextRequest(),
    };
  }

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
      this.tcp?.resumeUpstream();
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
    if (!(this.mode === 'tcp' && this.tcp!.connecting)) this.close(this.result.outcome);
  }

  /** False when the client is not keeping up (the upstream is paused until it drains). */
  private send(plain: Uint8Array): boolean {
    if (this.mode === 'closed') return true;
    this.result.bytesOut += Math.max(0, plain.length);
    if (this.io.socket.write(this.io.wrap.wrap(this.io.writer.write(plain)))) return true;
    this.tcp?.pauseUpstream();
    return false;
  }

  private payload(p: Uint8Array): void {
    switch (this.mode) {
      case 'request':
        if (p.length > 0) this.request = Buffer.concat([this.request, p]);
        this.readRequest();
        return;
      case 'tcp':
        this.tcp!.payload(p);
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
      // PING: PONG before the client id is read, then close (docs/snell.md §5).
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
    if (command === 'udp') this.startUdp(early);
    else this.startTcp(host!, port!, command === 'connect-v2', early);
  }

  private startTcp(host: string, port: number, reuse: boolean, early: Uint8Array): void {
    const target = hostPort(host, port);
    // A long reused stream names its first target and counts the rest (the log line stays short).
    this.firstTarget ??= target;
    this.result.target = this.requests > 1 ? `${this.firstTarget} (+${this.requests - 1} more)` : target;
    this.mode = 'tcp';
    this.tcp = new TcpTunnel(this.client, reuse, early);
    this.tcp.start(host, port, target);
  }

  /** UDP-over-TCP: `00`, then a datagram a frame; refused as OpenSnell does with UDP off (§6). */
  private startUdp(early: Uint8Array): void {
    if (!this.settings.udp) {
      this.send(encodeReply({ kind: 'error', code: 1, message: 'UDP disabled' }));
      this.close('udp refused (UDP disabled)', true);
      return;
    }
    this.mode = 'udp';
    this.udp = new UdpForwarder(this.settings.targets, (plain) => this.send(plain));
    this.result.target = 'udp';
    this.result.outcome = 'udp';
    this.send(Uint8Array.of(0x00));
    if (early.length > 0) this.datagram(early);
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

  private datagram(p: Uint8Array): void {
    let datagram;
    try {
      datagram = decodeClientDatagram(p);
    } catch (error) {
      this.close(`bad datagram (${error instanceof DecodeError ? error.reason : String(error)})`, true);
      return;
    }
    this.result.bytesIn += datagram.payload.length;
    if (!this.udp!.forward(datagram)) this.io.socket.pause();
  }

  private close(outcome: string, error = false): void {
    if (this.closed) return;
    this.closed = true;
    this.result.outcome = outcome;
    if (error) this.result.error = true;
    this.mode = 'closed';
    this.tcp?.destroy();
    this.udp?.close();
    this.io.socket.end();
    setTimeout(() => this.io.socket.destroy(), 1000).unref();
    this.done(this.result);
  }
}
