/**
 * The users file read from its bytes, for the common case of a big file: ASCII throughout, in
 * one of the four formats' plain shapes. Decoding 50 MB to a string costs ~150 ms here (every
 * fresh page of memory is a fault on these VMs), so the bytes are parsed where they lie, and
 * each name and PSK is pointed at there (bytes in shared memory: user-store.ts's builder in
 * place) or copied once into the store. At the first thing outside the plain shape (a
 * byte above 0x7f, a quote, an escape, odd whitespace, an empty field, any error) it gives up
 * and returns undefined: the text parser (users-parse.ts) then reads the file and decides and
 * words everything, so this path changes speed, never a verdict (test/snell/users-fuzz.test.ts).
 */
import type { UserStoreBuilder, UsersFormat } from './user-store.js';
import { detectUsersFormat, isAsciiSpace } from './users-parse.js';

const NEWLINE = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const TAB = 0x09;

/** Not plain: the text parser takes the file. */
class NotPlain extends Error {}

const notPlain = new NotPlain();

function isJsonSpace(b: number): boolean {
  return b === SPACE || b === NEWLINE || b === CR || b === TAB;
}

/** The format, as detectUsersFormat would say, when the file opens plainly (ASCII, no BOM). */
function plainFormat(bytes: Uint8Array): UsersFormat | undefined {
  let i = 0;
  while (i < bytes.length && isJsonSpace(bytes[i]!)) i++;
  if (i === bytes.length || bytes[i]! >= 0x80) return undefined;
  if (bytes[i] === 0x5b) return 'json';
  if (bytes[i] === 0x7b) return 'jsonl';
  let end = i;
  while (end < bytes.length && bytes[end] !== NEWLINE) end++;
  for (let k = i; k < end; k++) if (bytes[k]! >= 0x80) return undefined;
  // ASCII from here: the first line as text says csv or colon as it would for the whole file.
  return detectUsersFormat(Buffer.from(bytes.buffer, bytes.byteOffset + i, end - i).toString('latin1'));
}

/** The users and their lines, or undefined when the file is not plain. */
export function readPlainBytes(bytes: Uint8Array, builder: UserStoreBuilder): { format: UsersFormat; lines: number[] } | undefined {
  const format = plainFormat(bytes);
  if (!format) return undefined;
  try {
    const lines = format === 'json' ? jsonArray(bytes, builder) : rows(bytes, format, builder);
    return lines.length > 0 ? { format, lines } : undefined;
  } catch (error) {
    if (error instanceof NotPlain) return undefined;
    throw error;
  }
}

/** name:psk or CSV rows, or JSON Lines: each row [start, end) without its CR. */
function rows(bytes: Uint8Array, format: UsersFormat, builder: UserStoreBuilder): number[] {
  const lines: number[] = [];
  let headerPending = format === 'csv';
  for (let start = 0, row = 1; start <= bytes.length; row++) {
    // A loop, not Buffer#indexOf: a native call per row costs more than the row's bytes.
    let newline = start;
    while (newline < bytes.length && bytes[newline] !== NEWLINE) newline++;
    const end = newline > start && bytes[newline - 1] === CR ? newline - 1 : newline;
    const rowStart = start;
    start = newline + 1;
    if (rowStart === end) continue;
    const first = bytes[rowStart]!;
    // A row that starts with a space could be blank, or a name to trim: the text parser's call.
    if (first <= SPACE || first >= 0x7f) throw notPlain;
    if (headerPending) {
      headerPending = false;
      continue;
    }
    if (format === 'jsonl') jsonRow(bytes, rowStart, end, builder);
    else if (first === 0x23 && format === 'colon') continue; // a comment
    else separatedRow(bytes, rowStart, end, format === 'colon' ? 0x3a : 0x2c, builder, format === 'csv');
    lines.push(row);
  }
  return lines;
}

/** name<separator>psk: the name up to the first separator, trailing spaces trimmed; the PSK the rest. */
function separatedRow(bytes: Uint8Array, start: number, end: number, separator: number, builder: UserStoreBuilder, quotesMatter: boolean): void {
  let at = -1;
  for (let i = start; i < end; i++) {
    const b = bytes[i]!;
    if (b >= 0x80 || (b === 0x22 && quotesMatter)) throw notPlain;
    if (b === separator && at < 0) at = i;
  }
  if (at <= start || at + 1 >= end) throw notPlain;
  let nameEnd = at;
  while (nameEnd > start && isAsciiSpace(bytes[nameEnd - 1]!)) nameEnd--;
  builder.addBytes(bytes, start, nameEnd, at + 1, end);
}

// The newlines passed in the JSON: module state, touched only at a newline. The reader's
// position is a local passed from function to function (a module variable is a memory slot
// the compiled loop reads and writes at every byte; a local stays in a register).
let line = 1;

/** A JSON array of plain {"name": "...", "psk": "..."} objects; every newline is in whitespace. */
function jsonArray(bytes: Uint8Array, builder: UserStoreBuilder): number[] {
  const lines: number[] = [];
  line = 1;
  let at = expect(bytes, skipSpace(bytes, 0), 0x5b);
  for (;;) {
    at = skipSpace(bytes, at);
    lines.push(line);
    at = skipSpace(bytes, jsonObject(bytes, at, bytes.length, builder));
    const next = bytes[at++];
    if (next === 0x5d) break;
    if (next !== 0x2c) throw notPlain;
  }
  if (skipSpace(bytes, at) !== bytes.length) throw notPlain;
  return lines;
}

const NAME_KEY = [0x22, 0x6e, 0x61, 0x6d, 0x65, 0x22]; // "name"
const PSK_KEY = [0x22, 0x70, 0x73, 0x6b, 0x22]; // "psk"

/** A JSON Lines row [start, end): one plain object, then only spaces. */
function jsonRow(bytes: Uint8Array, start: number, end: number, builder: UserStoreBuilder): void {
  for (let i = jsonObject(bytes, start, end, builder); i < end; i++) if (bytes[i] !== SPACE && bytes[i] !== TAB && bytes[i] !== CR) throw notPlain;
}

/**
 * One plain object from `at`: {"name": "...", "psk": "..."} in that order, with JSON whitespace
 * anywhere between tokens, ending by `end`. Returns the position after it.
 */
function jsonObject(bytes: Uint8Array, from: number, end: number, builder: UserStoreBuilder): number {
  let at = skipSpace(bytes, expect(bytes, from, 0x7b));
  at = skipSpace(bytes, expect(bytes, skipSpace(bytes, expectAll(bytes, at, NAME_KEY)), 0x3a));
  const nameStart = at + 1;
  const nameEnd = plainString(bytes, at);
  at = skipSpace(bytes, expect(bytes, skipSpace(bytes, nameEnd + 1), 0x2c));
  at = skipSpace(bytes, expect(bytes, skipSpace(bytes, expectAll(bytes, at, PSK_KEY)), 0x3a));
  const pskStart = at + 1;
  const pskEnd = plainString(bytes, at);
  at = expect(bytes, skipSpace(bytes, pskEnd + 1), 0x7d);
  if (at > end) throw notPlain;
  builder.addBytes(bytes, nameStart, nameEnd, pskStart, pskEnd);
  return at;
}

/** The position of the first byte from `at` that is not JSON whitespace. */
function skipSpace(bytes: Uint8Array, at: number): number {
  for (;;) {
    const b = bytes[at];
    if (b === NEWLINE) line++;
    else if (b !== SPACE && b !== CR && b !== TAB) return at;
    at++;
  }
}

/** The position after `b`, which must be at `at`. */
function expect(bytes: Uint8Array, at: number, b: number): number {
  if (bytes[at] !== b) throw notPlain;
  return at + 1;
}

function expectAll(bytes: Uint8Array, at: number, expected: number[]): number {
  for (const b of expected) at = expect(bytes, at, b);
  return at;
}

/**
 * A non-empty string at `at` (its opening quote) with no escape, no control character and no
 * byte above 0x7f: returns the position of its closing quote.
 */
function plainString(bytes: Uint8Array, at: number): number {
  at = expect(bytes, at, 0x22);
  const start = at;
  for (;;) {
    const b = bytes[at];
    if (b === undefined || b < SPACE || b >= 0x80 || b === 0x5c) throw notPlain;
    if (b === 0x22) break;
    at++;
  }
  if (at === start) throw notPlain;
  return at;
}
