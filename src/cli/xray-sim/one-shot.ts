/** xray-sim's one-shot mode: one event, and what the proxy makes of the reply, masked unless asked. */
import { type Dialect, type EventType } from '../../xray/wire/dialect.js';
import { type EventExchange } from '../../xray/client.js';
import { redactBody, redactHeaders, redactText, redactUrl } from '../../xray/redact.js';
import { stdoutColors } from '../io.js';
import { type PreparedEvent } from './options.js';

/** What must never be printed: the credential, the secret and the configured header values. */
export function secretsOf(credential: string, prepared: Pick<PreparedEvent, 'secret' | 'headers'>): string[] {
  return [credential, ...(prepared.secret === undefined ? [] : [prepared.secret]), ...prepared.headers.map(([, value]) => value)];
}

/** Headers and URLs as they may be printed: as they are with --show-secrets, masked otherwise. */
function printed(show: boolean): { headers: (h: Record<string, string>, custom: readonly string[], secrets?: readonly string[]) => Record<string, string>; url: (u: string) => string } {
  return {
    headers: (h, custom, secrets = []) => (show ? h : redactHeaders(h, custom, secrets)),
    url: (u) => (show ? u : redactUrl(u)),
  };
}

/** `show`: print secrets in clear (--show-secrets); otherwise every credential is masked. */
export function exchangeJson(exchange: EventExchange, credential: string, customHeaders: readonly string[], secrets: readonly string[], show = false): Record<string, unknown> {
  const { headers, url } = printed(show);
  return {
    verdict: exchange.verdict.verdict,
    class: exchange.verdict.class,
    status: exchange.reply?.status ?? null,
    user: exchange.verdict.user ?? null,
    latencyMs: exchange.latencyMs,
    request: {
      ...exchange.request, url: url(exchange.request.url),
      headers: headers(exchange.request.headers, customHeaders, secrets), body: redactBody(exchange.request.body, credential, secrets),
    },
    warnings: exchange.verdict.warnings.map((w) => redactText(w, secrets)),
    redirects: exchange.redirects.map((r) => ({ status: r.status, location: url(redactText(r.location, secrets)) })),
    reason: redactText(exchange.verdict.reason, secrets),
    effect: exchange.verdict.effect,
    reply: exchange.reply
      ? { proto: exchange.reply.proto, headers: headers(exchange.reply.headers, [], secrets), body: redactText(truncate(exchange.reply.body), secrets), bytes: exchange.reply.bytes, truncated: exchange.reply.truncated }
      : null,
  };
}

function truncate(text: string, limit = 4096): string {
  return text.length <= limit ? text : `${text.slice(0, limit)}… (${text.length - limit} more characters)`;
}

export function renderExchange(
  exchange: EventExchange, dialect: Dialect, event: EventType, credential: string, customHeaders: readonly string[], secrets: readonly string[], show = false,
): string {
  const c = stdoutColors();
  const { headers, url } = printed(show);
  const lines: string[] = [];
  lines.push(c.bold(`POST ${url(exchange.request.url)}`) + c.dim(`  (${dialect.name} dialect, ${event})`));
  for (const [name, value] of Object.entries(headers(exchange.request.headers, customHeaders))) lines.push(c.dim(`> ${name}: ${value}`));
  lines.push(`> ${redactBody(exchange.request.body, credential, secrets)}`);
  for (const hop of exchange.redirects) lines.push(c.yellow(`< ${hop.status} redirect to ${url(redactText(hop.location, secrets))}: followed, as Go does`));
  if (exchange.reply) {
    lines.push(c.bold(`< ${exchange.reply.status}`) + c.dim(`  ${exchange.latencyMs} ms, ${exchange.reply.bytes} bytes${exchange.reply.truncated ? ' (authkit stopped at its read cap)' : ''}`));
    for (const [name, value] of Object.entries(headers(exchange.reply.headers, [], secrets))) lines.push(c.dim(`< ${name}: ${value}`));
    if (exchange.reply.body !== '') lines.push(`< ${redactText(truncate(exchange.reply.body, 2000), secrets)}`);
  } else {
    lines.push(c.bold('< no reply') + c.dim(`  after ${exchange.latencyMs} ms`));
  }
  const v = exchange.verdict;
  const paint = v.class === 'allow' ? c.green : v.verdict === 'ignored' ? c.yellow : c.red;
  lines.push(`${paint(`${v.verdict.toUpperCase()} (${v.class})`)}: ${redactText(v.reason, secrets)}`);
  if (v.user) lines.push(`user: ${JSON.stringify(v.user)}`);
  lines.push(`effect: ${v.effect}`);
  for (const warning of v.warnings) lines.push(c.yellow(`warning: ${redactText(warning, secrets)}`));
  return lines.join('\n');
}

