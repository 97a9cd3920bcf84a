/**
 * The one way authkit reads a file it is given (users, rules, fixtures, captures, pcap, logs,
 * certificates), at start and on every reload: regular files only, up to a size cap, without
 * blocking. A FIFO would block a plain read forever and /dev/zero would never end; both are one
 * clear error instead, and a reload that meets one keeps the last good snapshot.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import { cannotWrite, describeFsError, InputError } from './errors.js';

/** 1 GiB: far above any real users file (1,000,000 users are ~60 MB), far below what hurts. */
export const DEFAULT_MAX_FILE_BYTES = 1 << 30;

export interface ReadLimits {
  /** Bytes at most; default DEFAULT_MAX_FILE_BYTES. */
  maxBytes?: number;
  /** The flag that raises the cap, named in the error (e.g. --max-file-size). */
  capFlag?: string;
}

/** Why a file cannot be read; the message names the path, `why` does not. */
export class FileReadError extends InputError {
  constructor(readonly path: string, readonly why: string) {
    super(`${path}: ${why}`);
  }
}

// O_NONBLOCK: opening a FIFO for reading must not wait for a writer.
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;
const CHUNK = 1 << 20;

function kindOf(stats: Stats): string | undefined {
  if (stats.isFile()) return undefined;
  if (stats.isFIFO()) return 'a FIFO';
  if (stats.isDirectory()) return 'a directory';
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return 'a device';
  if (stats.isSocket()) return 'a socket';
  return 'not a regular file';
}

function refuse(path: string, why: string): never {
  throw new FileReadError(path, why);
}

function overCap(path: string, size: string, max: number, limits: ReadLimits): never {
  return refuse(path, `${size}over the ${max}-byte limit${limits.capFlag ? ` (${limits.capFlag})` : ''}`);
}

function checkStats(path: string, stats: Stats, limits: ReadLimits): number {
  const kind = kindOf(stats);
  if (kind) refuse(path, `${kind}, not a regular file`);
  const max = limits.maxBytes ?? DEFAULT_MAX_FILE_BYTES;
  if (stats.size > max) overCap(path, `${stats.size} bytes, `, max, limits);
  return max;
}

export interface ReadInto {
  /**
   * Into a SharedArrayBuffer, for bytes that worker threads will read where they lie (a users
   * file's PSKs). Only a file read in one piece is: one that grew while it was read is joined
   * into an ordinary buffer, and the caller copies from it.
   */
  shared?: boolean;
}

/** The whole file, asynchronously (a reload never holds the event loop). */
export async function readBoundedFile(path: string, limits: ReadLimits = {}, into: ReadInto = {}): Promise<Buffer> {
  let handle;
  try {
    handle = await open(path, OPEN_FLAGS);
  } catch (error) {
    return refuse(path, describeFsError(error));
  }
  try {
    const stats = await handle.stat();
    const chunks = new CappedChunks(path, checkStats(path, stats, limits), limits, stats.size, into.shared);
    for (let buffer = chunks.next(); chunks.add((await handle.read(buffer, 0, buffer.length, null)).bytesRead); buffer = chunks.next());
    return chunks.whole();
  } finally {
    await handle.close();
  }
}

/** The chunks of one read, held to the cap: a file that grows while it is read is held to it too. */
class CappedChunks {
  private readonly chunks: Buffer[] = [];
  private buffer: Buffer = Buffer.alloc(0);
  private total = 0;

  constructor(private readonly path: string, private readonly max: number, private readonly limits: ReadLimits, private readonly expected = 0, private readonly shared = false) {}

  /**
   * A buffer for the next read. The first one holds the whole file as stat saw it, and a byte
   * more to see its end, so a file is read in one call with no copy (a 50 MB users file included).
   */
  next(): Buffer {
    const size = this.total === 0 && this.expected > 0 ? Math.min(this.expected, this.max) + 1 : CHUNK;
    this.buffer = this.total === 0 && this.shared ? Buffer.from(new SharedArrayBuffer(size)) : Buffer.allocUnsafe(size);
    return this.buffer;
  }

  /** Takes what the read put in the buffer; false at the end of the file. */
  add(bytesRead: number): boolean {
    if (bytesRead === 0) return false;
    this.total += bytesRead;
    if (this.total > this.max) overCap(this.path, '', this.max, this.limits);
    this.chunks.push(this.buffer.subarray(0, bytesRead));
    return true;
  }

  whole(): Buffer {
    return this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.total);
  }
}

/** The same, synchronously, for the one-shot commands. */
export function readBoundedFileSync(path: string, limits: ReadLimits = {}): Buffer {
  let fd: number;
  try {
    fd = openSync(path, OPEN_FLAGS);
  } catch (error) {
    return refuse(path, describeFsError(error));
  }
  try {
    const stats = fstatSync(fd);
    const chunks = new CappedChunks(path, checkStats(path, stats, limits), limits, stats.size);
    for (let buffer = chunks.next(); chunks.add(readSync(fd, buffer, 0, buffer.length, null)); buffer = chunks.next());
    return chunks.whole();
  } finally {
    closeSync(fd);
  }
}

/** The cap a command's `--max-file-size` sets (its default when not given). */
export function maxFileSizeLimits(text: string | undefined): ReadLimits {
  return { maxBytes: text === undefined ? undefined : parseByteSize(text, '--max-file-size'), capFlag: '--max-file-size' };
}

/** `text` as a byte count: 1048576, 512k, 64M, 1G (binary units). */
export function parseByteSize(text: string, flag: string): number {
  const match = /^\s*(\d+)\s*([kKmMgG]i?[bB]?)?\s*$/.exec(text);
  const unit = match?.[2]?.[0]?.toLowerCase();
  const value = match ? Number(match[1]) * (unit === 'k' ? 1 << 10 : unit === 'm' ? 1 << 20 : unit === 'g' ? 1 << 30 : 1) : NaN;
  if (!(value >= 1 && Number.isSafeInteger(value))) throw new InputError(`${flag}: expected a size like 1048576, 512k, 64M or 1G, got "${text}"`);
  return value;
}

/** `bytes` as parseByteSize reads it back: 64M, 512k, or a plain count. */
export function byteSizeText(bytes: number): string {
  for (const [unit, size] of [['G', 1 << 30], ['M', 1 << 20], ['k', 1 << 10]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return bytes === 1 ? '1 byte' : `${bytes} bytes`;
}

/** A file a flag names, opened for writing now (before a run), or one line naming the flag. */
export function openForWrite(path: string, flag: string): number {
  try {
    return openSync(path, 'w');
  } catch (error) {
    throw cannotWrite(flag, path, error);
  }
}
