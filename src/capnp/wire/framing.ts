/**
 * The Cap'n Proto stream framing (docs/proksi-external-auth.md §6, Framing): a u32 segment count
 * minus one, a u32 size per segment in words, padding to 8 bytes, then the segments. The limits
 * are C++'s, so a frame C++ would refuse is refused here too.
 */
import { DecodeError } from '../../shared/errors.js';

/** Bytes in a word, the unit of segment sizes and pointer offsets. */
export const WORD = 8;
/** Limits like C++'s defaults: frames of at most 64 MiB (8 Mi words), fewer than 512 segments. */
export const MAX_SEGMENTS = 511;
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;

/** Bytes in the segment table of a frame of `count` segments, padding to a whole word included. */
export function segmentTableBytes(count: number): number {
  return 4 * (count + 1) + (count % 2 === 0 ? 4 : 0);
}

export function encodeFrame(segments: readonly Uint8Array[]): Uint8Array {
  const tableBytes = segmentTableBytes(segments.length);
  const out = new Uint8Array(tableBytes + segments.reduce((sum, s) => sum + s.length, 0));
  const view = new DataView(out.buffer);
  view.setUint32(0, segments.length - 1, true);
  segments.forEach((s, i) => view.setUint32(4 * (i + 1), s.length / WORD, true));
  let at = tableBytes;
  for (const s of segments) {
    out.set(s, at);
    at += s.length;
  }
  return out;
}

/**
 * Reads frames from a byte stream. `push` returns each complete frame's segments; a frame that
 * announces too many segments or too many bytes is an error before any of it is buffered.
 */
export class FrameReader {
  /** Received bytes not yet part of a frame, as they came: a frame is copied once, when complete. */
  private chunks: Uint8Array[] = [];
  private length = 0;

  push(chunk: Uint8Array): Uint8Array[][] {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.length += chunk.length;
    }
    const frames: Uint8Array[][] = [];
    for (;;) {
      const frame = this.next();
      if (!frame) return frames;
      frames.push(frame);
    }
  }

  get buffered(): number {
    return this.length;
  }

  /** Drops whatever is buffered (the connection is gone or refused). */
  clear(): void {
    this.chunks = [];
    this.length = 0;
  }

  /** The first `n` buffered bytes, without consuming them (copied only if they span chunks). */
  private peek(n: number): Uint8Array {
    const first = this.chunks[0]!;
    return first.length >= n ? first.subarray(0, n) : this.copy(n);
  }

  /** Consumes `n` bytes into one new array. */
  private take(n: number): Uint8Array {
    const out = this.copy(n);
    this.drop(n);
    return out;
  }

  /** The first `n` buffered bytes copied into one new array. */
  private copy(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let at = 0;
    for (const chunk of this.chunks) {
      const part = chunk.subarray(0, n - at);
      out.set(part, at);
      at += part.length;
      if (at === n) break;
    }
    return out;
  }

  private drop(n: number): void {
    this.length -= n;
    while (n > 0) {
      const chunk = this.chunks[0]!;
      if (chunk.length <= n) {
        this.chunks.shift();
        n -= chunk.length;
      } else {
        this.chunks[0] = chunk.subarray(n);
        n = 0;
      }
    }
  }

  private next(): Uint8Array[] | undefined {
    if (this.length < 4) return undefined;
    const head = this.peek(4);
    const count = new DataView(head.buffer, head.byteOffset, 4).getUint32(0, true) + 1;
    if (count > MAX_SEGMENTS) throw new DecodeError('capnp frame', 0, `${count} segments, at most ${MAX_SEGMENTS}`);
    const tableBytes = segmentTableBytes(count);
    if (this.length < tableBytes) return undefined;
    const table = this.peek(tableBytes);
    const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
    let total = 0;
    const sizes: number[] = [];
    for (let i = 0; i < count; i++) {
      const bytes = view.getUint32(4 * (i + 1), true) * WORD;
      sizes.push(bytes);
      total += bytes;
      if (total > MAX_FRAME_BYTES) throw new DecodeError('capnp frame', 4 * (i + 1), `announces more than ${MAX_FRAME_BYTES} bytes`);
    }
    if (this.length < tableBytes + total) return undefined;
    this.drop(tableBytes);
    return sizes.map((size) => this.take(size));
  }
}
