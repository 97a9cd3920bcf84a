/**
 * Reading a Cap'n Proto message (docs/proksi-external-auth.md §6, Reader): near, single-far and
 * double-far pointers followed across all segments (capnp-rust and C++ spread large requests over
 * several), missing fields of short structs read as defaults, and every object charged against a
 * traversal budget per message so that a small message cannot make the reader visit much more
 * (§8). Layouts come from `capnp compile -ocapnp`.
 */
import { DecodeError } from '../../shared/errors.js';
import { WORD } from './framing.js';

/** C++'s default traversal limit: 8 Mi words (64 MiB) per message. */
export const DEFAULT_TRAVERSAL_WORDS = 8 * 1024 * 1024;

export class MessageReader {
  private readonly views: DataView[];
  /** The segments as Buffers, for decoding ASCII text without a copy. */
  private readonly buffers: Buffer[];
  private budget: number;

  constructor(readonly segments: readonly Uint8Array[], traversalWords = DEFAULT_TRAVERSAL_WORDS) {
    this.views = segments.map((s) => new DataView(s.buffer, s.byteOffset, s.byteLength));
    this.buffers = segments.map((s) => (Buffer.isBuffer(s) ? s : Buffer.from(s.buffer, s.byteOffset, s.byteLength)));
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

  /** Resolves the pointer at (segment, at), which must be null or of `kind`. */
  private resolveAs(kind: 'struct' | 'list', segment: number, at: number): ReturnType<MessageReader['resolve']> {
    const p = this.resolve(segment, at);
    if (p && (p.lo & 3) !== (kind === 'struct' ? 0 : 1)) throw new DecodeError('capnp message', at * WORD, `expected a ${kind} pointer`);
    return p;
  }

  readStruct(segment: number, at: number): StructReader | undefined {
    const p = this.resolveAs('struct', segment, at);
    if (!p) return undefined;
    const { dataWords, ptrCount } = structSize(p.hi);
    this.checkRange(p.segment, p.target, dataWords + ptrCount, at);
    this.charge(dataWords + ptrCount, at);
    return new StructReader(this, p.segment, p.target, dataWords, ptrCount);
  }

  readList(segment: number, at: number): ListReader | undefined {
    const p = this.resolveAs('list', segment, at);
    if (!p) return undefined;
    const size = p.hi & 7;
    const count = p.hi >>> 3;
    if (size === 7) {
      this.checkRange(p.segment, p.target, count + 1, at);
      const [tagLo, tagHi] = this.word(p.segment, p.target);
      const elements = tagLo >>> 2;
      const { dataWords, ptrCount } = structSize(tagHi);
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

  byteAt(segment: number, offset: number): number {
    return this.buffers[segment]![offset]!;
  }

  /**
   * The `length` bytes at word `start` as a string when they are all ASCII (the usual case, read
   * without a copy or a decoder call), else undefined.
   */
  ascii(segment: number, start: number, length: number): string | undefined {
    const buffer = this.buffers[segment]!;
    const from = start * WORD;
    for (let i = from; i < from + length; i++) if (buffer[i]! >= 0x80) return undefined;
    return buffer.toString('latin1', from, from + length);
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

/** The upper half of a struct pointer (or of an inline composite list's tag): the struct's size. */
function structSize(hi: number): { dataWords: number; ptrCount: number } {
  return { dataWords: hi & 0xffff, ptrCount: hi >>> 16 };
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

  /** The list pointer `index` points at, with the pointer's word for errors; undefined for null or absent. */
  private list(index: number): { at: number; list: ListReader } | undefined {
    const at = this.pointerWord(index);
    if (at === undefined) return undefined;
    const list = this.message.readList(this.segment, at);
    return list && { at, list };
  }

  /** Whether a Text field is valid UTF-8 (Rust's capnp refuses it otherwise). */
  textIsUtf8(index: number): boolean {
    const list = this.list(index)?.list;
    if (!list || list.kind !== 'bytes' || list.count === 0) return true;
    if (this.message.ascii(list.segment, list.start, list.count - 1) !== undefined) return true;
    try {
      strictUtf8.decode(this.message.bytes(list.segment, list.start, list.count - 1));
      return true;
    } catch {
      return false;
    }
  }

  /** A Text field; null reads as "". Invalid UTF-8 is replaced (textIsUtf8 tells). */
  text(index: number): string {
    const found = this.list(index);
    if (!found) return '';
    const { at, list } = found;
    if (list.kind !== 'bytes' || list.size !== 2) throw new DecodeError('capnp message', at * WORD, 'Text is not a list of bytes');
    if (list.count === 0 || this.message.byteAt(list.segment, list.start * WORD + list.count - 1) !== 0) throw new DecodeError('capnp message', at * WORD, 'Text is not NUL-terminated');
    return this.message.ascii(list.segment, list.start, list.count - 1) ?? utf8.decode(this.message.bytes(list.segment, list.start, list.count - 1));
  }

  structList(index: number): StructReader[] {
    const found = this.list(index);
    if (!found) return [];
    const { at, list } = found;
    if (list.kind !== 'structs') throw new DecodeError('capnp message', at * WORD, 'expected a list of structs');
    const size = list.dataWords + list.ptrCount;
    const elements: StructReader[] = [];
    for (let i = 0; i < list.count; i++) elements.push(new StructReader(this.message, list.segment, list.start + i * size, list.dataWords, list.ptrCount));
    return elements;
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
