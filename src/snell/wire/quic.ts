/**
 * The v5 QUIC proxy envelope, the first UDP datagram of a flow (docs/snell.md §7):
 *   salt | Seal(0, 04 00 00 padLen payLen) | padding | Seal(1, 01 01 00 hostLen host port16 | inner QUIC packet)
 * The padding is skipped, not swapped, and real clients send none, so neither do we.
 */
import { randomBytes } from 'node:crypto';
import { AeadDirection, TAG_BYTES } from './aead.js';
import { decodeFrameHeader, HEADER_SEALED_BYTES, MAX_PAYLOAD, sealFrame } from './frame.js';
import { decodeRequest, encodeRequest } from './request.js';
import { SALT_BYTES } from './kdf.js';
import { DecodeError } from '../../shared/errors.js';
import { concatBytes } from '../../shared/bytes.js';

/** The official server treats a datagram whose first byte has 0x40 set (QUIC's fixed bit) as raw QUIC. */
export const QUIC_FIXED_BIT = 0x40;

export function quicSafeSalt(): Uint8Array {
  const salt = randomBytes(SALT_BYTES);
  salt[0]! &= ~QUIC_FIXED_BIT;
  return salt;
}

export interface QuicEnvelope {
  host: string;
  port: number;
  inner: Uint8Array;
}

/** `key` is the AES-128 key derived from the PSK and `salt`. */
export function sealQuicEnvelope(key: Uint8Array, salt: Uint8Array, envelope: QuicEnvelope): Uint8Array {
  const request = encodeRequest({ command: 'connect', clientId: new Uint8Array(0), host: envelope.host, port: envelope.port });
  const payload = concatBytes(request, envelope.inner);
  if (payload.length > MAX_PAYLOAD) throw new RangeError(`QUIC envelope payload is ${payload.length} bytes, at most ${MAX_PAYLOAD}`);
  // One unpadded v4 frame (nonces 0 and 1) behind the salt, as the [cap] datagram has it.
  return concatBytes(salt, sealFrame(new AeadDirection('aes-128-gcm', key), payload));
}

export interface OpenedQuicEnvelope extends QuicEnvelope {
  headerPlain: Uint8Array;
  paddingLen: number;
}

export function openQuicEnvelope(key: Uint8Array, packet: Uint8Array): OpenedQuicEnvelope {
  const what = 'QUIC envelope';
  if (packet.length < SALT_BYTES + HEADER_SEALED_BYTES) {
    throw new DecodeError(what, packet.length, `truncated: needs at least ${SALT_BYTES + HEADER_SEALED_BYTES} bytes`);
  }
  const direction = new AeadDirection('aes-128-gcm', key);
  const headerPlain = direction.open(packet.subarray(SALT_BYTES, SALT_BYTES + HEADER_SEALED_BYTES));
  if (!headerPlain) throw new DecodeError(what, SALT_BYTES, 'header does not authenticate (wrong key or corrupted)');
  const header = decodeFrameHeader(headerPlain, SALT_BYTES);
  const start = SALT_BYTES + HEADER_SEALED_BYTES + header.paddingLen;
  const end = start + header.payloadLen + TAG_BYTES;
  if (packet.length < end) throw new DecodeError(what, start, `truncated: payload needs ${end - start} bytes, ${packet.length - start} left`);
  const payload = direction.open(packet.subarray(start, end));
  if (!payload) throw new DecodeError(what, start, 'payload does not authenticate');
  const { request, end: requestEnd } = decodeRequest(payload);
  if (request.host === undefined || request.port === undefined) {
    throw new DecodeError(what, start, `request command ${request.command} carries no target`);
  }
  return { host: request.host, port: request.port, inner: payload.slice(requestEnd), headerPlain, paddingLen: header.paddingLen };
}
