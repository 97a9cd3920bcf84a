/**
 * v4/v5 TCP frames (docs/snell.md §3):  H | P | C  where
 *   H = Seal(n, 04 00 00 padLen16 payLen16)   23 bytes
 *   C = Seal(n+1, payload)                     payLen + 16 bytes, absent for a zero chunk
 *   P = padLen bytes, with P[i] and C[i] swapped at every even i < min(padLen, len(C)).
 * The first frame of a direction is preceded by the 16-byte salt.
 */
import { AeadDirection, TAG_BYTES } from './aead.js';
import { DecodeError } from '../../shared/errors.js';
import type { PaddingPlan } from './padding.js';
import { concatBytes } from '../../shared/bytes.js';

export const FRAME_MARKER = 0x04;
export const HEADER_PLAIN_BYTES = 7;
export const HEADER_SEALED_BYTES = HEADER_PLAIN_BYTES + TAG_BYTES;
export const MAX_PAYLOAD = 0x3fff;
export const MAX_PADDING = 0x3fff;

export interface FrameHeader {
  paddingLen: number;
  payloadLen: number;
  /** Bytes 1..2; writers send zero and OpenSnell ignores them, so a reader reports rather than rejects. */
  reserved: number;
}

export function encodeFrameHeader(paddingLen: number, payloadLen: number): Uint8Array {
  if (!Number.isInteger(paddingLen) || paddingLen < 0 || paddingLen > MAX_PADDING) {
    throw new RangeError(`padding length ${paddingLen} outside 0..${MAX_PADDING}`);
  }
  if (!Number.isInteger(payloadLen) || payloadLen < 0 || payloadLen > MAX_PAYLOAD) {
    throw new RangeError(`payload length ${payloadLen} outside 0..${MAX_PAYLOAD}`);
  }
  return Uint8Array.of(FRAME_MARKER, 0, 0, paddingLen >> 8, paddingLen & 0xff, payloadLen >> 8, payloadLen & 0xff);
}

/** `offset` locates the header in the caller's input, for the error message. */
export function decodeFrameHeader(plain: Uint8Array, offset = 0): FrameHeader {
  if (plain.length !== HEADER_PLAIN_BYTES) {
    throw new DecodeError('v4 frame header', offset, `plaintext is ${plain.length} bytes, expected ${HEADER_PLAIN_BYTES}`);
  }
  if (plain[0] !== FRAME_MARKER) {
    throw new DecodeError('v4 frame header', offset, `marker 0x${plain[0]!.toString(16).padStart(2, '0')}, expected 0x04`);
  }
  const header: FrameHeader = {
    reserved: (plain[1]! << 8) | plain[2]!,
    paddingLen: (plain[3]! << 8) | plain[4]!,
    payloadLen: (plain[5]! << 8) | plain[6]!,
  };
  if (header.paddingLen > MAX_PADDING || header.payloadLen > MAX_PAYLOAD) {
    throw new DecodeError('v4 frame header', offset, 'length above 0x3fff');
  }
  if (header.payloadLen === 0 && header.paddingLen !== 0) {
    throw new DecodeError('v4 frame header', offset, 'zero chunk with padding');
  }
  return header;
}

/** The interleave is its own inverse, so the writer and the reader both call this, in place. */
export function swapPadding(padding: Uint8Array, sealedPayload: Uint8Array): void {
  const limit = Math.min(padding.length, sealedPayload.length);
  for (let i = 0; i < limit; i += 2) {
    const t = padding[i]!;
    padding[i] = sealedPayload[i]!;
    sealedPayload[i] = t;
  }
}

/**
 * Seals one frame. `padding` is the plain padding (any content: receivers discard it), or a plan
 * whose content is made from the sealed payload (padding.ts); an empty payload makes a zero
 * chunk, which may not carry padding.
 */
export function sealFrame(direction: AeadDirection, payload: Uint8Array, padding: Uint8Array | PaddingPlan = new Uint8Array(0)): Uint8Array {
  if (payload.length === 0 && padding.length !== 0) throw new RangeError('a zero chunk carries no padding');
  const header = direction.seal(encodeFrameHeader(padding.length, payload.length));
  if (payload.length === 0) return header;
  const sealedPayload = direction.seal(payload);
  const paddingWire = padding instanceof Uint8Array ? Uint8Array.from(padding) : padding.make(sealedPayload);
  if (paddingWire.length !== padding.length) throw new RangeError(`padding plan made ${paddingWire.length} bytes, not ${padding.length}`);
  swapPadding(paddingWire, sealedPayload);
  return concatBytes(header, paddingWire, sealedPayload);
}

export interface OpenedFrame {
  header: FrameHeader;
  /** The padding as the writer generated it (after undoing the swap). */
  padding: Uint8Array;
  payload: Uint8Array;
  /** Offset just past this frame in the input. */
  end: number;
}

/**
 * Opens the frame that starts at `offset`. Throws DecodeError naming the offset when the bytes
 * run out or a tag does not verify.
 */
export function openFrame(direction: AeadDirection, bytes: Uint8Array, offset: number): OpenedFrame {
  const what = 'v4 frame';
  if (bytes.length - offset < HEADER_SEALED_BYTES) {
    throw new DecodeError(what, offset, `truncated: header needs ${HEADER_SEALED_BYTES} bytes, ${bytes.length - offset} left`);
  }
  const plainHeader = direction.open(bytes.subarray(offset, offset + HEADER_SEALED_BYTES));
  if (!plainHeader) throw new DecodeError(what, offset, 'header does not authenticate (wrong key or corrupted)');
  const header = decodeFrameHeader(plainHeader, offset);
  const bodyStart = offset + HEADER_SEALED_BYTES;
  if (header.payloadLen === 0) return { header, padding: new Uint8Array(0), payload: new Uint8Array(0), end: bodyStart };
  const sealedLen = header.payloadLen + TAG_BYTES;
  const end = bodyStart + header.paddingLen + sealedLen;
  if (bytes.length < end) {
    throw new DecodeError(what, bodyStart, `truncated: padding and payload need ${end - bodyStart} bytes, ${bytes.length - bodyStart} left`);
  }
  const padding = bytes.slice(bodyStart, bodyStart + header.paddingLen);
  const sealedPayload = bytes.slice(bodyStart + header.paddingLen, end);
  swapPadding(padding, sealedPayload);
  const payload = direction.open(sealedPayload);
  if (!payload) throw new DecodeError(what, bodyStart + header.paddingLen, 'payload does not authenticate');
  return { header, padding, payload, end };
}

/** What real writers do for the first non-empty frame (OpenSnell, Surge): 256 + rand[0, 256). */
export function initialPaddingLength(random: () => number = Math.random): number {
  return 256 + Math.floor(random() * 256);
}
