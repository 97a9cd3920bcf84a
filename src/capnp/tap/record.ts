/**
 * A check() the tap saw, as a recording line and as a line on screen. Header values that carry
 * credentials (Authorization, Cookie, API keys) and the query's values are masked unless
 * --record-secrets.
 */
import type { RecordBase } from '../../tap/recording.js';
import { isSecretHeader, maskHeaderValue, maskQueryValues } from '../../shared/redact.js';
import type { AuthDecision, AuthRequest } from '../wire/schema.js';
import type { ProksiOutcomeKind } from '../model.js';
import type { TappedCheck } from './tap.js';

export interface CapnpRecord extends RecordBase {
  protocol: 'capnp';
  connection: number;
  request: AuthRequest;
  decision: Omit<AuthDecision, 'invalidUtf8'> | null;
  error: { kind: string; message: string } | null;
  latencyMs: number;
  /** The comparable verdict: the action with its status and value, or how the call failed. */
  verdict: string;
  proksi: { outcome: ProksiOutcomeKind; status: number | null };
  warnings: string[];
}

/** `pass "user=1"`, `block 403`, `redirect 302 https://...`, or the failure's kind. */
export function capnpVerdict(decision: AuthDecision | undefined | null, failure: { kind: string } | undefined | null): string {
  if (!decision) return failure?.kind ?? 'disconnected';
  switch (decision.action) {
    case 'pass':
      return `pass ${JSON.stringify(decision.upstreamValue)}`;
    case 'block':
      return `block ${decision.statusCode}`;
    case 'redirect':
      return `redirect ${decision.statusCode} ${decision.redirectLocation}`;
    default:
      return `unknown-action ${decision.action}`;
  }
}

/** `secretHeaders`: more header names whose values are credentials (--secret-header). */
export function capnpRecord(check: TappedCheck, keepSecrets: boolean, secretHeaders: readonly string[] = []): CapnpRecord {
  const headers = keepSecrets ? check.request.headers : check.request.headers.map((h) => ({ name: h.name, value: isSecretHeader(h.name, secretHeaders) ? maskHeaderValue(h.value) : h.value }));
  const decision = check.decision ? { action: check.decision.action, statusCode: check.decision.statusCode, upstreamValue: check.decision.upstreamValue, redirectLocation: check.decision.redirectLocation, responseBody: check.decision.responseBody } : null;
  // The client's query may carry a token: its values are masked with the credential headers.
  const query = keepSecrets ? check.request.query : maskQueryValues(check.request.query);
  return {
    protocol: 'capnp', at: check.at.toISOString(), offsetMs: check.offsetMs, secrets: keepSecrets, connection: check.connection,
    request: { ...check.request, query, headers }, decision, error: check.failure ?? null, latencyMs: check.latencyMs,
    verdict: capnpVerdict(check.decision, check.failure),
    proksi: { outcome: check.proksi.outcome, status: check.proksi.status ?? null }, warnings: check.warnings,
  };
}

export function capnpLine(record: CapnpRecord, colors: { green: (s: string) => string; red: (s: string) => string; yellow: (s: string) => string; dim: (s: string) => string }): string {
  const { outcome, status } = record.proksi;
  const paint = outcome === 'proxied' ? colors.green : outcome === 'fail-open' ? colors.red : colors.yellow;
  const does = outcome === 'proxied' ? 'Proksi proxies' : outcome === 'fail-open' ? 'Proksi FAILS OPEN' : `Proksi answers ${status}`;
  const request = `${record.request.method} ${record.request.path}${record.request.query ? `?${record.request.query}` : ''} from ${record.request.clientIp}`;
  const parts = [colors.dim(record.at.slice(11, 23)), request.padEnd(40), record.verdict.padEnd(24), `${record.latencyMs} ms`.padStart(10), paint(does)];
  const lines = [parts.join('  ')];
  if (record.error) lines.push(colors.yellow(`  ${record.error.kind}: ${record.error.message}`));
  for (const warning of record.warnings) lines.push(colors.yellow(`  warning: ${warning}`));
  return lines.join('\n');
}
