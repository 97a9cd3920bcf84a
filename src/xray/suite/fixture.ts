/**
 * What a backend author tells the conformance suite about their backend: credentials that must
 * be allowed and denied, optional session-limit and quota users, and how to revoke a user.
 * Errors name the file, the entry and the field, never a credential.
 */
import { FileReadError, readBoundedFileSync } from '../../shared/files.js';
import { checkFixtureSchema } from '../../shared/fixture-schema.js';
import { describeFsError, InputError } from '../../shared/errors.js';
import { parseJsonText } from '../../shared/json.js';
import { isUuid } from '../wire/credential.js';

export interface FixtureUser {
  credential: string;
  /** For denied users: why (unknown, disabled, expired, over-quota, ...), for the report. */
  why?: string;
}

/**
 * An HTTP call or a shell command; `{credential}` is substituted. The call carries the suite's
 * secret and headers plus its own `headers`, whose values may name environment variables as
 * `${VAR}` so an admin token need not sit in the file.
 */
export type FixtureHook = ({ url: string; method: string; body?: unknown; headers: [string, string][] } | { command: string }) & {
  /** The fixture file and field it came from, for error messages: `fixture.json: revoke.hook`. */
  source: string;
};

export interface XrayFixture {
  allowed: FixtureUser[];
  denied: FixtureUser[];
  sessionLimit?: { credential: string; maxIps: number };
  overQuota?: FixtureUser;
  /** Xray text ids (1-30 characters) the backend stores in that form. */
  textIds: string[];
  revoke?: { revoke: FixtureHook; restore?: FixtureHook; credential: string };
}

export function loadFixture(path: string, uuids: boolean): XrayFixture {
  let text: string;
  try {
    text = readBoundedFileSync(path).toString('utf8');
  } catch (error) {
    throw new InputError(`--fixture ${path}: ${error instanceof FileReadError ? error.why : describeFsError(error)}`);
  }
  const value = parseJsonText(text, path);
  checkFixtureSchema(value, 'xray-conformance', path);
  return parseFixture(value, path, uuids);
}

export function parseFixture(value: unknown, label: string, uuids: boolean): XrayFixture {
  const fail = (where: string, what: string): never => {
    throw new InputError(`${label}: ${where} ${what}`);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('the fixture', 'must be a JSON object');
  const root = value as Record<string, unknown>;
  const credentialAt = (v: unknown, where: string): string => {
    if (typeof v !== 'string' || v === '') return fail(where, 'must be a non-empty string');
    if (uuids && !isUuid(v as string)) fail(where, 'must be a UUID (the wiki and src dialects send UUIDs)');
    return uuids ? (v as string).toLowerCase() : (v as string);
  };
  const users = (key: 'allowed' | 'denied'): FixtureUser[] => {
    const list = root[key] ?? [];
    if (!Array.isArray(list)) return fail(`"${key}"`, 'must be an array');
    return list.map((entry, i) => {
      const where = `"${key}"[${i}]`;
      const item = typeof entry === 'string' ? { credential: entry } : entry;
      if (typeof item !== 'object' || item === null) return fail(where, 'must be a credential or {"credential", "why"?}');
      const why = (item as Record<string, unknown>).why;
      if (why !== undefined && typeof why !== 'string') fail(`${where}.why`, 'must be a string');
      return { credential: credentialAt((item as Record<string, unknown>).credential, `${where}.credential`), why: why as string | undefined };
    });
  };
  const fixture: XrayFixture = { allowed: users('allowed'), denied: users('denied'), textIds: [] };
  if (root.sessionLimit !== undefined) {
    const limit = root.sessionLimit as Record<string, unknown>;
    if (typeof limit !== 'object' || limit === null) fail('"sessionLimit"', 'must be {"credential", "maxIps"}');
    const maxIps = limit.maxIps;
    if (typeof maxIps !== 'number' || !Number.isInteger(maxIps) || maxIps < 1 || maxIps > 64) fail('"sessionLimit".maxIps', 'must be an integer 1..64');
    fixture.sessionLimit = { credential: credentialAt(limit.credential, '"sessionLimit".credential'), maxIps: maxIps as number };
  }
  if (root.overQuota !== undefined) fixture.overQuota = { credential: credentialAt(root.overQuota, '"overQuota"'), why: 'over quota' };
  if (root.textIds !== undefined) {
    if (!Array.isArray(root.textIds)) fail('"textIds"', 'must be an array');
    fixture.textIds = (root.textIds as unknown[]).map((id, i) => {
      if (typeof id !== 'string' || Buffer.byteLength(id) < 1 || Buffer.byteLength(id) > 30) return fail(`"textIds"[${i}]`, 'must be a text id of 1 to 30 bytes');
      return id as string;
    });
  }
  if (root.revoke !== undefined) {
    const revoke = root.revoke as Record<string, unknown>;
    if (typeof revoke !== 'object' || revoke === null) fail('"revoke"', 'must be an object');
    const hook = (v: unknown, where: string): FixtureHook => {
      const h = v as Record<string, unknown>;
      const source = `${label}: ${where.replace(/"/g, '')}`;
      if (typeof h !== 'object' || h === null) return fail(where, 'must be {"url", "method"?, "body"?} or {"command"}');
      if (typeof h.command === 'string') return { command: h.command, source };
      if (typeof h.url !== 'string') return fail(`${where}.url`, 'must be a URL (or give "command")');
      try {
        new URL(h.url);
      } catch {
        fail(`${where}.url`, 'is not a URL');
      }
      if (h.method !== undefined && typeof h.method !== 'string') fail(`${where}.method`, 'must be a string');
      const headers = h.headers ?? {};
      if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) fail(`${where}.headers`, 'must be an object of strings');
      const pairs = Object.entries(headers as Record<string, unknown>).map(([name, value]): [string, string] => {
        if (typeof value !== 'string') return fail(`${where}.headers.${name}`, 'must be a string');
        return [name, expandEnv(value as string, `${where}.headers.${name}`, fail)];
      });
      return { url: h.url, method: ((h.method as string | undefined) ?? 'POST').toUpperCase(), body: h.body, headers: pairs, source };
    };
    const explicit = revoke.credential === undefined ? undefined : credentialAt(revoke.credential, '"revoke".credential');
    const credential = explicit ?? fixture.allowed[0]?.credential ?? fail('"revoke".credential', 'is missing and there is no allowed user to revoke');
    const restore = revoke.restore === undefined ? undefined : hook(revoke.restore, '"revoke".restore');
    // Without a restore hook the revoked user stays revoked: it must not be one the other checks need.
    if (!restore && fixture.allowed.some((u) => u.credential === credential)) {
      fail('"revoke"', 'needs a "restore" hook, or a "credential" of its own that is not in "allowed": otherwise the run leaves an allowed user revoked');
    }
    fixture.revoke = { credential, revoke: hook(revoke.hook ?? revoke, revoke.hook === undefined ? '"revoke"' : '"revoke".hook'), restore };
  }
  return fixture;
}

function expandEnv(value: string, where: string, fail: (where: string, what: string) => never): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => process.env[name] ?? fail(where, `names \${${name}}, which is not set`));
}

/** The run's capabilities, for the checks' `requires`. */
export function fixtureCapabilities(fixture: XrayFixture | undefined): Set<string> {
  const has = new Set<string>();
  if (!fixture) return has;
  if (fixture.allowed.length > 0) has.add('fixture.allowed');
  if (fixture.allowed.length > 1) has.add('fixture.allowed.two');
  if (fixture.denied.length > 0) has.add('fixture.denied');
  if (fixture.sessionLimit) has.add('fixture.sessionLimit');
  if (fixture.overQuota) has.add('fixture.overQuota');
  if (fixture.textIds.length > 0) has.add('fixture.textIds');
  if (fixture.revoke) has.add('fixture.revoke');
  return has;
}
