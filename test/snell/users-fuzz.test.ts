/**
 * The users-file parser's fast paths change its speed, never its verdict: on generated files of
 * every format, full of the cases the fast paths hand over (quotes, escapes, Unicode spaces,
 * comments, blank and CRLF lines, empty fields, duplicates, other keys, broken lines), it
 * reaches the same users, lines, warnings or error as the parser before them.
 */
import { describe, expect, it } from 'vitest';
import { isDeepStrictEqual } from 'node:util';
import { parseUserStoreBytes, parseUsers, type ParsedUsers } from '../../src/snell/users.js';
import { referenceParseUsers } from './users-reference.js';
import { readPlainBytes } from '../../src/snell/users-bytes.js';
import { UserStoreBuilder } from '../../src/snell/user-store.js';

/** A small deterministic generator, so a failure can be replayed from its seed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const PIECES = ['alice', 'bob', 'ü', '密码', ' ', '\t', '\u00a0', '\u2028', '\ufeff', ':', ',', '"', '""', '#', '\\', '\\n', '\\u0041', 'x', 'psk-1', 'same', '{', '}', '\r'];
/** Half the files are ASCII only, so that the byte reader (users-bytes.ts) takes them. */
const ASCII_PIECES = PIECES.filter((p) => /^[\x00-\x7f]*$/.test(p));
let pieces = PIECES;

function field(next: () => number): string {
  const length = Math.floor(next() * 4);
  let text = '';
  for (let i = 0; i < length; i++) text += pieces[Math.floor(next() * pieces.length)];
  return next() < 0.5 ? `user-${Math.floor(next() * 20)}` + text : text;
}

function lineOf(format: string, next: () => number): string {
  const roll = next();
  if (roll < 0.05) return '';
  if (roll < 0.1) return '  ';
  if (roll < 0.15 && format === 'colon') return '# comment';
  const name = field(next);
  const psk = next() < 0.2 ? 'same' : field(next);
  if (roll < 0.2) return field(next); // no separator, or garbage
  switch (format) {
    case 'colon':
      return `${name}${next() < 0.2 ? ' ' : ''}:${psk}`;
    case 'csv':
      return next() < 0.3 ? `"${name.replaceAll('"', '""')}",${psk}` : `${name},${psk}`;
    default:
      return next() < 0.7 ? JSON.stringify({ name, psk }) : next() < 0.5 ? `{"psk": ${JSON.stringify(psk)}, "name": ${JSON.stringify(name)}}` : `{ "name" : ${JSON.stringify(name)} , "psk":${JSON.stringify(psk)} }`;
  }
}

function fileOf(format: string, next: () => number): string {
  const count = 1 + Math.floor(next() * 8);
  const lines = Array.from({ length: count }, () => lineOf(format, next));
  const eol = next() < 0.3 ? '\r\n' : '\n';
  if (format === 'csv') lines.unshift('name,psk');
  if (format === 'json') {
    const entries = lines.filter((l) => l.startsWith('{') || next() < 0.1);
    return `${next() < 0.2 ? '\ufeff' : ''}[${eol}${entries.map((e) => `  ${e}`).join(`,${next() < 0.1 ? '' : eol}`)}${eol}]${next() < 0.1 ? ' x' : eol}`;
  }
  return lines.join(eol) + (next() < 0.5 ? eol : '');
}

/**
 * The byte reader's way in, with the users as objects: from an ordinary buffer (copied into the
 * store, as a reload takes a file) or from one in shared memory (kept in place, as loadUserStore).
 */
function fromBytes(text: string, shared: boolean): ParsedUsers {
  const ordinary = Buffer.from(text, 'utf8');
  const bytes = shared ? Buffer.from(new SharedArrayBuffer(ordinary.length)) : ordinary;
  if (shared) ordinary.copy(bytes);
  const { store, ...rest } = parseUserStoreBytes(bytes, 'users');
  const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  return { ...rest, users: Array.from({ length: store.size }, (_, i) => ({ name: store.name(i), psk: decoder.decode(store.psk(i)) })) };
}

function outcome(parse: () => unknown): unknown {
  try {
    return parse();
  } catch (error) {
    return { error: (error as Error).message };
  }
}

describe('the fast users-file parser against the parser before it', () => {
  it.each(['colon', 'csv', 'jsonl', 'json'])('reaches the same outcome on 3000 generated %s files, from text, from bytes and from bytes in place', (format) => {
    let readAsBytes = 0;
    for (let seed = 1; seed <= 3000; seed++) {
      pieces = seed % 2 === 0 ? ASCII_PIECES : PIECES;
      const text = fileOf(format, random(seed * 7919 + format.length));
      if (readPlainBytes(Buffer.from(text, 'utf8'), new UserStoreBuilder())) readAsBytes++;
      const expected = outcome(() => referenceParseUsers(text, 'users'));
      for (const [path, parse] of [['text', () => parseUsers(text, 'users')], ['bytes', () => fromBytes(text, false)], ['in place', () => fromBytes(text, true)]] as const) {
        const actual = outcome(parse);
        if (!isDeepStrictEqual(actual, expected)) {
          if (process.env.FUZZ_DEBUG) console.log(JSON.stringify({ format, path, seed, text, actual, expected }));
          expect({ seed, path, text, actual }).toEqual({ seed, path, text, actual: expected });
        }
      }
    }
    // The byte reader must have taken a good share of the files, or this compared little.
    expect(readAsBytes).toBeGreaterThan(20);
  });
});
