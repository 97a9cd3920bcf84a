/**
 * The rules of `authkit capnp-serve`: a JSON file
 *   {"rules": [{"match": {...}, "decision": {...}}, ...], "default": {...}}
 * read top to bottom, first match wins, `block 401` when nothing matches. A match holds any of
 *   method      "GET" or ["GET", "HEAD"] (case-insensitive)
 *   host        "example.com" or "*.example.com" or a list (case-insensitive; Proksi sends no port)
 *   pathPrefix  "/admin" (the raw path starts with it)
 *   pathRegex   "^/api/v[0-9]+/" (a JavaScript regular expression, searched in the raw path)
 *   query       "debug=1" (the raw query, without "?", exactly; "" = no query)
 *   clientIp    "203.0.113.7", "203.0.113.7:51234", "203.0.113.0/24", "2001:db8::/32" or a list
 *               (an address matches any port; Proksi sends IP:PORT)
 *   header      {"name", "present"?, "equals"?, "regex"?}, or a list that must all hold; a
 *               condition holds when some header of that name (names lower-cased, as Proksi
 *               sends them) satisfies it; `"present": false` means no header of that name
 * and all given fields must hold. A decision is {action, statusCode?, upstreamValue?,
 * redirectLocation?, responseBody?}; statusCode defaults to 403 for block, 302 for redirect, 0
 * for pass. Messages name the file, the rule and the field, and never quote a value (a header's
 * value may be a token).
 *
 * This file reads, checks and watches the rules file; rule-match.ts decides a request by it.
 */
import { BlockList, isIP } from 'node:net';
import { FileReadError, readBoundedFile } from '../../shared/files.js';
import { sha256, watchSnapshotFile, type SnapshotWatcher, type WatchSettings } from '../../shared/watch.js';
import { hasControlBytes, HTTP_TOKEN } from '../../shared/text.js';
import { describeFsError, InputError } from '../../shared/errors.js';
import { addressOf, canonicalIp } from '../../shared/ip.js';
import { parseJsonText } from '../../shared/json.js';
import { DECISION_ACTIONS, type AuthDecision, type DecisionAction } from '../wire/schema.js';

export interface HeaderCondition {
  name: string;
  present: boolean;
  equals?: string;
  regex?: RegExp;
}

export interface RuleMatch {
  method?: string[];
  host?: string[];
  pathPrefix?: string;
  pathRegex?: RegExp;
  query?: string;
  clientIp?: ClientIpMatch;
  header?: HeaderCondition[];
}

export interface ClientIpMatch {
  /** Whole strings as Proksi sends them (IP:PORT, or a Unix socket path). */
  exact: Set<string>;
  /** Canonical addresses, any port. */
  addresses: Set<string>;
  prefixes?: BlockList;
}

export interface Rule {
  index: number;
  match: RuleMatch;
  decision: AuthDecision;
}

export interface RuleSet {
  rules: Rule[];
  default: AuthDecision;
  /** Decisions Proksi will handle in a way the author may not expect (one line each). */
  warnings: string[];
  /** sha256 of the file's bytes, to tell a real change from a touch. */
  digest: string;
}

export const DEFAULT_DECISION: AuthDecision = Object.freeze({ action: 'block', statusCode: 401, upstreamValue: '', redirectLocation: '', responseBody: '' });
const DEFAULT_STATUS: Record<DecisionAction, number> = { pass: 0, block: 403, redirect: 302 };

const MATCH_FIELDS = ['method', 'host', 'pathPrefix', 'pathRegex', 'query', 'clientIp', 'header'];
const HEADER_FIELDS = ['name', 'present', 'equals', 'regex'];
const DECISION_FIELDS = ['action', 'statusCode', 'upstreamValue', 'redirectLocation', 'responseBody'];

// ---- loading -------------------------------------------------------------------------------

/** Reads and validates a rules file; an InputError names the file, the rule and the field. */
export async function loadRulesFile(path: string): Promise<RuleSet> {
  let bytes: Buffer;
  try {
    bytes = await readBoundedFile(path);
  } catch (error) {
    throw new InputError(`rules file ${path}: ${error instanceof FileReadError ? error.why : describeFsError(error)}`);
  }
  return parseRules(bytes, path);
}

export function parseRules(source: string | Uint8Array, label: string): RuleSet {
  const bytes = typeof source === 'string' ? Buffer.from(source) : Buffer.from(source.buffer, source.byteOffset, source.byteLength);
  const digest = sha256(bytes);
  const json = parseJsonText(bytes.toString('utf8').replace(/^\uFEFF/, ''), label);
  const fail = (where: string, problem: string): never => {
    throw new InputError(`${label}: ${where}: ${problem}`);
  };
  if (!isObject(json)) fail('top level', 'expected an object {"rules": [...], "default": {...}}');
  const top = json as Record<string, unknown>;
  checkFields(top, ['rules', 'default'], 'top level', fail);
  if (!Array.isArray(top.rules)) fail('rules', 'expected an array of {"match", "decision"}');
  const warnings: string[] = [];
  const rules = (top.rules as unknown[]).map((entry, index): Rule => {
    const where = `rules[${index}]`;
    if (!isObject(entry)) fail(where, 'expected an object {"match", "decision"}');
    const rule = entry as Record<string, unknown>;
    checkFields(rule, ['match', 'decision'], where, fail);
    if (rule.decision === undefined) fail(where, 'a "decision" is required');
    const decision = parseDecision(rule.decision, `${where}.decision`, fail, warnings, label);
    return { index, match: parseMatch(rule.match ?? {}, `${where}.match`, fail), decision };
  });
  const fallback = top.default === undefined ? DEFAULT_DECISION : parseDecision(top.default, 'default', fail, warnings, label);
  return { rules, default: fallback, warnings, digest };
}

type Fail = (where: string, problem: string) => never;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkFields(object: Record<string, unknown>, known: string[], where: string, fail: Fail): void {
  for (const key of Object.keys(object)) {
    if (!known.includes(key)) fail(where, `unknown field ${JSON.stringify(key.slice(0, 40))} (expected ${known.join(', ')})`);
  }
}

function stringField(value: unknown, where: string, fail: Fail): string {
  if (typeof value !== 'string') fail(where, 'expected a string');
  return value as string;
}

function stringList(value: unknown, where: string, fail: Fail): string[] {
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0) fail(where, 'expected a string or a non-empty list of strings');
  return list.map((item, i) => stringField(item, Array.isArray(value) ? `${where}[${i}]` : where, fail));
}

/** A JavaScript regular expression. V8's own message quotes the pattern, so only its reason is kept. */
function regexField(value: unknown, where: string, fail: Fail): RegExp {
  const source = stringField(value, where, fail);
  try {
    return new RegExp(source);
  } catch (error) {
    const message = (error as Error).message;
    const reason = message.slice(message.lastIndexOf(': ') + 2);
    return fail(where, `invalid regular expression${/^[A-Za-z ]+$/.test(reason) ? ` (${reason.toLowerCase()})` : ''}`);
  }
}

function parseMatch(value: unknown, where: string, fail: Fail): RuleMatch {
  if (!isObject(value)) fail(where, 'expected an object (an empty one matches every request)');
  const m = value as Record<string, unknown>;
  checkFields(m, MATCH_FIELDS, where, fail);
  const match: RuleMatch = {};
  if (m.method !== undefined) {
    match.method = stringList(m.method, `${where}.method`, fail).map((s, i) => {
      if (!HTTP_TOKEN.test(s)) fail(`${where}.method${Array.isArray(m.method) ? `[${i}]` : ''}`, 'not an HTTP method token');
      return s.toUpperCase();
    });
  }
  if (m.host !== undefined) match.host = stringList(m.host, `${where}.host`, fail).map((s) => s.toLowerCase());
  if (m.pathPrefix !== undefined) match.pathPrefix = stringField(m.pathPrefix, `${where}.pathPrefix`, fail);
  if (m.pathRegex !== undefined) match.pathRegex = regexField(m.pathRegex, `${where}.pathRegex`, fail);
  if (m.query !== undefined) match.query = stringField(m.query, `${where}.query`, fail).replace(/^\?/, '');
  if (m.clientIp !== undefined) match.clientIp = parseClientIp(m.clientIp, `${where}.clientIp`, fail);
  if (m.header !== undefined) {
    const list = Array.isArray(m.header) ? m.header : [m.header];
    if (list.length === 0) fail(`${where}.header`, 'expected a condition {"name", ...} or a non-empty list of them');
    match.header = list.map((h, i) => parseHeaderCondition(h, Array.isArray(m.header) ? `${where}.header[${i}]` : `${where}.header`, fail));
  }
  return match;
}

function parseClientIp(value: unknown, where: string, fail: Fail): ClientIpMatch {
  const result: ClientIpMatch = { exact: new Set(), addresses: new Set() };
  stringList(value, where, fail).forEach((text, i) => {
    const at = Array.isArray(value) ? `${where}[${i}]` : where;
    const cidr = /^([^/]+)\/(\d{1,3})$/.exec(text);
    if (cidr) {
      const family = isIP(cidr[1]!);
      const bits = Number(cidr[2]);
      if (family === 0 || bits > (family === 4 ? 32 : 128)) fail(at, 'expected an IP, IP:PORT or a prefix such as 203.0.113.0/24');
      result.prefixes ??= new BlockList();
      result.prefixes.addSubnet(canonicalIp(cidr[1]!), bits, family === 6 ? 'ipv6' : 'ipv4');
    } else if (isIP(text) !== 0) {
      result.addresses.add(canonicalIp(text));
    } else if (/^(\[[^\]]+\]|[^:[\]]+):\d{1,5}$/.test(text) && addressOf(text) !== undefined) {
      result.exact.add(text);
    } else {
      fail(at, 'expected an IP, IP:PORT or a prefix such as 203.0.113.0/24');
    }
  });
  return result;
}

function parseHeaderCondition(value: unknown, where: string, fail: Fail): HeaderCondition {
  if (!isObject(value)) fail(where, 'expected {"name", "present"?, "equals"?, "regex"?}');
  const h = value as Record<string, unknown>;
  checkFields(h, HEADER_FIELDS, where, fail);
  const name = stringField(h.name, `${where}.name`, fail);
  if (!HTTP_TOKEN.test(name)) fail(`${where}.name`, 'not a valid header name');
  if (h.present !== undefined && typeof h.present !== 'boolean') fail(`${where}.present`, 'expected true or false');
  const condition: HeaderCondition = { name: name.toLowerCase(), present: h.present !== false };
  if (h.equals !== undefined) condition.equals = stringField(h.equals, `${where}.equals`, fail);
  if (h.regex !== undefined) condition.regex = regexField(h.regex, `${where}.regex`, fail);
  if (!condition.present && (condition.equals !== undefined || condition.regex !== undefined)) {
    fail(where, '"present": false cannot be combined with "equals" or "regex"');
  }
  return condition;
}

/** A decision, with a warning for each answer Proksi handles in a way the author may not expect (docs/proksi-external-auth.md §5). */
function parseDecision(value: unknown, where: string, fail: Fail, warnings: string[], label: string): AuthDecision {
  if (!isObject(value)) fail(where, 'expected an object {"action", "statusCode"?, ...}');
  const d = value as Record<string, unknown>;
  checkFields(d, DECISION_FIELDS, where, fail);
  if (typeof d.action !== 'string' || !(DECISION_ACTIONS as readonly string[]).includes(d.action)) fail(`${where}.action`, `expected one of ${DECISION_ACTIONS.join(', ')}`);
  const action = d.action as DecisionAction;
  let statusCode = DEFAULT_STATUS[action];
  if (d.statusCode !== undefined) {
    if (typeof d.statusCode !== 'number' || !Number.isInteger(d.statusCode) || d.statusCode < 0 || d.statusCode > 65535) fail(`${where}.statusCode`, 'expected an integer from 0 to 65535');
    statusCode = d.statusCode as number;
  }
  const text = (field: string): string => (d[field] === undefined ? '' : stringField(d[field], `${where}.${field}`, fail));
  const decision: AuthDecision = { action, statusCode, upstreamValue: text('upstreamValue'), redirectLocation: text('redirectLocation'), responseBody: text('responseBody') };
  const warn = (problem: string): void => {
    warnings.push(`${label}: ${where}: ${problem}`);
  };
  if (action === 'pass' && decision.upstreamValue === '') warn('pass without an upstreamValue: Proksi then lets a client-supplied x-proksi-auth-context through');
  if (hasControlBytes(decision.upstreamValue)) warn('upstreamValue has control bytes: Proksi cannot set the header and keeps the client\'s copy');
  if (action === 'redirect' && decision.redirectLocation === '') warn('redirect without a redirectLocation: Proksi answers 500');
  if (hasControlBytes(decision.redirectLocation)) warn('redirectLocation has control bytes: Proksi then lets the request through unauthenticated (fail-open)');
  if (statusCode !== 0 && (statusCode < 100 || statusCode > 999)) warn(`statusCode ${statusCode} is outside 100-999: Proksi uses its fallback`);
  if (decision.responseBody !== '') warn('responseBody is never read by Proksi');
  return Object.freeze(decision);
}

// ---- watching ------------------------------------------------------------------------------

export interface RulesWatcherOptions extends WatchSettings {
  /** The rules already loaded; replaced only when the file's content changes. */
  current: RuleSet;
  onReload: (rules: RuleSet) => void;
}

export type RulesWatcher = SnapshotWatcher;

/**
 * Watches a rules file (change notifications on its directory, which survive an editor replacing
 * the file, plus stat polling). A valid new content replaces the rules as a whole; a broken one
 * keeps the last good rules and is reported once per distinct content.
 */
export function watchRules(path: string, options: RulesWatcherOptions): RulesWatcher {
  return watchSnapshotFile(path, {
    what: 'rules file', noun: 'rules', current: options.current, digest: options.current.digest,
    count: (set) => set.rules.length,
    parse: (bytes) => {
      const set = parseRules(bytes, path);
      return { snapshot: set, warnings: set.warnings };
    },
    onReload: (set) => options.onReload(set),
    log: options.log, warning: (w) => `warning: ${w}`, pollMs: options.pollMs, debounceMs: options.debounceMs,
  });
}
