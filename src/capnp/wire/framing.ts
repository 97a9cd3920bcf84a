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

/** A frame's segment sizes in bytes and its length with the table, read from its table. */
interface FrameHead {
  sizes: number[];
  /** The segment table's length, padding included: where the first segment starts. */
  tableBytes: number;
  /** The whole frame. */
  bytes: number;
}

/**
 * The head of the frame whose table starts at `at` of `bytes` (`available` bytes buffered in all,
 * maybe more than `bytes` holds): undefined while its table is incomplete. A frame announcing too
 * many segments or bytes is an error before any of it is buffered.
 */
function frameHead(bytes: Uint8Array, at: number, available: number): FrameHead | undefined {
  if (available < 4) return undefined;
  const count = u32(bytes, at) + 1;
  if (count > MAX_SEGMENTS) throw new DecodeError('capnp frame', 0, `${count} segments, at most ${MAX_SEGMENTS}`);
  const tableBytes = segmentTableBytes(count);
  if (available < tableBytes) return undefined;
  let total = 0;
  const sizes: number[] = [];
  for (let i = 0; i < count; i++) {
    const size = u32(bytes, at + 4 * (i + 1)) * WORD;
    sizes.push(size);
    total += size;
    if (total > MAX_FRAME_BYTES) throw new DecodeError('capnp frame', 4 * (i + 1), `announces more than ${MAX_FRAME_BYTES} bytes`);
  }
  return { sizes, tableBytes, bytes: tableBytes + total };
}

function u32(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
}

/**
 * Reads frames from a byte stream. `push` returns each complete frame's segments. A frame that
 * lies whole in one chunk is returned as views of it, not copied (the usual case: a reply or a
 * call arrives in one read); bytes kept for a later frame are kept as they came, or copied when
 * the reader was made `borrowed` (chunks from a reused read buffer, valid only during push, so
 * the frames push returns must be read before the next read too).
 */
export class FrameReader {
  /** Received bytes not yet part of a frame, as they came: a frame is copied once, when complete. */
  private chunks: Uint8Array[] = [];
  private length = 0;

  constructor(private readonly borrowed = false) {}

  push(chunk: Uint8Array): Uint8Array[][] {
    const frames: Uint8Array[][] = [];
    let at = 0;
    // Nothing buffered: whole frames straight out of the chunk.
    while (this.length === 0 && at < chunk.length) {
      const head = frameHead(chunk, at, chunk.length - at);
      if (!head || chunk.length - at < head.bytes) break;
      let segment = at + head.tableBytes;
      frames.push(head.sizes.map((size) => chunk.subarray(segment, (segment += size))));
      at += head.bytes;
    }
    if (at === chunk.length) return frames;
    const rest = at === 0 ? chunk : chunk.subarray(at);
    this.chunks.push(this.borrowed ? Buffer.from(rest) : rest);
    this.length += rest.length;
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
    return first.length >= n ? first : this.copy(n);
  }

  /** Consumes `n` bytes: a view of the first chunk when they lie in it, else one new array. */
  private take(n: number): Uint8Array {
    const first = this.chunks[0]!;
    const out = first.length >= n ? first.subarray(0, n) : this.copy(n);
    this.drop(n);
    return out;
  }

  /** The first `n` buffered bytes copied into one new array. */
  private copy(n: number): Uint8Array {
    const out = Buffer.allocUnsafe(n);
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
    // Peek no more than the table (the count says how long it is, when it is not refused).
    const tableBytes = segmentTableBytes(Math.min(u32(this.peek(4), 0) + 1, MAX_SEGMENTS + 1));
    const head = frameHead(this.peek(Math.min(this.length, tableBytes)), 0, this.length);
    if (!head || this.length < head.bytes) return undefined;
    this.drop(head.tableBytes);
    return head.sizes.map((size) => this.take(size));
  }
}
