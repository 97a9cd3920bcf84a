/**
 * One probe of a live Snell server, as a client: connect, send the first packet (random salt:
 * official servers keep a salt replay filter), read what comes back, and say what it means:
 * `authenticated` (a reply decrypted: tunnel, PONG or an error reply), `rejected` (closed with
 * nothing decryptable; a close ~50 ms after the header is a multi-user server's no-match
 * delay), `timeout`, `connect-failed`; with the time to connect, to the first reply byte, total.
 */
import net from 'node:net';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { AeadDirection, aeadKey } from './wire/aead.js';
import { aeadForVersion, buildQuicPacket, isFramedVersion, type SnellVersion } from './wire/first-packet.js';
import { deriveSnellKey, SALT_BYTES, selectKdf, type KdfBackend } from './wire/kdf.js';
import { encodeRequest, type SnellRequest } from './wire/request.js';
import { decodeReply } from './wire/reply.js';
import { decodeServerDatagram, encodeClientDatagram } from './wire/udp.js';
import { ObfsUnwrapper, ObfsWrapper } from './server/obfs-stream.js';
import type { ObfsMode } from './wire/obfs.js';
import type { PaddingStyle } from './wire/padding.js';
import { SnellStreamReader, SnellStreamWriter, type StreamFormat } from './wire/stream.js';
import { DecodeError } from '../shared/errors.js';
import { describeSocketError } from '../shared/net-errors.js';
import { utf8 } from '../shared/bytes.js';

export type ProbeAction =
  | { kind: 'ping' }
  | { kind: 'quic'; host: string; port: number }
  | { kind: 'connect'; host: string; port: number; command: 'connect' | 'connect-v2' }
  | { kind: 'udp'; host: string; port: number };

export interface ProbeOptions {
  host: string;
  port: number;
  psk: string | Uint8Array;
  version: SnellVersion;
  obfs: ObfsMode;
  obfsHost?: string;
  action: ProbeAction;
  /** Sent through the tunnel (with the request, as Surge does), or as the UDP datagram. */
  send?: Uint8Array;
  timeoutMs: number;
  kdf?: KdfBackend;
  /** The first frame's padding (padding.ts); default `opensnell`. */
  paddingStyle?: PaddingStyle;
}

export type ProbeOutcome = 'authenticated' | 'rejected' | 'timeout' | 'connect-failed';

export interface ProbeResult {
  outcome: ProbeOutcome;
  reply?: { kind: 'tunnel' | 'pong' | 'error' | 'udp' | 'quic'; code?: number; message?: string };
  /** What came back through the tunnel (or the datagram's payload). */
  received?: Uint8Array;
  connectMs?: number;
  firstByteMs?: number;
  totalMs: number;
  /** What the timing or the bytes suggest, for people. */
  note?: string;
  /**
   * How a server that sent nothing closed: `reset` (it left our bytes unread, as OpenSnell does
   * with obfs off or tls) or `fin`; `afterMs` from the first packet.
   */
  close?: { kind: 'reset' | 'fin'; afterMs: number };
}

/** A reply byte arriving this long after the header without a close suggests the lazy reply is waiting on the target. */
const QUIET_AFTER_DATA_MS = 300;

/** A stand-in QUIC Initial: a long header (0xc0 | type 0), version 1, then padding to 1200 bytes, as clients pad. */
export function fakeQuicInitial(): Uint8Array {
  const packet = randomBytes(1200);
  packet.set([0xc3, 0x00, 0x00, 0x00, 0x01], 0);
  return packet;
}

/**
 * A v5 QUIC envelope over UDP: the first datagram of a flow carries the target and the inner
 * packet; anything that comes back counts. UDP has no rejection: silence is all a wrong PSK,
 * a refused target and a mute target have in common.
 */
async function probeQuic(options: ProbeOptions & { action: { kind: 'quic'; host: string; port: number } }, kdf: KdfBackend): Promise<ProbeResult> {
  const started = performance.now();
  const since = (t: number): number => Math.round((performance.now() - t) * 1000) / 1000;
  const packet = await buildQuicPacket({ psk: options.psk, host: options.action.host, port: options.action.port, inner: options.send ?? fakeQuicInitial(), kdf });
  const socket = dgram.createSocket(net.isIP(options.host) === 6 ? 'udp6' : 'udp4');
  return new Promise<ProbeResult>((resolve) => {
    const finish = (result: Omit<ProbeResult, 'totalMs'>): void => {
      clearTimeout(timer);
      socket.close();
      resolve({ ...result, totalMs: since(started) });
    };
    const timer = setTimeout(() => finish({
      outcome: 'timeout',
      note: `no datagram back within ${options.timeoutMs} ms: a QUIC envelope has no rejection, so this is a wrong PSK, a target the server refuses, or a target that did not answer`,
    }), options.timeoutMs);
    socket.on('error', (error: NodeJS.ErrnoException) => finish({ outcome: 'connect-failed', note: error.code ?? error.message }));
    socket.on('message', (message) => finish({ outcome: 'authenticated', reply: { kind: 'quic' }, received: message, firstByteMs: since(sent) }));
    const sent = performance.now();
    socket.send(packet.wire, options.port, options.host);
  });
}

export async function probeSnell(options: ProbeOptions): Promise<ProbeResult> {
  const kdf = options.kdf ?? (await selectKdf());
  if (options.action.kind === 'quic') return probeQuic(options as ProbeOptions & { action: { kind: 'quic'; host: string; port: number } }, kdf);
  const psk = typeof options.psk === 'string' ? utf8.encode(options.psk) : options.psk;
  const format: StreamFormat = isFramedVersion(options.version) ? 'v4' : 'legacy';
  const aead = aeadForVersion(options.version);
  const salt = randomBytes(SALT_BYTES);
  const writer = new SnellStreamWriter(new AeadDirection(aead, aeadKey(await deriveSnellKey(kdf, psk, salt), aead)), salt, format, options.paddingStyle);
  const request: SnellRequest =
    options.action.kind === 'ping' ? { command: 'ping', clientId: new Uint8Array(0) }
      : options.action.kind === 'udp' ? { command: 'udp', clientId: new Uint8Array(0) }
        : { command: options.action.command, clientId: new Uint8Array(0), host: options.action.host, port: options.action.port };
  const early = options.action.kind === 'connect' && options.send ? options.send : new Uint8Array(0);
  const requestBytes = encodeRequest(request);
  const first = new Uint8Array(requestBytes.length + early.length);
  first.set(requestBytes, 0);
  first.set(early, requestBytes.length);
  const wrap = new ObfsWrapper(options.obfs, 'client', options.obfsHost);
  const unwrap = new ObfsUnwrapper(options.obfs, 'client');
  const started = performance.now();
  const since = (t: number): number => Math.round((performance.now() - t) * 1000) / 1000;

  return new Promise<ProbeResult>((resolve) => {
    const socket = net.connect({ host: options.host, port: options.port });
    socket.setNoDelay(true);
    let connectMs: number | undefined;
    let sentAt = started;
    let firstByteMs: number | undefined;
    let serverSalt = Buffer.alloc(0);
    let reader: SnellStreamReader | undefined;
    let readerReady: Promise<void> | undefined;
    let reply: ProbeResult['reply'];
    const received: Uint8Array[] = [];
    let quiet: NodeJS.Timeout | undefined;
    let settled = false;
    let reset = false;
    let close: ProbeResult['close'];
    const finish = (outcome: ProbeOutcome, note?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(quiet);
      socket.destroy();
      const data = received.length > 0 ? Buffer.concat(received) : undefined;
      resolve({ outcome, reply, received: data, connectMs, firstByteMs, totalMs: since(started), note, ...(close ? { close } : {}) });
    };
    const timer = setTimeout(() => {
      if (reply) finish('authenticated');
      else if (connectMs === undefined) finish('connect-failed', `no connection within ${options.timeoutMs} ms`);
      else finish('timeout', `no reply within ${options.timeoutMs} ms and the connection is still open: past a multi-user server's 50 ms no-match delay, so the PSK is probably accepted (OpenSnell replies to CONNECT only when the target sends; use --send or --ping)`);
    }, options.timeoutMs);

    socket.once('connect', () => {
      connectMs = since(started);
      sentAt = performance.now();
      socket.write(wrap.wrap(writer.write(first)));
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (connectMs === undefined) finish('connect-failed', describeSocketError(error));
      // A server that closes with our bytes unread resets the connection: a close all the same.
      else if (error.code === 'ECONNRESET' || error.code === 'EPIPE') {
        reset = true;
        closed();
      }
      else if (reply) finish('authenticated');
      else finish('rejected', `the connection failed (${error.code ?? error.message}) before any reply`);
    });
    socket.on('close', () => closed());
    const closed = (): void => {
      if (reply) {
        finish('authenticated');
        return;
      }
      const afterMs = since(sentAt);
      const gotBytes = serverSalt.length > 0;
      if (!gotBytes) close = { kind: reset ? 'reset' : 'fin', afterMs };
      const how = `${reset ? 'reset' : 'closed'} after ${afterMs.toFixed(1)} ms with nothing sent`;
      const note = gotBytes
        ? 'closed before a whole reply arrived'
        : afterMs >= 35 && afterMs <= 250
          ? `${how}: a multi-user server's no-match delay (50 ms): no user has this PSK`
          : `${how}: a single-user server with another PSK, a server expecting another obfs, or not a Snell server`;
      finish('rejected', note);
    };

    const onPayload = (payload: Uint8Array): void => {
      if (!reply) {
        if (payload.length === 0) return;
        const decoded = decodeReply(payload);
        if (decoded.kind === 'tunnel') {
          reply = { kind: options.action.kind === 'udp' ? 'udp' : 'tunnel' };
          if (decoded.data.length > 0) received.push(decoded.data);
          if (options.action.kind === 'udp') {
            const datagram = encodeClientDatagram({ host: options.action.host, port: options.action.port, payload: options.send ?? utf8.encode('authkit') });
            socket.write(wrap.wrap(writer.write(datagram)));
          }
        } else {
          reply = decoded.kind === 'pong' ? { kind: 'pong' } : { kind: 'error', code: decoded.code, message: decoded.message };
          finish('authenticated');
          return;
        }
      } else if (payload.length === 0) {
        finish('authenticated');
        return;
      } else if (options.action.kind === 'udp') {
        received.push(decodeServerDatagram(payload).payload);
        finish('authenticated');
        return;
      } else {
        received.push(payload);
      }
      const want = options.send?.length ?? 0;
      if (options.action.kind === 'connect' && want > 0 && Buffer.concat(received).length >= want) {
        finish('authenticated');
        return;
      }
      clearTimeout(quiet);
      if (options.action.kind === 'connect') quiet = setTimeout(() => finish('authenticated'), QUIET_AFTER_DATA_MS);
    };

    let chain = Promise.resolve();
    socket.on('data', (chunk: Buffer) => {
      firstByteMs ??= since(sentAt);
      // The reply key needs a derivation: handle chunks in order behind it.
      chain = chain.then(async () => {
        if (settled) return;
        let bytes: Buffer;
        try {
          bytes = unwrap.push(chunk);
        } catch (error) {
          finish('rejected', `the server did not answer with the expected obfs (${(error as Error).message})`);
          return;
        }
        if (!reader) {
          serverSalt = Buffer.concat([serverSalt, bytes]);
          if (serverSalt.length < SALT_BYTES) return;
          readerReady ??= deriveSnellKey(kdf, psk, serverSalt.subarray(0, SALT_BYTES)).then((key) => {
            reader = new SnellStreamReader(new AeadDirection(aead, aeadKey(key, aead)), format);
          });
          await readerReady;
          bytes = serverSalt.subarray(SALT_BYTES);
        }
        const { payloads, error } = reader!.pushAll(bytes);
        try {
          for (const payload of payloads) {
            onPayload(payload);
            if (settled) return;
          }
        } catch (failure) {
          finish(reply ? 'authenticated' : 'rejected', `the reply is not a Snell reply (${failure instanceof DecodeError ? failure.reason : (failure as Error).message})`);
          return;
        }
        if (error) {
          const why = error instanceof DecodeError ? error.reason : error.message;
          if (reply) finish('authenticated', `the stream failed to decrypt after the reply (${why})`);
          else finish('rejected', `the reply does not decrypt with this PSK: not a Snell server, or another PSK (${why})`);
        }
      });
    });
  });
}
