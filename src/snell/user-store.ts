/**
 * The users as a trial scan reads them. Its own module, with no imports, because every scan
 * worker loads it: a worker's start-up is on the path to a scan's first trial.
 */

export interface SnellUser {
  name: string;
  /** The PSK string a client configures; its UTF-8 bytes are the Argon2id password. */
  psk: string;
}

/** The four users-file formats, told apart by their content (users.ts). */
export type UsersFormat = 'json' | 'jsonl' | 'csv' | 'colon';

/**
 * Byte strings in one buffer: string i is bytes[offsets[2i] .. offsets[2i + 1]). A pair per string,
 * not a running offset, so the strings can stay where a users file's bytes put them (in place).
 */
interface Packed {
  bytes: Uint8Array;
  offsets: Uint32Array;
}

// ignoreBOM keeps a leading U+FEFF, which is part of a name or PSK like any other character.
const utf8Decoder = new TextDecoder('utf-8', { ignoreBOM: true });

/**
 * An immutable snapshot of users. PSKs are packed into one shared buffer so the scan workers
 * see a snapshot without copying a million small arrays; names are packed too, and decoded
 * only for the users a result names (a million name strings cost ~40 MiB and the collector's time).
 */
export class UserStore {
  private constructor(
    private readonly names: Packed,
    readonly pskBytes: Uint8Array,
    /** PSK i is pskBytes[pskOffsets[2i] .. pskOffsets[2i + 1]). */
    readonly pskOffsets: Uint32Array,
    /** FNV-1a of each PSK's bytes, for the duplicate check (absent in a worker). */
    private readonly pskHashes?: Int32Array,
  ) {}

  static fromUsers(users: readonly SnellUser[]): UserStore {
    const builder = new UserStoreBuilder();
    for (const user of users) builder.add(user.name, user.psk);
    return builder.finish();
  }

  /** From the builder's buffers. */
  static fromPacked(names: Packed, psks: Packed, pskHashes: Int32Array): UserStore {
    return new UserStore(names, psks.bytes, psks.offsets, pskHashes);
  }

  /** Rebuilds a store from the shared buffers (in a worker thread). Names are not needed there. */
  static fromShared(pskBytes: Uint8Array, pskOffsets: Uint32Array): UserStore {
    return new UserStore({ bytes: new Uint8Array(0), offsets: new Uint32Array(0) }, pskBytes, pskOffsets);
  }

  get size(): number {
    return this.pskOffsets.length >>> 1;
  }

  psk(index: number): Uint8Array {
    return this.pskBytes.subarray(this.pskOffsets[2 * index]!, this.pskOffsets[2 * index + 1]!);
  }

  name(index: number): string {
    return utf8Decoder.decode(this.names.bytes.subarray(this.names.offsets[2 * index]!, this.names.offsets[2 * index + 1]!));
  }

  /**
   * Pairs of users whose PSKs are the same bytes, [later, earlier], the earlier being the first
   * user with that PSK: open addressing over the hashes taken while packing, no string per PSK.
   */
  duplicatePskPairs(): [number, number][] {
    const hashes: Int32Array | undefined = this.pskHashes;
    if (!hashes) throw new Error('duplicatePskPairs: a scan worker\'s copy of the store keeps no hashes');
    let capacity = 1024;
    while (capacity < 2 * this.size) capacity *= 2;
    const mask = capacity - 1;
    const table = new Int32Array(capacity).fill(-1);
    const pairs: [number, number][] = [];
    for (let i = 0; i < this.size; i++) {
      const hash: number = hashes[i]!;
      for (let slot: number = hash & mask; ; slot = (slot + 1) & mask) {
        const j = table[slot]!;
        if (j < 0) {
          table[slot] = i;
          break;
        }
        if (hashes[j] === hash && this.samePsk(i, j)) {
          pairs.push([i, j]);
          break;
        }
      }
    }
    return pairs;
  }

  private samePsk(i: number, j: number): boolean {
    const a = this.pskOffsets[2 * i]!;
    const b = this.pskOffsets[2 * j]!;
    const length = this.pskOffsets[2 * i + 1]! - a;
    if (this.pskOffsets[2 * j + 1]! - b !== length) return false;
    for (let k = 0; k < length; k++) if (this.pskBytes[a + k] !== this.pskBytes[b + k]) return false;
    return true;
  }
}

function hashBytes(bytes: Uint8Array, start: number, end: number): number {
  let hash = 0x811c9dc5 | 0;
  for (let k = start; k < end; k++) hash = Math.imul(hash ^ bytes[k]!, 0x01000193);
  return hash;
}

/** A builder in place was given bytes other than its file's: a bug of the caller's, not bad input. */
function notItsFile(): Error {
  return new Error('UserStoreBuilder: a builder in place takes ranges of its file only');
}

/**
 * A growable list of byte strings: written into its own buffer (`write`, `copy`), or, over a
 * users file's bytes, pointed at where they lie (`point`).
 */
class PackedBuilder {
  bytes: Uint8Array;
  used = 0;
  offsets: Uint32Array;
  count = 0;

  /** `over`: the bytes the strings are pointed at (nothing is written); otherwise a buffer of its own. */
  constructor(capacityBytes: number, capacityCount: number, private readonly shared: boolean, private readonly over?: Uint8Array) {
    this.bytes = over ?? allocate(Uint8Array, Math.max(capacityBytes, 64), shared);
    this.offsets = allocate(Uint32Array, 2 * Math.max(capacityCount, 16), shared);
  }

  /** Room for `bytes` more bytes (a string's room in the offsets is point's to make). */
  reserve(bytes: number): void {
    if (this.used + bytes > this.bytes.length) this.bytes = grown(this.bytes, this.used + bytes, this.shared);
  }

  private reserveString(): void {
    if (2 * this.count + 2 > this.offsets.length) this.offsets = grown(this.offsets, 2 * this.count + 2, this.shared);
  }

  /** Ends the string written since the last one. */
  close(): void {
    this.point(this.count === 0 ? 0 : this.offsets[2 * this.count - 1]!, this.used);
  }

  /** Adds the string bytes[start..end). */
  point(start: number, end: number): void {
    this.reserveString();
    this.offsets[2 * this.count] = start;
    this.offsets[2 * this.count + 1] = end;
    this.count++;
  }

  /** Forgets the strings after the first `count`. */
  rollBack(count: number): void {
    this.count = Math.min(count, this.count);
    this.used = this.count === 0 ? 0 : this.offsets[2 * this.count - 1]!;
  }

  packed(): Packed {
    return { bytes: this.over ?? this.bytes.subarray(0, this.used), offsets: this.offsets.subarray(0, 2 * this.count) };
  }
}

/**
 * Builds a store one user at a time, with no object and no kept string per user, so a million
 * users load in well under a second. Either the names and PSKs are written into packed buffers
 * as UTF-8, the PSKs' into shared memory the scan workers read; or (`inPlace`) the users file's
 * bytes, already in shared memory, are the buffer, and each user is where the file has it.
 */
export class UserStoreBuilder {
  private readonly names: PackedBuilder;
  private readonly psks: PackedBuilder;
  private hashes: Int32Array;
  private readonly encoder = new TextEncoder();

  /** `expectedBytes`: the file's length, so that a file's users need no growing (PSKs are part of it). */
  constructor(expectedBytes = 0, expectedUsers = 0, private readonly source?: Uint8Array) {
    this.names = new PackedBuilder(expectedBytes / 2, expectedUsers, false, source);
    this.psks = new PackedBuilder(expectedBytes, expectedUsers, true, source);
    this.hashes = new Int32Array(Math.max(expectedUsers, 16));
  }

  /**
   * A builder whose users are ranges of `file` (in a SharedArrayBuffer: the workers read the PSKs
   * there), added with addBytes(file, ...). Room for a user per 16 bytes of the file is reserved,
   * not touched (memory is only paid for as it is used): a real row, a name and a PSK, is longer,
   * so nothing is copied to grow; a file of shorter rows grows its offsets as it needs to.
   */
  static inPlace(file: Uint8Array): UserStoreBuilder {
    return new UserStoreBuilder(0, Math.ceil(file.length / 16), file);
  }

  get size(): number {
    return this.psks.count;
  }

  add(name: string, psk: string): void {
    this.addRange(name, 0, name.length, psk, 0, psk.length);
  }

  /**
   * A user whose name is nameText[nameStart..nameEnd) and PSK pskText[pskStart..pskEnd): the
   * characters are copied from the text they were read in, without a string of their own.
   */
  addRange(nameText: string, nameStart: number, nameEnd: number, pskText: string, pskStart: number, pskEnd: number): void {
    if (this.source) throw notItsFile();
    this.write(this.names, nameText, nameStart, nameEnd);
    const pskAt = this.psks.used;
    this.write(this.psks, pskText, pskStart, pskEnd);
    this.closeWritten(pskAt);
  }

  /** A user whose name and PSK are bytes of `source` (UTF-8 already): pointed at in place, or copied once. */
  addBytes(source: Uint8Array, nameStart: number, nameEnd: number, pskStart: number, pskEnd: number): void {
    if (this.source) {
      if (source !== this.source) throw notItsFile();
      this.names.point(nameStart, nameEnd);
      this.psks.point(pskStart, pskEnd);
      this.endUser(source, pskStart, pskEnd);
      return;
    }
    this.copy(this.names, source, nameStart, nameEnd);
    const pskAt = this.psks.used;
    this.copy(this.psks, source, pskStart, pskEnd);
    this.closeWritten(pskAt);
  }

  /** The user just written into the builder's own buffers (its PSK from `pskAt`): both strings closed. */
  private closeWritten(pskAt: number): void {
    this.psks.close();
    this.names.close();
    this.endUser(this.psks.bytes, pskAt, this.psks.used);
  }

  /** The user just added, whose PSK is psk[start..end): its hash, for the duplicate check. */
  private endUser(psk: Uint8Array, start: number, end: number): void {
    const index = this.size - 1;
    if (index >= this.hashes.length) this.hashes = grown(this.hashes, index + 1, false);
    this.hashes[index] = hashBytes(psk, start, end);
  }

  private copy(into: PackedBuilder, source: Uint8Array, start: number, end: number): void {
    into.reserve(end - start);
    const bytes = into.bytes;
    let at = into.used;
    for (let i = start; i < end; i++) bytes[at++] = source[i]!;
    into.used = at;
  }

  /** UTF-8 of text[start..end): a byte per ASCII character, TextEncoder past the first other one. */
  private write(into: PackedBuilder, text: string, start: number, end: number): void {
    // UTF-8 needs at most 3 bytes per UTF-16 unit.
    into.reserve(3 * (end - start));
    const bytes = into.bytes;
    let at = into.used;
    let i = start;
    for (; i < end; i++) {
      const c = text.charCodeAt(i);
      if (c >= 0x80) break;
      bytes[at++] = c;
    }
    if (i < end) at += this.encoder.encodeInto(text.slice(i, end), bytes.subarray(at)).written;
    into.used = at;
  }

  /** Forgets the users added after the first `size`. */
  rollBack(size: number): void {
    this.names.rollBack(size);
    this.psks.rollBack(size);
  }

  finish(): UserStore {
    return UserStore.fromPacked(this.names.packed(), this.psks.packed(), this.hashes.subarray(0, this.size));
  }
}

function allocate<T extends Uint8Array | Uint32Array | Int32Array>(type: new (buffer: ArrayBufferLike) => T, length: number, shared: boolean): T {
  const bytesPer = type === (Uint8Array as unknown) ? 1 : 4;
  return new type(shared ? new SharedArrayBuffer(length * bytesPer) : new ArrayBuffer(length * bytesPer));
}

function grown<T extends Uint8Array | Uint32Array | Int32Array>(array: T, atLeast: number, shared: boolean): T {
  let length = array.length * 2;
  while (length < atLeast) length *= 2;
  const next = allocate(array.constructor as new (buffer: ArrayBufferLike) => T, length, shared);
  next.set(array);
  return next;
}
