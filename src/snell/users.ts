/**
 * Users files: who may connect, and with which PSK. Four formats, told apart by their content:
 * a JSON array of {"name","psk"}, JSON Lines, CSV with a `name,psk` header, and `name:psk` lines
 * (split at the first colon, so a PSK may contain colons).
 */
import { isAscii } from 'node:buffer';
import { FileReadError, readBoundedFile, type ReadLimits } from '../shared/files.js';
import { sha256 } from '../shared/watch.js';
import { describeFsError, InputError } from '../shared/errors.js';
import { UserStoreBuilder, type SnellUser, type UserStore, type UsersFormat } from './user-store.js';
import { detectUsersFormat, readJsonArray, readLines } from './users-parse.js';
import { readPlainBytes } from './users-bytes.js';

export interface ParsedUsers {
  users: SnellUser[];
  format: UsersFormat;
  /** Line of each user in the file, for messages. */
  lines: number[];
  warnings: string[];
}

/** A users file read straight into a UserStore, as the trial scan and the server take it. */
export interface ParsedUserStore {
  store: UserStore;
  format: UsersFormat;
  /** Line of each user in the file, for messages. */
  lines: number[];
  warnings: string[];
}

/** `label` names the file in errors: `users.txt:7: ...`. */
export function parseUserStore(text: string, label: string, builder = new UserStoreBuilder(text.length)): ParsedUserStore {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const format = detectUsersFormat(text);
  const lines = format === 'json' ? readJsonArray(text, label, builder) : readLines(text, label, format, builder);
  if (builder.size === 0) throw new InputError(`${label}: no users in the file`);
  const store = builder.finish();
  return { store, format, lines, warnings: duplicatePskWarnings(store, lines, label) };
}

/**
 * A users file's bytes into a store: a plain ASCII file straight from its bytes (users-bytes.ts),
 * anything else decoded (strict UTF-8) and read as text. Bytes in a SharedArrayBuffer (as
 * loadUserStore reads them) become the store's own: its names and PSKs stay where they lie, and
 * the scan workers read the PSKs there. A million users are ~35 MB less to copy, and on these VMs
 * each fresh page written costs a fault, so that is about a fifth of the load.
 */
export function parseUserStoreBytes(bytes: Buffer, label: string): ParsedUserStore {
  const builder = bytes.buffer instanceof SharedArrayBuffer ? UserStoreBuilder.inPlace(bytes) : new UserStoreBuilder(bytes.length);
  const plain = readPlainBytes(bytes, builder);
  // Not plain: the text parser decides, writing the users it reads into a builder of its own.
  if (!plain) return parseUserStore(decodeUtf8(bytes, label), label);
  const store = builder.finish();
  return { store, format: plain.format, lines: plain.lines, warnings: duplicatePskWarnings(store, plain.lines, label) };
}

/** As parseUserStore, with each user as a {name, psk} object: for the few-user commands and the library. */
export function parseUsers(text: string, label: string): ParsedUsers {
  const { store, ...rest } = parseUserStore(text, label);
  return { ...rest, users: usersOf(store) };
}

function usersOf(store: UserStore): SnellUser[] {
  const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  return Array.from({ length: store.size }, (_, i) => ({ name: store.name(i), psk: decoder.decode(store.psk(i)) }));
}

function duplicatePskWarnings(store: UserStore, lines: number[], label: string): string[] {
  const pairs = store.duplicatePskPairs();
  const warnings = pairs.slice(0, 5).map(
    ([i, earlier]) =>
      `${label}:${lines[i]}: user "${store.name(i)}" has the same PSK as "${store.name(earlier)}" (line ${lines[earlier]}): ` +
      'the server cannot tell them apart, and above 16 users which one it picks depends on thread timing',
  );
  if (pairs.length > 5) warnings.push(`${label}: ${pairs.length - 5} more users share a PSK with an earlier user`);
  return warnings;
}

/**
 * Strict UTF-8: a PSK is its UTF-8 bytes, so a file with invalid bytes cannot be read as the
 * client's PSK strings. Replacing them (as a lenient decoder would) would test other keys.
 */
/** Strict UTF-8: the same at start and on reload, a bad byte named by its line. */
export function decodeUtf8(bytes: Buffer, label: string): string {
  // ASCII is valid UTF-8 and decodes byte for byte, to a one-byte string, without validation.
  if (isAscii(bytes)) return bytes.toString('latin1');
  try {
    return strictUtf8.decode(bytes);
  } catch {
    let start = 0;
    for (let line = 1; start <= bytes.length; line++) {
      const newline = bytes.indexOf(0x0a, start);
      const end = newline < 0 ? bytes.length : newline;
      try {
        strictUtf8.decode(bytes.subarray(start, end));
      } catch {
        throw new InputError(`${label}:${line}: not valid UTF-8`);
      }
      start = end + 1;
    }
    throw new InputError(`${label}: not valid UTF-8`);
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** `shared`: into a SharedArrayBuffer, for a store that keeps the file's bytes (parseUserStoreBytes). */
async function readUsersFile(path: string, limits: ReadLimits, shared: boolean): Promise<Buffer> {
  try {
    return await readBoundedFile(path, limits, { shared });
  } catch (error) {
    throw new InputError(`users file ${path}: ${error instanceof FileReadError ? error.why : describeFsError(error)}`);
  }
}

export async function loadUsersFile(path: string, limits: ReadLimits = {}): Promise<ParsedUsers & { digest: string }> {
  const bytes = await readUsersFile(path, limits, false);
  return { ...parseUsers(decodeUtf8(bytes, path), path), digest: sha256(bytes) };
}

/**
 * A users file of any size, as a store: a million users in under a second. `digest` (for a
 * watcher that reloads on change) only when asked: hashing 50 MB costs ~30 ms.
 */
export async function loadUserStore(path: string, limits: ReadLimits = {}, digest = false): Promise<ParsedUserStore & { digest?: string }> {
  const bytes = await readUsersFile(path, limits, true);
  return { ...parseUserStoreBytes(bytes, path), digest: digest ? sha256(bytes) : undefined };
}
