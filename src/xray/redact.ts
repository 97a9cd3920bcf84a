/**
 * What xray-sim may print of a request: the credential (a VLESS UUID or a Hysteria password is
 * the user's secret) and any Authorization value are masked, the rest shown as sent.
 */
import { isUuid } from './credential.js';

export function maskCredential(credential: string): string {
  if (isUuid(credential)) return `${credential.slice(0, 8)}-****-****-****-************`;
  return `<${Buffer.byteLength(credential)} bytes>`;
}

export function redactBody(body: string, credential: string): string {
  if (credential === '') return body;
  return body.split(JSON.stringify(credential).slice(1, -1)).join(maskCredential(credential));
}

const SECRET_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'x-api-key']);

/** `custom`: the names of headers the user configured, which may carry tokens too. */
export function redactHeaders(headers: Record<string, string>, custom: readonly string[] = []): Record<string, string> {
  const hidden = new Set([...SECRET_HEADERS, ...custom.map((name) => name.toLowerCase())]);
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    out[name] = hidden.has(name) ? value.replace(/^(\w+\s+)?.*$/, (_m, scheme: string | undefined) => `${scheme ?? ''}<redacted>`) : value;
  }
  return out;
}
