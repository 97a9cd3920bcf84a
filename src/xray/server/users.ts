/**
 * The users file of `xray-backend`: who may connect and under which policy. A JSON array of
 * objects, or JSON Lines (one object a line), told apart by the first character. Loaded as one
 * immutable snapshot; a watcher swaps in a new snapshot when the file changes and keeps the last
 * good one when the new content is broken.
 *
 * Messages name the file and the line an entry starts on, never a credential: a VLESS UUID or a
 * Hysteria auth string is the user's secret.
 */
import { FileReadError, readBoundedFile } from '../../shared/files.js';
import { sha256, watchSnapshotFile, type SnapshotWatcher, type WatchSettings } from '../../shared/watch.js';
import { describeFsError, InputError } from '../../shared/errors.js';
import { arrayElementLines, parseJsonText } from '../../shared/json.js';
import { isUuid, uuidFromText } from '../wire/credential.js';
import type { Dialect } from '../wire/dialect.js';

export interface XrayUser {
  /** As it arrives on the wire: a lower-case UUID for ExtAuth, the auth string for Hysteria 2. */
  credential: string;
  /** What the reply names the user by; absent means the credential is used. */
  email?: string;
  level: number;
  enabled: boolean;
  /** Milliseconds since the epoch; at and after it the user is expired. */
  expiresAt?: number;
  quotaBytes?: number;
  usedBytes: number;
  /** At most this many distinct source IPs with live sessions. */
  maxIps?: number;
  /** Line the entry starts on, for messages. */
  line: number;
}

/**
 * `uuid`: ExtAuth credentials, a UUID (lower-cased) or a 1-30 byte text id, stored as the
 * UUIDv5 Xray sends for it. `text`: Hysteria 2 auth strings, kept exactly.
 */
export type CredentialKind = 'uuid' | 'text';

export function credentialKind(dialect: Dialect): CredentialKind {
  return dialect.reply === 'hysteria-ok' ? 'text' : 'uuid';
}

/**
 * A credential as the backend stores and looks it up, or undefined if it can never match:
 * UUIDs compare case-insensitively, a short text id is what Xray sends for it (docs/xray-extauth.md §2.8).
 */
export function normalizeCredential(text: string, kind: CredentialKind): string | undefined {
  if (kind === 'text') return text === '' ? undefined : text;
  if (isUuid(text)) return text.toLowerCase();
  const length = Buffer.byteLength(text, 'utf8');
  return length >= 1 && length <= 30 ? uuidFromText(text) : undefined;
}

export interface UsersSnapshot {
  readonly users: readonly XrayUser[];
  readonly byCredential: ReadonlyMap<string, XrayUser>;
  /** The file name in messages. */
  readonly label: string;
  /** SHA-256 of the file's bytes, to tell a real change from a touch. */
  readonly digest: string;
  readonly loadedAt: Date;
}

export interface ParsedXrayUsers {
  users: XrayUser[];
  warnings: string[];
}

const FIELDS = ['credential', 'email', 'level', 'enabled', 'expiresAt', 'quotaBytes', 'usedBytes', 'maxIps'] as const;
const UINT32_MAX = 0xffffffff;
/** Unix seconds above this are year 5138: the value is almost certainly milliseconds (3x-ui's expiryTime). */
const LATEST_PLAUSIBLE_SECONDS = 1e11;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i;

/** `label` names the file in messages: `users.json:7: "level" must be ...`. */
export function parseXrayUsers(text: string, label: string, kind: CredentialKind): ParsedXrayUsers {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const first = text.trimStart()[0];
  let entries: { value: unknown; line: number }[];
  if (first === '[') {
    const value = parseJsonText(text, label);
    if (!Array.isArray(value)) throw new InputError(`${label}: expected a JSON array of users`);
    const starts = arrayElementLines(text);
    entries = value.map((entry, i) => ({ value: entry, line: starts[i] ?? 1 }));
  } else if (first === '{') {
    entries = [];
    text.split('\n').forEach((row, i) => {
      if (row.trim() !== '') entries.push({ value: parseJsonText(row, label, i + 1), line: i + 1 });
    });
  } else if (first === undefined) {
    throw new InputError(`${label}: no users in the file`);
  } else {
    throw new InputError(`${label}: expected a JSON array of users or JSON Lines (one user object a line)`);
  }
  if (entries.length === 0) throw new InputError(`${label}: no users in the file`);

  const users = entries.map(({ value, line }) => checkedUser(value, `${label}:${line}`, line, kind));
  const firstLine = new Map<string, number>();
  for (const user of users) {
    const earlier = firstLine.get(user.credential);
    if (earlier !== undefined) throw new InputError(`${label}:${user.line}: duplicate credential (the same as line ${earlier})`);
    firstLine.set(user.credential, user.line);
  }
  return { users, warnings: duplicateEmailWarnings(users, label) };
}

export function usersSnapshot(users: readonly XrayUser[], label: string, digest = ''): UsersSnapshot {
  return { users, byCredential: new Map(users.map((u) => [u.credential, u])), label, digest, loadedAt: new Date() };
}

export async function loadXrayUsers(path: string, kind: CredentialKind): Promise<{ snapshot: UsersSnapshot; warnings: string[] }> {
  const bytes = await readUsersBytes(path);
  const { users, warnings } = parseXrayUsers(decodeUtf8(bytes, path), path, kind);
  return { snapshot: usersSnapshot(users, path, sha256(bytes)), warnings };
}

async function readUsersBytes(path: string): Promise<Buffer> {
  try {
    return await readBoundedFile(path);
  } catch (error) {
    throw new InputError(`users file ${error instanceof FileReadError ? `${path}: ${error.why}` : `${path}: ${describeFsError(error)}`}`);
  }
}


const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Strict: a Hysteria auth string is its exact bytes, and a replacement character would change it. */
function decodeUtf8(bytes: Buffer, label: string): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    const lines = bytes.toString('latin1').split('\n');
    let start = 0;
    for (let i = 0; i < lines.length; i++) {
      const end = start + lines[i]!.length;
      try {
        strictUtf8.decode(bytes.subarray(start, end));
      } catch {
        throw new InputError(`${label}:${i + 1}: not valid UTF-8`);
      }
      start = end + 1;
    }
    throw new InputError(`${label}: not valid UTF-8`);
  }
}

function checkedUser(value: unknown, where: string, line: number, kind: CredentialKind): XrayUser {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InputError(`${where}: expected an object {"credential", ...}`);
  const entry = value as Record<string, unknown>;
  const unknown = Object.keys(entry).filter((key) => !(FIELDS as readonly string[]).includes(key));
  if (unknown.length > 0) throw new InputError(`${where}: unknown field ${JSON.stringify(unknown[0])} (known: ${FIELDS.join(', ')})`);
  const present = (key: string): boolean => entry[key] !== undefined && entry[key] !== null;

  const user: XrayUser = { credential: checkedCredential(entry.credential, where, kind), level: 0, enabled: true, usedBytes: 0, line };
  if (present('email')) {
    if (typeof entry.email !== 'string' || entry.email === '') throw new InputError(`${where}: "email" must be a non-empty string`);
    user.email = entry.email;
  }
  if (present('level')) user.level = checkedInteger(entry.level, where, 'level', 0, UINT32_MAX);
  if (present('enabled')) {
    if (typeof entry.enabled !== 'boolean') throw new InputError(`${where}: "enabled" must be true or false`);
    user.enabled = entry.enabled;
  }
  if (present('expiresAt')) user.expiresAt = checkedTime(entry.expiresAt, where);
  if (present('quotaBytes')) user.quotaBytes = checkedInteger(entry.quotaBytes, where, 'quotaBytes', 0, Number.MAX_SAFE_INTEGER);
  if (present('usedBytes')) user.usedBytes = checkedInteger(entry.usedBytes, where, 'usedBytes', 0, Number.MAX_SAFE_INTEGER);
  if (present('maxIps')) user.maxIps = checkedInteger(entry.maxIps, where, 'maxIps', 1, UINT32_MAX, ' (leave it out for no limit)');
  return user;
}

function checkedCredential(value: unknown, where: string, kind: CredentialKind): string {
  if (value === undefined || value === null) throw new InputError(`${where}: "credential" is missing`);
  if (typeof value !== 'string') throw new InputError(`${where}: "credential" must be a string`);
  const credential = normalizeCredential(value, kind);
  if (credential !== undefined) return credential;
  if (kind === 'text') throw new InputError(`${where}: "credential" must be a non-empty string`);
  throw new InputError(`${where}: "credential" must be a UUID, or a text id of 1 to 30 bytes as Xray accepts (got ${Buffer.byteLength(value)} bytes)`);
}

function checkedInteger(value: unknown, where: string, field: string, min: number, max: number, hint = ''): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InputError(`${where}: "${field}" must be an integer ${min}..${max}${hint}`);
  }
  return value;
}

function checkedTime(value: unknown, where: string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new InputError(`${where}: "expiresAt" must be an ISO date or unix seconds`);
    if (value > LATEST_PLAUSIBLE_SECONDS) throw new InputError(`${where}: "expiresAt" looks like milliseconds; give unix seconds or an ISO date`);
    return Math.round(value * 1000);
  }
  if (typeof value === 'string' && ISO_DATE.test(value.trim())) {
    const ms = Date.parse(value.trim());
    if (!Number.isNaN(ms)) return ms;
  }
  throw new InputError(`${where}: "expiresAt" must be an ISO date (2030-01-31T00:00:00Z) or unix seconds`);
}

function duplicateEmailWarnings(users: readonly XrayUser[], label: string): string[] {
  const firstLine = new Map<string, number>();
  const warnings: string[] = [];
  for (const user of users) {
    if (user.email === undefined) continue;
    const earlier = firstLine.get(user.email);
    if (earlier === undefined) firstLine.set(user.email, user.line);
    else warnings.push(`${label}:${user.line}: email ${JSON.stringify(user.email)} is also used on line ${earlier}: Xray would count both users' traffic as one`);
  }
  return warnings;
}


export interface UsersWatcherOptions extends WatchSettings {
  /** The snapshot already loaded; the watcher replaces it only when the content changes. */
  current: UsersSnapshot;
  kind: CredentialKind;
  onReload: (snapshot: UsersSnapshot, warnings: string[]) => void;
}

export type UsersWatcher = SnapshotWatcher;

/**
 * Watches a users file: change notifications on its directory (fast, and they survive an editor
 * replacing the file) plus stat polling (for file systems without notifications). A changed,
 * valid file replaces the users as a whole; a broken one keeps the last good snapshot and is
 * reported once per distinct content.
 */
export function watchXrayUsers(path: string, options: UsersWatcherOptions): UsersWatcher {
  return watchSnapshotFile(path, {
    what: 'users file', noun: 'users', current: options.current, digest: options.current.digest,
    count: (snapshot) => snapshot.users.length,
    parse: (bytes, digest) => {
      const { users, warnings } = parseXrayUsers(decodeUtf8(bytes, path), path, options.kind);
      return { snapshot: usersSnapshot(users, path, digest), warnings };
    },
    onReload: options.onReload, log: options.log, pollMs: options.pollMs, debounceMs: options.debounceMs,
  });
}
