/**
 * The users-file parser as it was before its fast paths (issue 16): every row split, trimmed
 * and parsed on its own, JSON through JSON.parse. The fast parser must reach the same users,
 * lines, warnings and errors on any input (test/snell/users-fuzz.test.ts).
 */
import { InputError } from '../../src/shared/errors.js';
import { arrayElementLines, parseJsonText } from '../../src/shared/json.js';
import type { ParsedUsers } from '../../src/snell/users.js';
import type { SnellUser, UsersFormat } from '../../src/snell/user-store.js';

function detectUsersFormat(text: string): UsersFormat {
  const first = text.trimStart()[0];
  if (first === '[') return 'json';
  if (first === '{') return 'jsonl';
  const firstLine = text.trimStart().split(/\r?\n/, 1)[0] ?? '';
  return /^"?name"?\s*,\s*"?psk"?\s*$/i.test(firstLine.trim()) ? 'csv' : 'colon';
}

/** `label` names the file in errors: `users.txt:7: ...`. */
export function referenceParseUsers(text: string, label: string): ParsedUsers {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const format = detectUsersFormat(text);
  const parsed = format === 'json' ? parseJsonArray(text, label) : parseLines(text, label, format);
  if (parsed.users.length === 0) throw new InputError(`${label}: no users in the file`);
  return { ...parsed, format, warnings: duplicatePskWarnings(parsed.users, parsed.lines, label) };
}

function checkedUser(value: unknown, where: string): SnellUser {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InputError(`${where}: expected an object {"name","psk"}`);
  const { name, psk } = value as Record<string, unknown>;
  if (typeof name !== 'string' || name === '') throw new InputError(`${where}: "name" must be a non-empty string`);
  if (typeof psk !== 'string' || psk === '') throw new InputError(`${where}: "psk" must be a non-empty string`);
  return { name, psk };
}

function parseLines(text: string, label: string, format: Exclude<UsersFormat, 'json'>): Omit<ParsedUsers, 'format' | 'warnings'> {
  const users: SnellUser[] = [];
  const lines: number[] = [];
  const rows = text.split('\n');
  for (let i = format === 'csv' ? firstContentLine(rows) + 1 : 0; i < rows.length; i++) {
    const row = rows[i]!.replace(/\r$/, '');
    if (row.trim() === '' || (format === 'colon' && row.trimStart().startsWith('#'))) continue;
    const where = `${label}:${i + 1}`;
    users.push(format === 'jsonl' ? checkedUser(parseJsonText(row, label, i + 1), where) : format === 'csv' ? parseCsvRow(row, where) : parseColonRow(row, where));
    lines.push(i + 1);
  }
  return { users, lines };
}

function firstContentLine(rows: string[]): number {
  return rows.findIndex((row) => row.trim() !== '');
}

function parseColonRow(row: string, where: string): SnellUser {
  const colon = row.indexOf(':');
  if (colon < 0) throw new InputError(`${where}: expected name:psk`);
  const name = row.slice(0, colon).trim();
  const psk = row.slice(colon + 1);
  if (name === '') throw new InputError(`${where}: empty name`);
  if (psk === '') throw new InputError(`${where}: empty psk`);
  return { name, psk };
}

/** Two fields, either of which may be double-quoted with "" escapes (a PSK may contain commas). */
function parseCsvRow(row: string, where: string): SnellUser {
  const fields: string[] = [];
  let at = 0;
  while (at <= row.length) {
    if (row[at] === '"') {
      let value = '';
      let i = at + 1;
      for (;;) {
        const quote = row.indexOf('"', i);
        if (quote < 0) throw new InputError(`${where}: unterminated quoted field`);
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
      if (at < row.length && row[at] !== ',') throw new InputError(`${where}: text after a quoted field`);
    } else {
      const comma = fields.length === 0 ? row.indexOf(',', at) : -1;
      const end = comma < 0 ? row.length : comma;
      fields.push(row.slice(at, end));
      at = end;
    }
    at += 1;
  }
  if (fields.length !== 2) throw new InputError(`${where}: expected 2 fields name,psk, found ${fields.length}`);
  const [name = '', psk = ''] = fields;
  if (name.trim() === '') throw new InputError(`${where}: empty name`);
  if (psk === '') throw new InputError(`${where}: empty psk`);
  return { name: name.trim(), psk };
}

function parseJsonArray(text: string, label: string): Omit<ParsedUsers, 'format' | 'warnings'> {
  const value = parseJsonText(text, label);
  if (!Array.isArray(value)) throw new InputError(`${label}: expected a JSON array of {"name","psk"}`);
  const starts = value.length > 0 ? arrayElementLines(text) : [];
  const users = value.map((entry, i) => checkedUser(entry, `${label}:${starts[i] ?? '?'}`));
  return { users, lines: starts.slice(0, users.length) };
}


function duplicatePskWarnings(users: SnellUser[], lines: number[], label: string): string[] {
  const firstIndex = new Map<string, number>();
  const warnings: string[] = [];
  let count = 0;
  users.forEach((user, i) => {
    const earlier = firstIndex.get(user.psk);
    if (earlier === undefined) {
      firstIndex.set(user.psk, i);
      return;
    }
    if (++count <= 5) {
      warnings.push(
        `${label}:${lines[i]}: user "${user.name}" has the same PSK as "${users[earlier]!.name}" (line ${lines[earlier]}): ` +
          'the server cannot tell them apart, and above 16 users which one it picks depends on thread timing',
      );
    }
  });
  if (count > 5) warnings.push(`${label}: ${count - 5} more users share a PSK with an earlier user`);
  return warnings;
}
