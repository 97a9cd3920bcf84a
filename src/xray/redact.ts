/**
 * What authkit may print of an exchange. Credentials (a VLESS UUID or a Hysteria password is
 * the user's secret), the proxy's secret and configured header values are masked wherever they
 * appear, in requests and in replies (backends echo them in error messages), and so are a URL's
 * userinfo and query values (Hysteria users put a token there).
 */
import { isUuid } from './wire/credential.js';
import { isSecretHeader, maskHeaderValue } from '../shared/redact.js';

export function maskCredential(credential: string): string {
  if (isUuid(credential)) return `${credential.slice(0, 8)}-****-****-****-************`;
  return `<${Buffer.byteLength(credential)} bytes>`;
}

/** Short values would mask innocent text ("a" everywhere), so only these are masked in free text. */
const MIN_MASKED_LENGTH = 6;

/** Masks each secret wherever it occurs in free text (reply bodies, messages). */
export function redactText(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length < MIN_MASKED_LENGTH) continue;
    out = out.split(secret).join(isUuid(secret) ? maskCredential(secret) : '<redacted>');
  }
  return out;
}

/**
 * A request body: the credential as a JSON string value (not a key, however short), then any
 * other secret in free text.
 */
export function redactBody(body: string, credential: string, secrets: readonly string[] = []): string {
  const token = JSON.stringify(credential);
  const asValue = credential === '' ? body : body.replace(new RegExp(`${escapeRegExp(token)}(?!\\s*:)`, 'g'), JSON.stringify(maskCredential(credential)));
  return redactText(asValue, secrets);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** `custom`: the names of headers the user configured, which may carry tokens too. */
export function redactHeaders(headers: Record<string, string>, custom: readonly string[] = [], secrets: readonly string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) out[name] = isSecretHeader(name, custom) ? maskHeaderValue(value) : redactText(value, secrets);
  return out;
}

export function redactUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return text;
  }
  if (url.username) url.username = 'redacted';
  if (url.password) url.password = 'redacted';
  for (const key of [...url.searchParams.keys()]) url.searchParams.set(key, 'redacted');
  return url.toString();
}

/** Every string inside a value (evidence for a report), with the secrets masked. */
export function redactDeep(value: unknown, secrets: readonly string[]): unknown {
  if (typeof value === 'string') return redactText(value, secrets);
  if (Array.isArray(value)) return value.map((item) => redactDeep(item, secrets));
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactDeep(v, secrets)]));
  }
  return value;
}
