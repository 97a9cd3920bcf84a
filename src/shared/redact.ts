/**
 * The one policy for secrets in output: the values of headers that carry credentials are masked
 * in every command's human output and --json, unless the user asks with --show-secrets. A
 * scheme such as "Bearer" stays visible, since it says what kind of credential went.
 */

/** Headers whose values are credentials, lower-case. */
export const SECRET_HEADERS: ReadonlySet<string> = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key']);

export function isSecretHeader(name: string, extra: readonly string[] = []): boolean {
  const lower = name.toLowerCase();
  return SECRET_HEADERS.has(lower) || extra.some((e) => e.toLowerCase() === lower);
}

/** `Bearer abc` -> `Bearer <redacted>`; anything else -> `<redacted>`. */
export function maskHeaderValue(value: string): string {
  return value.replace(/^(\w+\s+)?.*$/s, (_m, scheme: string | undefined) => `${scheme ?? ''}<redacted>`);
}

/** Header pairs with secret values masked (`extra`: more names, e.g. the ones a user configured). */
export function redactHeaderPairs(headers: readonly (readonly [string, string])[], extra: readonly string[] = []): [string, string][] {
  return headers.map(([name, value]) => [name, isSecretHeader(name, extra) ? maskHeaderValue(value) : value]);
}

/** `a=1&b&c=2` -> `a=redacted&b&c=redacted`: query values may be tokens (Hysteria users put them there). */
export function maskQueryValues(query: string): string {
  return query.split('&').map((pair) => (pair.includes('=') ? `${pair.slice(0, pair.indexOf('='))}=redacted` : pair)).join('&');
}
