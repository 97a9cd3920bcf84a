/**
 * An xray-tap recording sent again, as the proxy would send it now: the recorded body with its
 * timestamp set to now (a backend may refuse one 300 s old, X29), the proxy's secret and headers
 * as recorded unless given anew, through xray-sim's own client (client.ts), so the new verdict
 * is reached by the same code as the recorded one.
 */
import { InputError } from '../shared/errors.js';
import type { ReplayTarget } from '../tap/replay.js';
import { checkFields, lineOf } from '../tap/recording.js';
import { sendEvent } from './client.js';
import type { GoTransport, TlsTrust } from './transport.js';
import { dialectNamed } from './wire/dialects/index.js';
import type { XrayRecord } from './tap/record.js';
import { maskCredential, redactText } from './redact.js';

export interface XrayReplayOptions {
  url: string;
  unixSocket?: string;
  tls?: TlsTrust;
  transport: GoTransport;
  /** The proxy's secret now (--secret-*); otherwise the recorded bearer token. */
  secret?: string;
  /** The proxy's headers now (--header); otherwise the recorded ones. */
  headers?: [string, string][];
  timeoutSeconds?: number;
  kickOnDeny?: boolean;
  /** Print credentials in clear in the report. */
  showSecrets: boolean;
}

/** The headers the proxy's config added to a recorded request (not those Go's client writes itself). */
export function recordedHeaders(record: XrayRecord): [string, string][] {
  return record.request.headers.filter(([n]) => !TRANSPORT_HEADERS.has(n.toLowerCase()));
}

/** Headers Go's client writes itself: the recorded values are not resent. */
const TRANSPORT_HEADERS = new Set(['host', 'user-agent', 'content-length', 'content-type', 'accept-encoding', 'authorization', 'transfer-encoding', 'connection']);

/**
 * Refuses a recording that cannot be replayed faithfully: masked credentials (the backend decides
 * on them), an unknown dialect, a line that is not an exchange.
 */
export function checkXrayReplayable(records: readonly XrayRecord[], file: string): void {
  const masked = records.find((r) => !r.secrets);
  if (masked) {
    throw new InputError(`${file}:${lineOf(masked)}: recorded without --record-secrets: the credentials are masked and the backend decides on them, so it cannot be replayed (record again with xray-tap --record-secrets)`);
  }
  for (const record of records) {
    checkFields(record, file, [['dialect', 'string']]);
    try {
      dialectNamed(record.dialect);
    } catch {
      throw new InputError(`${file}:${lineOf(record)}: an unknown dialect ${JSON.stringify(record.dialect)}`);
    }
    checkFields(record, file, [['dialect', 'string'], ['event', 'string?'], ['credential', 'string?'], ['request', 'object'], ['request.headers', 'pairs'], ['request.body', 'string'], ['class', 'string'], ['user', 'object?']]);
  }
}

/** The verdict as compared: the class, and for an allow the user it names. */
function verdictWord(cls: string, user: unknown): string {
  return cls === 'allow' && user && typeof user === 'object' ? `allow ${JSON.stringify(user)}` : cls;
}

export function xrayReplayTarget(options: XrayReplayOptions): ReplayTarget<XrayRecord> {
  const mask = (record: XrayRecord, text: string): string => (options.showSecrets || !record.credential ? text : redactText(text, [record.credential]));
  return {
    recorded: (record) => verdictWord(record.class, record.user),
    describe: (record) => `${record.event ?? 'not-an-event'} ${record.credential === null ? '' : options.showSecrets ? record.credential : maskCredential(record.credential)}`.trim(),
    async send(record) {
      const dialect = dialectNamed(record.dialect);
      const bearer = record.request.headers.find(([n]) => n.toLowerCase() === 'authorization')?.[1].replace(/^Bearer\s+/i, '');

      const exchange = await sendEvent({
        url: options.url, unixSocket: options.unixSocket, tls: options.tls, transport: options.transport, dialect,
        type: record.event ?? 'authorization',
        facts: { credential: record.credential ?? '', connectionId: '', protocol: '', sourceIp: '', sourcePort: 0, localIp: '', localPort: 0 },
        rawBody: withTimestampNow(record, dialect.body.find((f) => f.fact === 'timestamp')?.key),
        secret: options.secret ?? bearer,
        headers: options.headers ?? recordedHeaders(record),
        timeoutSeconds: options.timeoutSeconds ?? dialect.timeout.default,
        kickOnDeny: options.kickOnDeny,
      });
      const verdict = verdictWord(exchange.verdict.class, exchange.verdict.user);
      // A deny's reason starts with its status; an allow's does not name it.
      const reason = exchange.verdict.reason;
      return { verdict, detail: mask(record, exchange.reply && !reason.startsWith(String(exchange.reply.status)) ? `${exchange.reply.status}: ${reason}` : reason) };
    },
  };
}

/** The recorded body with the dialect's timestamp key set to now (the rest byte for byte). */
function withTimestampNow(record: XrayRecord, key: string | undefined): string {
  if (key === undefined) return record.request.body;
  const now = Math.floor(Date.now() / 1000);
  return record.request.body.replace(new RegExp(`("${key}"\\s*:\\s*)\\d+`), `$1${now}`);
}
