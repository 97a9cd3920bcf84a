/**
 * Legacy v1-v3 chunks (docs/snell.md §4, icpz/open-snell):  Seal(n, len16) | Seal(n+1, payload)
 * with no padding and no marker; a zero chunk is Seal(n, 00 00) alone.
 * v1 uses ChaCha20-Poly1305, v2 and v3 AES-128-GCM.
 */
import { AeadDirection, TAG_BYTES, type AeadName } from './aead.js';
import { DecodeError } from '../../shared/errors.js';
import { concatBytes } from '../../shared/bytes.js';

export const LENGTH_CHUNK_BYTES = 2 + TAG_BYTES;
export const LEGACY_MAX_PAYLOAD = 0x3fff;

export function legacyAead(version: 1 | 2 | 3): AeadName {
  return version === 1 ? 'chacha20-poly1305' : 'aes-128-gcm';
}

export function sealLegacyChunk(direction: AeadDirection, payload: Uint8Array): Uint8Array {
  if (payload.length > LEGACY_MAX_PAYLOAD) throw new RangeError(`legacy chunk payload ${payload.length} above ${LEGACY_MAX_PAYLOAD}`);
  const length = direction.seal(Uint8Array.of(payload.length >> 8, payload.length & 0xff));
  if (payload.length === 0) return length;
  return concatBytes(length, direction.seal(payload));
}

export interface OpenedChunk {
  payload: Uint8Array;
  end: number;
}

export function openLegacyChunk(direction: AeadDirection, bytes: Uint8Array, offset: number): OpenedChunk {
  const what = 'legacy chunk';
  if (bytes.length - offset < LENGTH_CHUNK_BYTES) {
    throw new DecodeError(what, offset, `truncated: length needs ${LENGTH_CHUNK_BYTES} bytes, ${bytes.length - offset} left`);
  }
  const lengthPlain = direction.open(bytes.subarray(offset, offset + LENGTH_CHUNK_BYTES));
  if (!lengthPlain || lengthPlain.length !== 2) throw new DecodeError(what, offset, 'length does not authenticate');
  const length = ((lengthPlain[0]! << 8) | lengthPlain[1]!) & LEGACY_MAX_PAYLOAD;
  const start = offset + LENGTH_CHUNK_BYTES;
  if (length === 0) return { payload: new Uint8Array(0), end: start };
  const end = start + length + TAG_BYTES;
  if (bytes.length < end) throw new DecodeError(what, start, `truncated: payload needs ${end - start} bytes, ${bytes.length - start} left`);
  const payload = direction.open(bytes.subarray(start, end));
  if (!payload) throw new DecodeError(what, start, 'payload does not authenticate');
  return { payload, end };
}
