/**
 * The four users-file formats, read as text into a UserStoreBuilder: every file that is not
 * plain ASCII (users-bytes.ts reads those from their bytes), every reload's text, and
 * parseUsers. The common shapes still avoid an object per user and an array of rows: the text
 * is walked line by line, and a JSON array of plain {"name": "...", "psk": "..."} entries is
 * read with one sticky pattern. Anything else (quotes in CSV, escapes or other keys in JSON, odd
 * whitespace) takes the general path, which decides and words every error exactly as before.
 */
import { InputError } from '../shared/errors.js';
import { arrayElementLines, parseJsonText } from '../shared/json.js';
import type { UserStoreBuilder, UsersFormat } from './user-store.js';

const where = (label: string, line: number | string): string => `${label}:${line}`;

/** The format, from the content: a JSON array, JSON Lines, CSV with a name,psk header, or name:psk lines. */
export function detectUsersFormat(text: string): UsersFormat {
  const first = text.trimStart()[0];
  if (first === '[') return 'json';
  if (first === '{') return 'jsonl';
  const firstLine = text.trimStart().split(/\r?\n/, 1)[0] ?? '';
  return /^"?name"?\s*,\s*"?psk"?\s*$/i.test(firstLine.trim()) ? 'csv' : 'colon';
}

/** Lines of name:psk, CSV after its header, or JSON Lines; returns each user's line. */
export function readLines(text: string, label: string, format: Exclude<UsersFormat, 'json'>, builder: UserStoreBuilder): number[] {
  const lines: number[] = [];
  let headerPending = format === 'csv';
  for (let start = 0, line = 1; start <= text.length; line++) {
    let newline = text.indexOf('\n', start);
    if (newline < 0) newline = text.length;
    const end = newline > start && text.charCodeAt(newline - 1) === 13 ? newline - 1 : newline;
    const rowStart = start;
    start = newline + 1;
    if (!headerPending && format !== 'jsonl' && plainRow(text, rowStart, end, format, builder)) {
      lines.push(line);
      continue;
    }
    const row = text.slice(rowStart, end);
    if (isBlank(row) || (format === 'colon' && isComment(row))) continue;
    // A CSV file's first row with content is its name,psk header.
    if (headerPending) {
      headerPending = false;
      continue;
    }
    if (format === 'colon') readColonRow(row, label, line, builder);
    else if (format === 'csv') readCsvRow(row, label, line, builder);
    else readJsonLine(row, label, line, builder);
    lines.push(line);
  }
  return lines;
}

/**
 * The common row, read in place: it starts with a visible ASCII character, has its separator,
 * a name whose end needs no Unicode trimming and a non-empty PSK, and in CSV no quote. False
 * for anything else (and for a comment), which the general path then reads or refuses.
 */
function plainRow(text: string, start: number, end: number, format: 'colon' | 'csv', builder: UserStoreBuilder): boolean {
  const first = text.charCodeAt(start);
  if (!(first > 32 && first < 127) || first === 35 || first === 34) return false;
  let separator = -1;
  if (format === 'colon') {
    separator = text.indexOf(':', start);
    if (separator >= end) separator = -1;
  } else {
    for (let i = start; i < end; i++) {
      const c = text.charCodeAt(i);
      if (c === 34) return false;
      if (c === 44 && separator < 0) separator = i;
    }
  }
  if (separator <= start || separator + 1 >= end) return false;
  // The first character is visible, so the name is not empty once trimmed.
  let nameEnd = separator;
  while (isAsciiSpace(text.charCodeAt(nameEnd - 1))) nameEnd--;
  if (text.charCodeAt(nameEnd - 1) >= 0x80) return false;
  builder.addRange(text, start, nameEnd, text, separator + 1, end);
  return true;
}

/** row.trim() === '', without trimming a row that starts with a visible ASCII character. */
function isBlank(row: string): boolean {
  const first = row.charCodeAt(0);
  if (first > 32 && first < 127) return false;
  return row.trim() === '';
}

function isComment(row: string): boolean {
  return row.charCodeAt(0) === 35 || row.trimStart().startsWith('#');
}

/** The ASCII characters String.prototype.trim removes. */
export function isAsciiSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}

function readColonRow(row: string, label: string, line: number, builder: UserStoreBuilder): void {
  const colon = row.indexOf(':');
  if (colon < 0) throw new InputError(`${where(label, line)}: expected name:psk`);
  const name = row.slice(0, colon).trim();
  const psk = row.slice(colon + 1);
  if (name === '') throw new InputError(`${where(label, line)}: empty name`);
  if (psk === '') throw new InputError(`${where(label, line)}: empty psk`);
  builder.add(name, psk);
}

function readCsvRow(row: string, label: string, line: number, builder: UserStoreBuilder): void {
  // Without a quote, the name ends at the first comma and the PSK is the rest, commas and all.
  const comma = row.indexOf(',');
  const [name, psk] = comma >= 0 && row.indexOf('"') < 0 ? [row.slice(0, comma), row.slice(comma + 1)] : csvFields(row, where(label, line));
  if (name.trim() === '') throw new InputError(`${where(label, line)}: empty name`);
  if (psk === '') throw new InputError(`${where(label, line)}: empty psk`);
  builder.add(name.trim(), psk);
}

/** Two fields, either of which may be double-quoted with "" escapes (a PSK may contain commas). */
function csvFields(row: string, place: string): [string, string] {
  const fields: string[] = [];
  let at = 0;
  while (at <= row.length) {
    if (row[at] === '"') {
      let value = '';
      let i = at + 1;
      for (;;) {
        const quote = row.indexOf('"', i);
        if (quote < 0) throw new InputError(`${place}: unterminated quoted field`);
        value += row.slice(i, quote);
        if (row[quote + 1] === '"') {
          value += '"';
          i = quote + 2;
        } else {
          at = quote + 1;
          break;
        }
      }
      fields.push(value);
      if (at < row.length && row[at] !== ',') throw new InputError(`${place}: text after a quoted field`);
    } else {
      const comma = fields.length === 0 ? row.indexOf(',', at) : -1;
      const end = comma < 0 ? row.length : comma;
      fields.push(row.slice(at, end));
      at = end;
    }
    at += 1;
  }
  if (fields.length !== 2) throw new InputError(`${place}: expected 2 fields name,psk, found ${fields.length}`);
  return fields as [string, string];
}

// JSON whitespace only (JavaScript's \s also takes Unicode spaces, which JSON.parse refuses), and
// strings with no escape and no control character, for which the text is the value.
const WS = '[ \\t\\r\\n]*';
const PLAIN = '"([^"\\\\\\u0000-\\u001f]+)"';
const ENTRY = `\\{${WS}"name"${WS}:${WS}${PLAIN}${WS},${WS}"psk"${WS}:${WS}${PLAIN}${WS}\\}`;
const JSON_LINE = new RegExp(`^${WS}${ENTRY}${WS}$`);

function readJsonLine(row: string, label: string, line: number, builder: UserStoreBuilder): void {
  const plain = JSON_LINE.exec(row);
  if (plain) {
    builder.add(plain[1]!, plain[2]!);
    return;
  }
  const user = checkedUser(parseJsonText(row, label, line), where(label, line));
  builder.add(user.name, user.psk);
}

function checkedUser(value: unknown, at: string): { name: string; psk: string } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InputError(`${at}: expected an object {"name","psk"}`);
  const { name, psk } = value as Record<string, unknown>;
  if (typeof name !== 'string' || name === '') throw new InputError(`${at}: "name" must be a non-empty string`);
  if (typeof psk !== 'string' || psk === '') throw new InputError(`${at}: "psk" must be a non-empty string`);
  return { name, psk };
}

const ARRAY_OPEN = new RegExp(`${WS}\\[`, 'y');
/** One entry and what follows it: `,` (another entry) or `]` (the end). */
const ARRAY_ENTRY = new RegExp(`(${WS})${ENTRY}${WS}([,\\]])`, 'y');
const ARRAY_TAIL = new RegExp(`${WS}$`, 'y');

/** A JSON array of {"name","psk"}; returns the line each entry starts on. */
export function readJsonArray(text: string, label: string, builder: UserStoreBuilder): number[] {
  const before = builder.size;
  const lines = readPlainJsonArray(text, builder);
  if (lines) return lines;
  // Not the plain shape: the general path reads (or refuses) the file as a whole.
  builder.rollBack(before);
  const value = parseJsonText(text, label);
  if (!Array.isArray(value)) throw new InputError(`${label}: expected a JSON array of {"name","psk"}`);
  const starts = value.length > 0 ? arrayElementLines(text) : [];
  value.forEach((entry, i) => {
    const user = checkedUser(entry, where(label, starts[i] ?? '?'));
    builder.add(user.name, user.psk);
  });
  return starts.slice(0, value.length);
}

/** The plain shape only; undefined at the first thing that is not (the caller rolls back). */
function readPlainJsonArray(text: string, builder: UserStoreBuilder): number[] | undefined {
  ARRAY_OPEN.lastIndex = 0;
  if (!ARRAY_OPEN.test(text)) return undefined;
  const lines: number[] = [];
  let line = 1;
  let nextNewline = text.indexOf('\n');
  let at = ARRAY_OPEN.lastIndex;
  for (;;) {
    ARRAY_ENTRY.lastIndex = at;
    const entry = ARRAY_ENTRY.exec(text);
    if (!entry) return undefined;
    // The entry's line: the newlines before its opening brace.
    const brace = entry.index + entry[1]!.length;
    while (nextNewline >= 0 && nextNewline < brace) {
      line++;
      nextNewline = text.indexOf('\n', nextNewline + 1);
    }
    lines.push(line);
    builder.add(entry[2]!, entry[3]!);
    at = ARRAY_ENTRY.lastIndex;
    if (entry[4] === ']') break;
  }
  ARRAY_TAIL.lastIndex = at;
  return ARRAY_TAIL.test(text) ? lines : undefined;
}
