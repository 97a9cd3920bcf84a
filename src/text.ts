/** Small text rules shared across protocols: HTTP tokens, control bytes, safe display. */

/** An HTTP token (RFC 9110): header names and methods. */
export const HTTP_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Control bytes an HTTP header value may not hold: 0x00-0x1F except TAB, and 0x7F. */
export function hasControlBytes(text: string): boolean {
  return /[\x00-\x08\x0a-\x1f\x7f]/.test(text);
}

/** Text from a peer, made safe for a terminal or a log line: control bytes escaped, length bounded. */
export function escapeForDisplay(text: string, limit = 500): string {
  const escaped = text.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return escaped.length > limit ? `${escaped.slice(0, limit)}…` : escaped;
}
