/**
 * A Snell byte stream after the handshake, in either direction: the reader turns arriving
 * bytes into payloads (an empty payload is a zero chunk), the writer seals payloads into frames
 * the way OpenSnell's writer does (the salt with the first frame, 256..511 bytes of padding on
 * the first non-empty frame, a payload limit that starts near one MTU and grows). v4/v5 frames,
 * or legacy v1-v3 chunks.
 */
import { AeadDirection, TAG_BYTES } from './aead.js';
import { decodeFrameHeader, HEADER_SEALED_BYTES, initialPaddingLength, MAX_PAYLOAD, sealFrame, swapPadding, type FrameHeader } from './frame.js';
import { LEGACY_MAX_PAYLOAD, LENGTH_CHUNK_BYTES, sealLegacyChunk } from './legacy.js';
import { paddingPlan, type PaddingPlan, type PaddingStyle } from './padding.js';
import { DecodeError } from '../../shared/errors.js';

export type StreamFormat = 'v4' | 'legacy';

export class SnellStreamReader {
  private pending: Buffer = Buffer.alloc(0);
  /** Bytes consumed so far, for error offsets. */
  private consumed = 0;
  /** A header already opened (its nonce is spent) whose body has not arrived yet. */
  private header: FrameHeader | undefined;
  private legacyLength: number | undefined;

  constructor(private readonly direction: AeadDirection, private readonly format: StreamFormat = 'v4') {}

  /** The payloads completed by `chunk`; throws DecodeError when a frame does not authenticate. */
  push(chunk: Uint8Array): Uint8Array[] {
    const { payloads, error } = this.pushAll(chunk);
    if (error) throw error;
    return payloads;
  }

  /** Like push, but the payloads that did authenticate come back along with the error that stopped it. */
  pushAll(chunk: Uint8Array): { payloads: Uint8Array[]; error?: Error } {
    try {
      return { payloads: this.read(chunk) };
    } catch (error) {
      return { payloads: this.partial.splice(0), error: error as Error };
    }
  }

  private partial: Uint8Array[] = [];

  private read(chunk: Uint8Array): Uint8Array[] {
    this.pending = this.pending.length === 0 ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength) : Buffer.concat([this.pending, chunk]);
    const out = this.partial;
    for (;;) {
      const payload = this.format === 'v4' ? this.nextFrame() : this.nextChunk();
      if (payload === undefined) break;
      out.push(payload);
    }
    if (this.pending.length > 0) this.pending = Buffer.from(this.pending);
    return out.splice(0);
  }

  private take(n: number): Buffer {
    const bytes = this.pending.subarray(0, n);
    this.pending = this.pending.subarray(n);
    this.consumed += n;
    return bytes;
  }

  private nextFrame(): Uint8Array | undefined {
    if (!this.header) {
      if (this.pending.length < HEADER_SEALED_BYTES) return undefined;
      const at = this.consumed;
      const plain = this.direction.open(this.take(HEADER_SEALED_BYTES));
      if (!plain) throw new DecodeError('v4 frame', at, 'header does not authenticate (wrong key or corrupted)');
      this.header = decodeFrameHeader(plain, at);
      if (this.header.payloadLen === 0) {
        this.header = undefined;
        return new Uint8Array(0);
      }
    }
    const { paddingLen, payloadLen } = this.header;
    if (this.pending.length < paddingLen + payloadLen + TAG_BYTES) return undefined;
    const at = this.consumed + paddingLen;
    // Only a padded frame needs the swap, and so copies (later frames carry no padding).
    const padding = paddingLen > 0 ? Buffer.from(this.take(paddingLen)) : undefined;
    const sealed = padding ? Buffer.from(this.take(payloadLen + TAG_BYTES)) : this.take(payloadLen + TAG_BYTES);
    if (padding) swapPadding(padding, sealed);
    this.header = undefined;
    const payload = this.direction.open(sealed);
    if (!payload) throw new DecodeError('v4 frame', at, 'payload does not authenticate');
    return payload;
  }

  private nextChunk(): Uint8Array | undefined {
    if (this.legacyLength === undefined) {
      if (this.pending.length < LENGTH_CHUNK_BYTES) return undefined;
      const at = this.consumed;
      const plain = this.direction.open(this.take(LENGTH_CHUNK_BYTES));
      if (!plain || plain.length !== 2) throw new DecodeError('legacy chunk', at, 'length does not authenticate');
      this.legacyLength = ((plain[0]! << 8) | plain[1]!) & LEGACY_MAX_PAYLOAD;
      if (this.legacyLength === 0) {
        this.legacyLength = undefined;
        return new Uint8Array(0);
      }
    }
    if (this.pending.length < this.legacyLength + TAG_BYTES) return undefined;
    const at = this.consumed;
    const payload = this.direction.open(this.take(this.legacyLength + TAG_BYTES));
    this.legacyLength = undefined;
    if (!payload) throw new DecodeError('legacy chunk', at, 'payload does not authenticate');
    return payload;
  }
}

/** 1460 (an MTU's TCP payload) minus what frames one first frame (salt 16 + H 23 + tag 16). */
const FIRST_FRAME_BUDGET = 1460 - 55;
const LIMIT_STEP = 1460 - 39;

export class SnellStreamWriter {
  private salt: Uint8Array | undefined;
  private padded = false;
  private limit = 0;

  /** `salt` goes out in front of the first frame written; `paddingStyle` shapes that frame's padding (padding.ts). */
  constructor(private readonly direction: AeadDirection, salt: Uint8Array, private readonly format: StreamFormat = 'v4', private readonly paddingStyle: PaddingStyle = 'opensnell') {
    this.salt = salt;
  }

  /** Seals `payload` into as many frames as the payload limit needs; an empty one is a zero chunk. */
  write(payload: Uint8Array): Buffer {
    const parts: Uint8Array[] = [];
    if (this.salt) {
      parts.push(this.salt);
      this.salt = undefined;
    }
    if (payload.length === 0) {
      parts.push(this.format === 'v4' ? sealFrame(this.direction, payload) : sealLegacyChunk(this.direction, payload));
      return Buffer.concat(parts);
    }
    for (let at = 0; at < payload.length; ) {
      if (this.format === 'legacy') {
        const piece = payload.subarray(at, at + LEGACY_MAX_PAYLOAD);
        parts.push(sealLegacyChunk(this.direction, piece));
        at += piece.length;
        continue;
      }
      let padding: PaddingPlan | undefined;
      if (!this.padded) {
        this.padded = true;
        padding = paddingPlan(this.paddingStyle, initialPaddingLength());
        this.limit = FIRST_FRAME_BUDGET - padding.length;
      } else {
        this.limit = Math.min(MAX_PAYLOAD, this.limit + LIMIT_STEP);
      }
      const piece = payload.subarray(at, at + this.limit);
      parts.push(sealFrame(this.direction, piece, padding));
      at += piece.length;
    }
    return Buffer.concat(parts);
  }
}

