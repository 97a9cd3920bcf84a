/**
 * The backend's secret and required headers: `Authorization: Bearer <secret>` and each configured
 * header with exactly its value, as the proxy sends them (docs/xray-extauth.md §2.1). Every value is
 * compared in constant time, and all of them are compared even after one fails.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export class RequestGuard {
  private readonly headers: (readonly [string, string])[];

  constructor(
    private readonly secret: string | undefined,
    headers: readonly (readonly [string, string])[],
  ) {
    this.headers = headers.map(([name, value]) => [name.toLowerCase(), value.trim()] as const);
  }

  /** The request carries the secret and every required header. */
  admits(req: IncomingMessage): boolean {
    let ok = true;
    if (this.secret !== undefined) ok = safeEqual(bearerToken(req.headers.authorization), this.secret) && ok;
    for (const [name, value] of this.headers) ok = safeEqual(headerText(req, name)?.trim(), value) && ok;
    return ok;
  }
}

function bearerToken(value: string | undefined): string | undefined {
  const match = /^\s*Bearer\s+(.*?)\s*$/i.exec(value ?? '');
  return match?.[1];
}

function headerText(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Constant-time comparison of a presented value with the expected one. */
function safeEqual(presented: string | undefined, expected: string): boolean {
  const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();
  return timingSafeEqual(digest(presented ?? ''), digest(expected)) && presented !== undefined;
}
