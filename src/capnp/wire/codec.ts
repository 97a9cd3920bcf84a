/**
 * The Cap'n Proto encoding, as far as authkit needs it: the stream framing (segment table and
 * segments), a reader that follows near and far pointers over all segments with a traversal
 * limit, and a single-segment writer. Layouts come from `capnp compile -ocapnp`.
 */
import { DecodeError } from '../../shared/errors.js';

const WORD = 8;
/** Limits like C++'s defaults: frames of at most 64 MiB (8 Mi words), fewer than 512 segments. */
export const MAX_SEGMENTS = 511;
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;
export const DEFAULT_TRAVERSAL_WORDS = 8 * 1024 * 1024;

// ---- framing -------------------------------------------------------------------------------

/** Frame = u32 (segment count - 1), u32 size of each segment in words, padding to 8 bytes, segments. */
export function encodeFrame(segments: readonly Uint8Array[]): Uint8Array {
  const tableBytes = 4 * (segments.length + 1) + (segments.length % 2 === 0 ? 4 : 0);
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
    if (first.length >= n) return first.subarray(0, n);
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

  /** Consumes `n` bytes into one new array. */
  private take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const chunk = this.chunks[0]!;
      const part = chunk.subarray(0, n - at);
      out.set(part, at);
      at += part.length;
      if (part.length === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(part.length);
    }
    this.length -= n;
    return out;
  }

  private next(): Uint8Array[] | undefined {
    if (this.length < 4) return undefined;
    const head = this.peek(4);
    const count = new DataView(head.buffer, head.byteOffset, 4).getUint32(0, true) + 1;
    if (count > MAX_SEGMENTS) throw new DecodeError('capnp frame', 0, `${count} segments, at most ${MAX_SEGMENTS}`);
    const tableBytes = 4 * (count + 1) + (count % 2 === 0 ? 4 : 0);
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
    this.take(tableBytes);
    return sizes.map((size) => this.take(size));
  }
}

// ---- reading -------------------------------------------------------------------------------

export class MessageReader {
  private readonly views: DataView[];
  private budget: number;

  constructor(readonly segments: readonly Uint8Array[], traversalWords = DEFAULT_TRAVERSAL_WORDS) {
    this.views = segments.map((s) => new DataView(s.buffer, s.byteOffset, s.byteLength));
    this.budget = traversalWords;
  }

  root(): StructReader {
    const s = this.readStruct(0, 0);
    if (!s) throw new DecodeError('capnp message', 0, 'null root pointer');
    return s;
  }

  /** The word at (segment, word offset) as two u32 halves. */
  private word(segment: number, at: number): [number, number] {
    const view = this.views[segment];
    if (!view || at < 0 || (at + 1) * WORD > view.byteLength) throw new DecodeError('capnp message', at * WORD, `pointer out of bounds of segment ${segment}`);
    return [view.getUint32(at * WORD, true), view.getUint32(at * WORD + 4, true)];
  }

  private charge(words: number, at: number): void {
    this.budget -= Math.max(1, words);
    if (this.budget < 0) throw new DecodeError('capnp message', at * WORD, 'traversal limit exceeded (amplification or a pointer loop)');
  }

  /**
   * Resolves the pointer at (segment, at): returns the segment and word where its target starts
   * and the pointer word that describes it (the landing pad's tag for a double-far pointer).
   */
  private resolve(segment: number, at: number): { segment: number; target: number; lo: number; hi: number } | undefined {
    const [lo, hi] = this.word(segment, at);
    if (lo === 0 && hi === 0) return undefined;
    if ((lo & 3) !== 2) return { segment, target: at + 1 + (lo >> 2), lo, hi };
    const padSegment = hi;
    const padAt = lo >>> 3;
    const [padLo, padHi] = this.word(padSegment, padAt);
    if ((lo & 4) === 0) return { segment: padSegment, target: padAt + 1 + (padLo >> 2), lo: padLo, hi: padHi };
    // Double far: the pad is a far pointer to the content's start, followed by its tag word.
    if ((padLo & 3) !== 2) throw new DecodeError('capnp message', padAt * WORD, 'double-far landing pad is not a far pointer');
    const [tagLo, tagHi] = this.word(padSegment, padAt + 1);
    return { segment: padHi, target: padLo >>> 3, lo: tagLo, hi: tagHi };
  }

  readStruct(segment: number, at: number): StructReader | undefined {
    const p = this.resolve(segment, at);
    if (!p) return undefined;
    if ((p.lo & 3) !== 0) throw new DecodeError('capnp message', at * WORD, 'expected a struct pointer');
    const dataWords = p.hi & 0xffff;
    const ptrCount = p.hi >>> 16;
    this.checkRange(p.segment, p.target, dataWords + ptrCount, at);
    this.charge(dataWords + ptrCount, at);
    return new StructReader(this, p.segment, p.target, dataWords, ptrCount);
  }

  readList(segment: number, at: number): ListReader | undefined {
    const p = this.resolve(segment, at);
    if (!p) return undefined;
    if ((p.lo & 3) !== 1) throw new DecodeError('capnp message', at * WORD, 'expected a list pointer');
    const size = p.hi & 7;
    const count = p.hi >>> 3;
    if (size === 7) {
      this.checkRange(p.segment, p.target, count + 1, at);
      const [tagLo, tagHi] = this.word(p.segment, p.target);
      const elements = tagLo >>> 2;
      const dataWords = tagHi & 0xffff;
      const ptrCount = tagHi >>> 16;
      if (elements * (dataWords + ptrCount) > count) throw new DecodeError('capnp message', p.target * WORD, 'inline composite list larger than its word count');
      // Zero-sized elements take no words: charge each element, or a tiny pointer amplifies
      // into billions of objects (C++: "Message contains amplified list pointer").
      this.charge(Math.max(count, elements), at);
      return { kind: 'structs', segment: p.segment, start: p.target + 1, count: elements, dataWords, ptrCount };
    }
    const bits = [0, 1, 8, 16, 32, 64, 64, 0][size]!;
    const words = Math.ceil((count * bits) / 64);
    this.checkRange(p.segment, p.target, words, at);
    this.charge(size === 0 ? Math.max(words, count) : words, at);
    return { kind: 'bytes', segment: p.segment, start: p.target, count, size };
  }

  private checkRange(segment: number, start: number, words: number, at: number): void {
    const view = this.views[segment];
    if (!view || start < 0 || (start + words) * WORD > view.byteLength) throw new DecodeError('capnp message', at * WORD, `pointer target out of bounds of segment ${segment}`);
  }

  bytes(segment: number, start: number, length: number): Uint8Array {
    return this.segments[segment]!.subarray(start * WORD, start * WORD + length);
  }

  view(segment: number): DataView {
    return this.views[segment]!;
  }

  /** The capability index of an "other" pointer (a capability in a payload's content). */
  readCapability(segment: number, at: number): number | undefined {
    const [lo, hi] = this.word(segment, at);
    if (lo === 0 && hi === 0) return undefined;
    if (lo !== 3) throw new DecodeError('capnp message', at * WORD, 'expected a capability pointer');
    return hi;
  }
}

export type ListReader =
  | { kind: 'structs'; segment: number; start: number; count: number; dataWords: number; ptrCount: number }
  | { kind: 'bytes'; segment: number; start: number; count: number; size: number };

const utf8 = new TextDecoder('utf-8', { fatal: false });
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

export class StructReader {
  constructor(
    readonly message: MessageReader,
    readonly segment: number,
    readonly start: number,
    readonly dataWords: number,
    readonly ptrCount: number,
  ) {}

  /** Fields past the end of a (shorter, older) struct read as their default: zero. */
  private inData(byteOffset: number, size: number): boolean {
    return byteOffset + size <= this.dataWords * WORD;
  }

  u16(byteOffset: number): number {
    return this.inData(byteOffset, 2) ? this.message.view(this.segment).getUint16(this.start * WORD + byteOffset, true) : 0;
  }

  u32(byteOffset: number): number {
    return this.inData(byteOffset, 4) ? this.message.view(this.segment).getUint32(this.start * WORD + byteOffset, true) : 0;
  }

  u64(byteOffset: number): bigint {
    return this.inData(byteOffset, 8) ? this.message.view(this.segment).getBigUint64(this.start * WORD + byteOffset, true) : 0n;
  }

  bool(bit: number): boolean {
    const byte = bit >> 3;
    if (!this.inData(byte, 1)) return false;
    return ((this.message.view(this.segment).getUint8(this.start * WORD + byte) >> (bit & 7)) & 1) === 1;
  }

  private pointerWord(index: number): number | undefined {
    return index < this.ptrCount ? this.start + this.dataWords + index : undefined;
  }

  struct(index: number): StructReader | undefined {
    const at = this.pointerWord(index);
    return at === undefined ? undefined : this.message.readStruct(this.segment, at);
  }

  /** Whether a Text field is valid UTF-8 (Rust's capnp refuses it otherwise). */
  textIsUtf8(index: number): boolean {
    const at = this.pointerWord(index);
    const list = at === undefined ? undefined : this.message.readList(this.segment, at);
    if (!list || list.kind !== 'bytes' || list.count === 0) return true;
    try {
      strictUtf8.decode(this.message.bytes(list.segment, list.start, list.count - 1));
      return true;
    } catch {
      return false;
    }
  }

  /** A Text field; null reads as "". Invalid UTF-8 is replaced (textIsUtf8 tells). */
  text(index: number): string {
    const at = this.pointerWord(index);
    if (at === undefined) return '';
    const list = this.message.readList(this.segment, at);
    if (!list) return '';
    if (list.kind !== 'bytes' || list.size !== 2) throw new DecodeError('capnp message', at * WORD, 'Text is not a list of bytes');
    const bytes = this.message.bytes(list.segment, list.start, list.count);
    if (bytes.length === 0 || bytes[bytes.length - 1] !== 0) throw new DecodeError('capnp message', at * WORD, 'Text is not NUL-terminated');
    return utf8.decode(bytes.subarray(0, bytes.length - 1));
  }

  structList(index: number): StructReader[] {
    const at = this.pointerWord(index);
    if (at === undefined) return [];
    const list = this.message.readList(this.segment, at);
    if (!list) return [];
    if (list.kind !== 'structs') throw new DecodeError('capnp message', at * WORD, 'expected a list of structs');
    const size = list.dataWords + list.ptrCount;
    return Array.from({ length: list.count }, (_, i) => new StructReader(this.message, list.segment, list.start + i * size, list.dataWords, list.ptrCount));
  }

  /** Whether pointer `index` is a capability ("other") pointer; capabilities are never behind far pointers. */
  isCapability(index: number): boolean {
    const at = this.pointerWord(index);
    if (at === undefined) return false;
    const view = this.message.view(this.segment);
    return (at + 1) * WORD <= view.byteLength && (view.getUint32(at * WORD, true) & 3) === 3;
  }

  capability(index: number): number | undefined {
    const at = this.pointerWord(index);
    return at === undefined ? undefined : this.message.readCapability(this.segment, at);
  }

  /** The raw pointer location, for an AnyPointer field read as something specific. */
  pointerAt(index: number): { segment: number; at: number } | undefined {
    const at = this.pointerWord(index);
    return at === undefined ? undefined : { segment: this.segment, at };
  }
}

// ---- writing -------------------------------------------------------------------------------


/**
 * A single-segment message builder; the segment grows as objects are allocated. The frame's
 * 8-byte segment table is kept in front of the segment, so finishing the frame copies nothing.
 */
export class MessageBuilder {
  private buffer: Buffer = Buffer.alloc(512);
  private view = new DataView(this.buffer.buffer, this.buffer.byteOffset, this.buffer.byteLength);
  private used = 1; // word 0 is the root pointer

  /** Allocates `words` zeroed words; returns the first word's index within the segment. */
  allocate(words: number): number {
    const at = this.used;
    this.used += words;
    if ((this.used + 1) * WORD > this.buffer.length) {
      let size = this.buffer.length * 2;
      while (size < (this.used + 1) * WORD) size *= 2;
      const grown = Buffer.alloc(size);
      this.buffer.copy(grown);
      this.buffer = grown;
      this.view = new DataView(grown.buffer, grown.byteOffset, grown.byteLength);
    }
    return at;
  }

  initRoot(dataWords: number, ptrCount: number): StructBuilder {
    return this.initStructAt(0, dataWords, ptrCount);
  }

  initStructAt(pointerWord: number, dataWords: number, ptrCount: number): StructBuilder {
    const start = this.allocate(dataWords + ptrCount);
    // An empty struct points at itself (offset -1), so that it is not the null pointer.
    const offset = dataWords + ptrCount === 0 ? -1 : start - pointerWord - 1;
    this.setPointer(pointerWord, (offset << 2) >>> 0, (ptrCount << 16) | dataWords);
    return new StructBuilder(this, start, dataWords, ptrCount);
  }

  setPointer(at: number, lo: number, hi: number): void {
    this.view.setUint32(WORD + at * WORD, lo >>> 0, true);
    this.view.setUint32(WORD + at * WORD + 4, hi >>> 0, true);
  }

  /** Byte offset in the buffer of segment word `word`. */
  offset(word: number): number {
    return WORD + word * WORD;
  }

  dataView(): DataView {
    return this.view;
  }

  /** Writes `text` as UTF-8 and a NUL at a fresh allocation; returns its start word and byte length. */
  writeText(text: string): { start: number; length: number } {
    const length = Buffer.byteLength(text, 'utf8');
    const start = this.allocate(Math.ceil((length + 1) / WORD));
    this.buffer.write(text, this.offset(start), 'utf8');
    return { start, length };
  }

  /** The finished message as one frame: the segment table (1 segment) and the segment. */
  frame(): Uint8Array {
    this.view.setUint32(0, 0, true);
    this.view.setUint32(4, this.used, true);
    return this.buffer.subarray(0, (this.used + 1) * WORD);
  }
}

export class StructBuilder {
  constructor(
    readonly builder: MessageBuilder,
    readonly start: number,
    readonly dataWords: number,
    readonly ptrCount: number,
  ) {}

  setU16(byteOffset: number, value: number): this {
    this.builder.dataView().setUint16(this.builder.offset(this.start) + byteOffset, value, true);
    return this;
  }

  setU32(byteOffset: number, value: number): this {
    this.builder.dataView().setUint32(this.builder.offset(this.start) + byteOffset, value >>> 0, true);
    return this;
  }

  setU64(byteOffset: number, value: bigint): this {
    this.builder.dataView().setBigUint64(this.builder.offset(this.start) + byteOffset, value, true);
    return this;
  }

  setBool(bit: number, value: boolean): this {
    const at = this.builder.offset(this.start) + (bit >> 3);
    const view = this.builder.dataView();
    const byte = view.getUint8(at);
    view.setUint8(at, value ? byte | (1 << (bit & 7)) : byte & ~(1 << (bit & 7)));
    return this;
  }

  private pointerWord(index: number): number {
    if (index >= this.ptrCount) throw new RangeError(`pointer ${index} of a struct with ${this.ptrCount}`);
    return this.start + this.dataWords + index;
  }

  initStruct(index: number, dataWords: number, ptrCount: number): StructBuilder {
    return this.builder.initStructAt(this.pointerWord(index), dataWords, ptrCount);
  }

  setText(index: number, text: string): this {
    const at = this.pointerWord(index);
    const { start, length } = this.builder.writeText(text);
    this.builder.setPointer(at, (((start - at - 1) << 2) | 1) >>> 0, (((length + 1) << 3) | 2) >>> 0);
    return this;
  }

  initStructList(index: number, count: number, dataWords: number, ptrCount: number): StructBuilder[] {
    const at = this.pointerWord(index);
    const size = dataWords + ptrCount;
    const tag = this.builder.allocate(1 + count * size);
    this.builder.setPointer(at, (((tag - at - 1) << 2) | 1) >>> 0, (((count * size) << 3) | 7) >>> 0);
    this.builder.setPointer(tag, (count << 2) >>> 0, (ptrCount << 16) | dataWords);
    return Array.from({ length: count }, (_, i) => new StructBuilder(this.builder, tag + 1 + i * size, dataWords, ptrCount));
  }

  /** An "other" pointer naming capability `capIndex` of the payload's cap table. */
  setCapability(index: number, capIndex: number): this {
    this.builder.setPointer(this.pointerWord(index), 3, capIndex);
    return this;
  }
}
