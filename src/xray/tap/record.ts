/**
 * An Xray exchange as a recording line (src/tap/recording.ts) and as a line on screen. The
 * credential, a bearer token and secret headers are masked unless the recording is asked to keep
 * them (--record-secrets); a masked recording can be read but not replayed.
 */
import type { RecordBase } from '../../tap/recording.js';
import type { VerdictClass } from '../contract.js';
import type { EventType } from '../wire/dialect.js';
import { maskCredential, redactBody, redactText } from '../redact.js';
import { isSecretHeader, maskHeaderValue, maskQueryValues } from '../../shared/redact.js';
import { goUtf8Text } from '../wire/go-json-stream.js';
import type { TappedExchange } from './tap.js';
import type { Violation } from './verdict.js';

export interface XrayRecord extends RecordBase {
  protocol: 'xray';
  dialect: string;
  connection: number;
  /** null: the body was not an event of the dialect. */
  event: EventType | null;
  credential: string | null;
  request: { method: string; target: string; headers: [string, string][]; body: string; truncated: boolean };
  reply: { status: number; headers: [string, string][]; body: string; truncated: boolean } | null;
  latencyMs: number;
  verdict: 'allow' | 'deny' | 'ignored';
  class: VerdictClass;
  reason: string;
  user: unknown;
  violations: Violation[];
}

/** Bearer tokens and the credential: what is masked in free text. */
function secretsOf(exchange: TappedExchange): { credential: string; texts: string[] } {
  const credential = 'type' in exchange.event ? (exchange.event.facts.credential ?? '') : '';
  const tokens = exchange.request.headers.filter(([n]) => n.toLowerCase() === 'authorization').map(([, v]) => v.replace(/^Bearer\s+/i, ''));
  return { credential, texts: [credential, ...tokens].filter((t) => t !== '') };
}

export function xrayRecord(exchange: TappedExchange, dialect: string, keepSecrets: boolean, customSecretHeaders: readonly string[] = []): XrayRecord {
  const { credential, texts } = secretsOf(exchange);
  const text = (t: string): string => (keepSecrets ? t : redactText(t, texts));
  const headers = (pairs: [string, string][]): [string, string][] =>
    keepSecrets ? pairs : pairs.map(([n, v]) => [n, isSecretHeader(n, customSecretHeaders) ? maskHeaderValue(v) : redactText(v, texts)]);
  const body = goUtf8Text(exchange.request.body);
  const { reply, verdict } = exchange;
  return {
    protocol: 'xray', at: exchange.at.toISOString(), offsetMs: exchange.offsetMs, secrets: keepSecrets,
    dialect, connection: exchange.connection,
    event: 'type' in exchange.event ? exchange.event.type : null,
    credential: credential === '' ? null : keepSecrets ? credential : maskCredential(credential),
    request: {
      method: exchange.request.method, target: keepSecrets ? exchange.request.target : maskQuery(text(exchange.request.target)), headers: headers(exchange.request.headers),
      body: keepSecrets ? body : 'type' in exchange.event ? redactBody(body, credential, texts) : `<${exchange.request.body.length} bytes, not read as a ${dialect} event: masked, as they may hold a credential>`,
      truncated: exchange.request.truncated,
    },
    reply: reply ? { status: reply.head.status, headers: headers(reply.rawHeaders), body: text(goUtf8Text(reply.body)), truncated: reply.truncated } : null,
    latencyMs: exchange.latencyMs,
    verdict: verdict.verdict, class: verdict.class, reason: text(verdict.reason),
    user: verdict.user ?? null,
    violations: exchange.violations.map((v) => ({ ...v, message: text(v.message) })),
  };
}

/** A request target with its query values masked. */
function maskQuery(target: string): string {
  const question = target.indexOf('?');
  return question < 0 ? target : `${target.slice(0, question)}?${maskQueryValues(target.slice(question + 1))}`;
}

/** One line: time, event, credential, status, latency, verdict, class, violations. */
export function xrayLine(record: XrayRecord, colors: { green: (s: string) => string; red: (s: string) => string; yellow: (s: string) => string; dim: (s: string) => string }): string {
  const paint = record.class === 'allow' ? colors.green : record.verdict === 'ignored' ? colors.yellow : colors.red;
  const user = record.user && typeof record.user === 'object' ? ` ${JSON.stringify(record.user)}` : '';
  const parts = [
    colors.dim(record.at.slice(11, 23)),
    (record.event ?? 'not-an-event').padEnd(13),
    (record.credential ?? '-').padEnd(20),
    record.reply ? String(record.reply.status) : '---',
    `${record.latencyMs} ms`.padStart(10),
    `${paint(`${record.verdict.toUpperCase()} (${record.class})`)}${user}`,
  ];
  const violations = record.violations.map((v) => colors.yellow(`  ${v.id} ${v.level}: ${v.message}`));
  return [parts.join('  '), ...violations].join('\n');
}
