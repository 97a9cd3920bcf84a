import { thrownBy } from '../helpers.js';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/shared/errors.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadUserStore, parseUsers } from '../../src/snell/users.js';
import { UserStore } from '../../src/snell/user-store.js';

const expected = [
  { name: 'alice', psk: 'p:s,k"1' },
  { name: 'bob', psk: 'pässwörd-密码' },
];

const inputError = (fn: () => unknown): string => thrownBy(InputError, fn).message;

describe('users files', () => {
  it.each([
    ['json', JSON.stringify(expected, null, 2)],
    ['jsonl', expected.map((u) => JSON.stringify(u)).join('\n') + '\n'],
    ['csv', 'name,psk\r\nalice,"p:s,k""1"\r\nbob,pässwörd-密码\r\n'],
    ['colon', '# panel export\nalice:p:s,k"1\n\nbob:pässwörd-密码\n'],
  ])('reads the %s format, detected from the content', (format, text) => {
    const parsed = parseUsers(text, 'users');
    expect(parsed.format).toBe(format);
    expect(parsed.users).toEqual(expected);
  });

  it('reads a CSV psk with commas unquoted only in the last field', () => {
    expect(parseUsers('name,psk\ncarol,a,b,c\n', 'f').users).toEqual([{ name: 'carol', psk: 'a,b,c' }]);
  });

  it('names the file and line of a broken line', () => {
    const lines = Array.from({ length: 10 }, (_, i) => `user${i}:psk${i}`);
    lines[6] = 'no colon here';
    expect(inputError(() => parseUsers(lines.join('\n'), 'users.txt'))).toBe('users.txt:7: expected name:psk');
    const jsonl = Array.from({ length: 8 }, (_, i) => JSON.stringify({ name: `u${i}`, psk: `p${i}` }));
    jsonl[6] = '{"name": "u6", "psk": ';
    expect(inputError(() => parseUsers(jsonl.join('\n'), 'u.jsonl'))).toMatch(/^u\.jsonl:7: invalid JSON/);
    jsonl[6] = '{"name": "u6"}';
    expect(inputError(() => parseUsers(jsonl.join('\n'), 'u.jsonl'))).toBe('u.jsonl:7: "psk" must be a non-empty string');
  });

  it('names the line of a bad entry in a JSON array, and of a syntax error', () => {
    const entries = Array.from({ length: 8 }, (_, i) => `  {"name": "u${i}", "psk": "p${i}"}`);
    entries[5] = '  {"name": "u5", "psk": 5}';
    expect(inputError(() => parseUsers(`[\n${entries.join(',\n')}\n]`, 'u.json'))).toBe('u.json:7: "psk" must be a non-empty string');
    expect(inputError(() => parseUsers('[\n{"name": "a", "psk": "b"},\n{"name": \n', 'u.json'))).toMatch(/^u\.json(:\d+)?: invalid JSON/);
  });

  it('refuses an empty file and empty fields', () => {
    expect(inputError(() => parseUsers('', 'empty.txt'))).toBe('empty.txt: no users in the file');
    expect(inputError(() => parseUsers('[]', 'empty.json'))).toBe('empty.json: no users in the file');
    expect(inputError(() => parseUsers('name,psk\n', 'e.csv'))).toBe('e.csv: no users in the file');
    expect(inputError(() => parseUsers('alice:\n', 'f'))).toBe('f:1: empty psk');
    expect(inputError(() => parseUsers(':psk\n', 'f'))).toBe('f:1: empty name');
  });

  it('warns about duplicate PSKs, naming both users and lines', () => {
    const parsed = parseUsers('a:same\nb:other\nc:same\n', 'users.txt');
    expect(parsed.warnings).toHaveLength(1);
    expect(parsed.warnings[0]).toMatch(/^users\.txt:3: user "c" has the same PSK as "a" \(line 1\)/);
  });

  it('packs PSKs as UTF-8 into one shared buffer', () => {
    const store = UserStore.fromUsers(expected);
    expect(store.size).toBe(2);
    expect(store.pskBytes.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(Buffer.from(store.psk(1)).toString('utf8')).toBe('pässwörd-密码');
    expect([store.name(0), store.name(1)]).toEqual(['alice', 'bob']);
  });

  it('keeps a plain file\'s names and PSKs where the file has them, in shared memory, and copies a file it reads as text', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'authkit-users-'));
    try {
      writeFileSync(join(dir, 'plain.json'), '[\n  {"name": "alice", "psk": "one"},\n  {"name": "bob", "psk": "two"}\n]\n');
      const plain = (await loadUserStore(join(dir, 'plain.json'))).store;
      expect(plain.pskBytes.buffer).toBeInstanceOf(SharedArrayBuffer);
      // The store's PSK buffer is the file: PSK 1 sits at its offset in the file's text.
      expect(plain.pskBytes.length).toBe(Buffer.byteLength('[\n  {"name": "alice", "psk": "one"},\n  {"name": "bob", "psk": "two"}\n]\n'));
      expect(Buffer.from(plain.psk(1)).toString()).toBe('two');
      expect(plain.psk(1).byteOffset).toBe('[\n  {"name": "alice", "psk": "one"},\n  {"name": "bob", "psk": "'.length);
      expect([plain.name(0), plain.name(1)]).toEqual(['alice', 'bob']);
      // Not plain (a byte above 0x7f): read as text, written into the store's own buffer.
      writeFileSync(join(dir, 'text.txt'), 'alice:pässwörd\nbob:two\n');
      const text = (await loadUserStore(join(dir, 'text.txt'))).store;
      expect(text.pskBytes.buffer).toBeInstanceOf(SharedArrayBuffer);
      expect(text.pskBytes.length).toBe(Buffer.byteLength('pässwördtwo'));
      expect([Buffer.from(text.psk(0)).toString(), text.name(1)]).toEqual(['pässwörd', 'bob']);
      // Rows shorter than the room reserved per user (16 bytes): the offsets grow, in place still.
      writeFileSync(join(dir, 'short.txt'), Array.from({ length: 500 }, (_, i) => `u${i}:${i}`).join('\n'));
      const short = (await loadUserStore(join(dir, 'short.txt'))).store;
      expect(short.size).toBe(500);
      expect(short.pskBytes.buffer).toBeInstanceOf(SharedArrayBuffer);
      expect([short.name(0), Buffer.from(short.psk(0)).toString(), short.name(499), Buffer.from(short.psk(499)).toString()]).toEqual(['u0', '0', 'u499', '499']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
