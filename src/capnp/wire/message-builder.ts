/**
 * Building a Cap'n Proto message (docs/proksi-external-auth.md §6, Writer): one segment, grown as
 * objects are allocated, with the frame's segment table kept in front so that finishing the frame
 * copies nothing.
 */
import { WORD } from './framing.js';

/** A single-segment message builder (the file's header says how it grows and why it copies nothing). */
export class MessageBuilder {
  private buffer: Buffer;
  private view: DataView;
  private used = 1; // word 0 is the root pointer

  /**
   * `initialBytes` is a guess at the frame's size (it grows past it). Memory comes from Node's
   * shared pool (allocUnsafe, then zeroed): Buffer.alloc makes a new ArrayBuffer per message,
   * which costs about 2 µs and GC work, as much as encoding a whole call.
   */
  constructor(initialBytes = 512) {
    this.buffer = zeroed(Math.max(16, Math.ceil(initialBytes / WORD) * WORD));
    this.view = new DataView(this.buffer.buffer, this.buffer.byteOffset, this.buffer.byteLength);
  }

  /** Allocates `words` zeroed words; returns the first word's index within the segment. */
  allocate(words: number): number {
    const at = this.used;
    this.used += words;
    if ((this.used + 1) * WORD > this.buffer.length) {
      let size = this.buffer.length * 2;
      while (size < (this.used + 1) * WORD) size *= 2;
      const grown = zeroed(size);
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

  /**
   * A list pointer at word `at` to a list starting at word `target`: element size tag 2 (bytes)
   * with `count` elements, or 7 (inline composite) with `count` words after the tag word.
   */
  setListPointer(at: number, target: number, sizeTag: 2 | 7, count: number): void {
    this.setPointer(at, (((target - at - 1) << 2) | 1) >>> 0, ((count << 3) | sizeTag) >>> 0);
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
    // Short ASCII text, the usual case, is copied char by char: cheaper than byteLength + write.
    if (text.length <= 64) {
      const start = this.allocate(Math.ceil((text.length + 1) / WORD));
      const at = this.offset(start);
      const buffer = this.buffer;
      let i = 0;
      for (; i < text.length; i++) {
        const c = text.charCodeAt(i);
        if (c >= 0x80) break;
        buffer[at + i] = c;
      }
      if (i === text.length) return { start, length: i };
      // Not ASCII: take the allocation back (it is the last one) and its bytes, and encode.
      buffer.fill(0, at, at + i);
      this.used = start;
    }
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

function zeroed(bytes: number): Buffer {
  return Buffer.allocUnsafe(bytes).fill(0);
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
    this.builder.setListPointer(at, start, 2, length + 1);
    return this;
  }

  initStructList(index: number, count: number, dataWords: number, ptrCount: number): StructBuilder[] {
    const at = this.pointerWord(index);
    const size = dataWords + ptrCount;
    const tag = this.builder.allocate(1 + count * size);
    this.builder.setListPointer(at, tag, 7, count * size);
    this.builder.setPointer(tag, (count << 2) >>> 0, (ptrCount << 16) | dataWords);
    const elements: StructBuilder[] = [];
    for (let i = 0; i < count; i++) elements.push(new StructBuilder(this.builder, tag + 1 + i * size, dataWords, ptrCount));
    return elements;
  }

  /** An "other" pointer naming capability `capIndex` of the payload's cap table. */
  setCapability(index: number, capIndex: number): this {
    this.builder.setPointer(this.pointerWord(index), 3, capIndex);
    return this;
  }
}
