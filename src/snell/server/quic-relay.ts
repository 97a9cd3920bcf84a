/**
 * snell-serve --quic: v5 QUIC proxy envelopes on the TCP port's UDP twin (docs/snell.md §7, §9 step 10).
 * The first datagram of a client (ip:port) is an envelope: trial-authenticated with the same IP
 * cache and scan as TCP but with no 50 ms delay and no OnAuthorize (a miss is dropped at once),
 * then its inner QUIC packet goes to the target; after that the flow's packets are relayed raw
 * both ways. A first datagram with QUIC's fixed bit (0x40) set is raw QUIC, not an envelope.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { aeadKey } from '../wire/aead.js';
import { deriveSnellKey, SALT_BYTES, type KdfBackend } from '../wire/kdf.js';
import { HEADER_SEALED_BYTES } from '../wire/frame.js';
import { openQuicEnvelope, QUIC_FIXED_BIT } from '../wire/quic.js';
import type { MatchedKey, TrialAuthenticator } from '../model.js';
import type { AuthLimiter } from './auth-limiter.js';
import type { TargetPolicy } from './targets.js';
import { canonicalIp, hostPort } from '../../shared/ip.js';

export interface QuicRelayOptions {
  host: string;
  port: number;
  authenticator?: TrialAuthenticator;
  /** The TCP side's bound on scans, shared: a datagram finding it full is dropped. */
  limiter?: AuthLimiter;
  psk?: Uint8Array;
  kdf: KdfBackend;
  targets: TargetPolicy;
  log: (line: string) => void;
  idleTimeoutMs: number;
}

interface Flow {
  upstream?: dgram.Socket;
  host: string;
  port: number;
  lastSeen: number;
}

export interface QuicRelay {
  flows(): number;
  close(): void;
}

export async function startQuicRelay(options: QuicRelayOptions): Promise<QuicRelay> {
  const socket = dgram.createSocket(net.isIP(options.host) === 6 ? 'udp6' : 'udp4');
  const flows = new Map<string, Flow>();
  let closed = false;
  /** A send that cannot go (a bad port, a closed socket) drops the datagram, as UDP does. */
  const sendTo = (target: dgram.Socket, bytes: Uint8Array, port: number, host: string): void => {
    try {
      target.send(bytes, port, host);
    } catch {
      // Dropped.
    }
  };
  const opening = new Set<string>();

  const open = async (packet: Buffer, address: string, port: number, key: string): Promise<void> => {
    let user = 'default';
    let derived: Uint8Array | undefined;
    if (options.authenticator) {
      const matched: MatchedKey = {};
      const limiter = options.limiter;
      const outcome = limiter
        ? await options.authenticator.authenticateGated(packet, canonicalIp(address), matched, () => limiter.acquire())
        : await options.authenticator.authenticate(packet, canonicalIp(address), matched);
      if (!outcome.ok) {
        options.log(`${key} - - quic dropped (${outcome.reason === 'busy' ? 'busy' : `no user matches, ${outcome.trials} trials`})`);
        return;
      }
      user = outcome.user;
      derived = matched.derived;
    } else {
      derived = await deriveSnellKey(options.kdf, options.psk!, packet.subarray(0, SALT_BYTES));
    }
    let envelope;
    try {
      envelope = openQuicEnvelope(aeadKey(derived!, 'aes-128-gcm'), packet);
    } catch {
      options.log(`${key} ${user} - quic dropped (not an envelope for this PSK)`);
      return;
    }
    if (closed) return;
    const target = hostPort(envelope.host, envelope.port);
    const flow: Flow = { host: envelope.host, port: envelope.port, lastSeen: Date.now() };
    if (options.targets.allows(envelope.host, envelope.port)) {
      flow.upstream = dgram.createSocket(net.isIP(envelope.host) === 6 ? 'udp6' : 'udp4');
      flow.upstream.on('message', (reply) => {
        flow.lastSeen = Date.now();
        sendTo(socket, reply, port, address);
      });
      flow.upstream.on('error', () => undefined);
    } else if (!options.targets.echo) {
      options.log(`${key} ${user} ${target} quic refused (target not allowed)`);
      return;
    }
    flows.set(key, flow);
    options.log(`${key} ${user} ${target} quic flow`);
    relay(flow, envelope.inner, address, port);
  };

  const relay = (flow: Flow, bytes: Uint8Array, address: string, port: number): void => {
    flow.lastSeen = Date.now();
    if (flow.upstream) sendTo(flow.upstream, bytes, flow.port, flow.host);
    else sendTo(socket, bytes, port, address);
  };

  socket.on('message', (packet, info) => {
    const key = hostPort(info.address, info.port);
    const flow = flows.get(key);
    if (flow) {
      relay(flow, packet, info.address, info.port);
      return;
    }
    // Raw QUIC with no flow, a datagram too short for an envelope, or one already being opened.
    if (packet.length < SALT_BYTES + HEADER_SEALED_BYTES || (packet[0]! & QUIC_FIXED_BIT) !== 0 || opening.has(key)) return;
    opening.add(key);
    open(packet, info.address, info.port, key)
      .catch((error: unknown) => options.log(`${key} - - quic error (${(error as Error).message})`))
      .finally(() => opening.delete(key));
  });
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(options.port, options.host, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [key, flow] of flows) {
      if (now - flow.lastSeen > options.idleTimeoutMs) {
        flow.upstream?.close();
        flows.delete(key);
      }
    }
  }, Math.min(options.idleTimeoutMs, 10_000));
  sweep.unref();
  return {
    flows: () => flows.size,
    close() {
      closed = true;
      clearInterval(sweep);
      for (const flow of flows.values()) flow.upstream?.close();
      flows.clear();
      socket.close();
    },
  };
}
