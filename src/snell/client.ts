/**
 * One probe of a live Snell server, as a client: connect, send the first packet (random salt:
 * official servers keep a salt replay filter), read what comes back, and say what it means:
 * `authenticated` (a reply decrypted: tunnel, PONG or an error reply), `rejected` (closed with
 * nothing decryptable; a close ~50 ms after the header is a multi-user server's no-match
 * delay), `timeout`, `connect-failed`; with the time to connect, to the first reply byte, total.
 * Over TCP (client/tcp-probe.ts) for PING, CONNECT and UDP-over-TCP; the v5 QUIC envelope here.
 */
import net from 'node:net';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { buildQuicPacket } from './wire/first-packet.js';
import { selectKdf, type KdfBackend } from './wire/kdf.js';
import { msSince, probeTcp } from './client/tcp-probe.js';
import type { ProbeAction, ProbeOptions, ProbeResult } from './client/probe-types.js';

/** A stand-in QUIC Initial: a long header (0xc0 | type 0), version 1, then padding to 1200 bytes, as clients pad. */
function fakeQuicInitial(): Uint8Array {
  const packet = randomBytes(1200);
  packet.set([0xc3, 0x00, 0x00, 0x00, 0x01], 0);
  return packet;
}

/**
 * A v5 QUIC envelope over UDP: the first datagram of a flow carries the target and the inner
 * packet; anything that comes back counts. UDP has no rejection: silence is all a wrong PSK,
 * a refused target and a mute target have in common.
 */
async function probeQuic(options: ProbeOptions, action: Extract<ProbeAction, { kind: 'quic' }>, kdf: KdfBackend): Promise<ProbeResult> {
  const started = performance.now();
  const packet = await buildQuicPacket({ psk: options.psk, host: action.host, port: action.port, inner: options.send ?? fakeQuicInitial(), kdf });
  const socket = dgram.createSocket(net.isIP(options.host) === 6 ? 'udp6' : 'udp4');
  return new Promise<ProbeResult>((resolve) => {
    const finish = (result: Omit<ProbeResult, 'totalMs'>): void => {
      clearTimeout(timer);
      socket.close();
      resolve({ ...result, totalMs: msSince(started) });
    };
    const timer = setTimeout(() => finish({
      outcome: 'timeout',
      note: `no datagram back within ${options.timeoutMs} ms: a QUIC envelope has no rejection, so this is a wrong PSK, a target the server refuses, or a target that did not answer`,
    }), options.timeoutMs);
    socket.on('error', (error: NodeJS.ErrnoException) => finish({ outcome: 'connect-failed', note: error.code ?? error.message }));
    socket.on('message', (message) => finish({ outcome: 'authenticated', reply: { kind: 'quic' }, received: message, firstByteMs: msSince(sent) }));
    const sent = performance.now();
    socket.send(packet.wire, options.port, options.host);
  });
}

export async function probeSnell(options: ProbeOptions): Promise<ProbeResult> {
  const kdf = options.kdf ?? (await selectKdf());
  if (options.action.kind === 'quic') return probeQuic(options, options.action, kdf);
  return probeTcp(options, options.action, kdf);
}
