/**
 * Builds what a Snell client sends first: the salt and the first frame(s) carrying the request
 * and any early data (v4/v5 frames, or v1-v3 legacy chunks), or a v5 QUIC envelope.
 */
import { randomBytes } from 'node:crypto';
import { AeadDirection, aeadKey, type AeadName } from './aead.js';
import { encodeFrameHeader, initialPaddingLength, MAX_PAYLOAD, sealFrame } from './frame.js';
import { paddingPlan, type PaddingPlan, type PaddingStyle } from './padding.js';
import { deriveSnellKey, SALT_BYTES, selectKdf, type KdfBackend } from './kdf.js';
import { legacyAead, sealLegacyChunk, LEGACY_MAX_PAYLOAD } from './legacy.js';
import { quicSafeSalt, sealQuicEnvelope } from './quic.js';
import { encodeRequest, type SnellRequest } from './request.js';
import { utf8, concatBytes } from '../../shared/bytes.js';

export type SnellVersion = 1 | 2 | 3 | 4 | 5;

export function isFramedVersion(version: SnellVersion): version is 4 | 5 {
  return version >= 4;
}

export function aeadForVersion(version: SnellVersion): AeadName {
  return isFramedVersion(version) ? 'aes-128-gcm' : legacyAead(version);
}

/** Surge sends CONNECT-v2 on v4/v5 (and v2 is the reuse version); v1 and v3 clients send CONNECT. */
export function defaultCommand(version: SnellVersion): SnellRequest['command'] {
  return version === 1 || version === 3 ? 'connect' : 'connect-v2';
}

export interface FirstPacketOptions {
  psk: string | Uint8Array;
  version?: SnellVersion;
  /** Omitted: the first frame carries only `early` (a later request on a reused stream, say). */
  request?: SnellRequest;
  early?: Uint8Array;
  salt?: Uint8Array;
  /** Plain padding bytes, or a length. Default: 256..511 bytes (v4/v5), as real clients. */
  padding?: Uint8Array | number;
  /** How a length is filled (padding.ts): `opensnell` (default: OpenSnell's and Surge's bit balance) or `random`. */
  paddingStyle?: PaddingStyle;
  kdf?: KdfBackend;
}

export interface FirstPacket {
  version: SnellVersion;
  salt: Uint8Array;
  /** The first frame's plain header (v4/v5: 04 00 00 padLen payLen; legacy: the length chunk's 2 bytes). */
  headerPlain: Uint8Array;
  paddingLen: number;
  payloadLen: number;
  request: Uint8Array;
  wire: Uint8Array;
}

function pskBytes(psk: string | Uint8Array): Uint8Array {
  return typeof psk === 'string' ? utf8.encode(psk) : psk;
}

/** Splits `bytes` into pieces of at most `limit` (one empty piece for empty input). */
function pieces(bytes: Uint8Array, limit: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; at += limit) out.push(bytes.subarray(at, at + limit));
  return out.length ? out : [bytes];
}

export async function buildFirstPacket(options: FirstPacketOptions): Promise<FirstPacket> {
  const version = options.version ?? 4;
  const salt = options.salt ?? randomBytes(SALT_BYTES);
  if (salt.length !== SALT_BYTES) throw new RangeError(`salt is ${salt.length} bytes, expected ${SALT_BYTES}`);
  const kdf = options.kdf ?? (await selectKdf());
  const aead = aeadForVersion(version);
  const direction = new AeadDirection(aead, aeadKey(await deriveSnellKey(kdf, pskBytes(options.psk), salt), aead));
  const request = options.request ? encodeRequest(options.request) : new Uint8Array(0);
  const payload = concatBytes(request, options.early ?? new Uint8Array(0));

  if (!isFramedVersion(version)) {
    const chunks = pieces(payload, LEGACY_MAX_PAYLOAD).map((piece) => sealLegacyChunk(direction, piece));
    const first = payload.subarray(0, LEGACY_MAX_PAYLOAD);
    return {
      version, salt, request, wire: concatBytes(salt, ...chunks),
      headerPlain: Uint8Array.of(first.length >> 8, first.length & 0xff), paddingLen: 0, payloadLen: first.length,
    };
  }

  const padding = firstPadding(options.padding, options.paddingStyle ?? 'opensnell', payload.length);
  const frames = pieces(payload, MAX_PAYLOAD).map((piece, i) => sealFrame(direction, piece, i === 0 ? padding : undefined));
  const firstLen = Math.min(payload.length, MAX_PAYLOAD);
  return {
    version, salt, request, wire: concatBytes(salt, ...frames),
    headerPlain: encodeFrameHeader(padding.length, firstLen), paddingLen: padding.length, payloadLen: firstLen,
  };
}

function firstPadding(padding: Uint8Array | number | undefined, style: PaddingStyle, payloadLen: number): Uint8Array | PaddingPlan {
  // Only a frame with a payload carries padding (a zero chunk cannot).
  if (payloadLen === 0) return new Uint8Array(0);
  if (padding instanceof Uint8Array) return padding;
  return paddingPlan(style, padding ?? initialPaddingLength());
}

export interface QuicPacketOptions {
  psk: string | Uint8Array;
  host: string;
  port: number;
  inner: Uint8Array;
  /** Default: random with bit 0x40 of the first byte clear, as the official server requires. */
  salt?: Uint8Array;
  kdf?: KdfBackend;
}

/** A v5 QUIC envelope, described as a first packet: its "request" is the CONNECT inside the envelope. */
export async function buildQuicPacket(options: QuicPacketOptions): Promise<FirstPacket> {
  const salt = options.salt ?? quicSafeSalt();
  const kdf = options.kdf ?? (await selectKdf());
  const key = aeadKey(await deriveSnellKey(kdf, pskBytes(options.psk), salt), 'aes-128-gcm');
  const wire = sealQuicEnvelope(key, salt, { host: options.host, port: options.port, inner: options.inner });
  const request = encodeRequest({ command: 'connect', clientId: new Uint8Array(0), host: options.host, port: options.port });
  const payloadLen = request.length + options.inner.length;
  return { version: 5, salt, headerPlain: encodeFrameHeader(0, payloadLen), paddingLen: 0, payloadLen, request, wire };
}
