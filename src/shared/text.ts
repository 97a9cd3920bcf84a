/** Small text rules shared across protocols: HTTP tokens, control bytes, safe display. */

/** An HTTP token (RFC 9110): header names and methods. */
export const HTTP_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Control bytes an HTTP header value may not hold: 0x00-0x1F except TAB, and 0x7F. */
export function hasControlBytes(text: string): boolean {
  return /[\x00-\x08\x0a-\x1f\x7f]/.test(text);
}

/**
 * The one escaper for text from a peer or a user on its way to a terminal, a log line or a report:
 * C0 and C1 control characters and DEL as \\uXXXX (an escape sequence can rewrite a terminal),
 * optionally keeping tab and line feed (multi-line reports), and the length bounded.
 */
export function escapeForDisplay(text: string, options: number | { limit?: number; keepLineBreaks?: boolean } = {}): string {
  const { limit = 500, keepLineBreaks = false } = typeof options === 'number' ? { limit: options } : options;
  const controls = keepLineBreaks ? /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g : /[\x00-\x1f\x7f-\x9f]/g;
  const escaped = text.replace(controls, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return escaped.length > limit ? `${escaped.slice(0, limit)}…` : escaped;
}

/**
 * `n` rounded, its digits grouped by threes with commas: what toLocaleString('en-US') prints
 * (but never -0), without loading ICU's number formatting, which costs ~20 ms the first time (in every load
 * run's first progress update, on its measured CPU).
 */
export function groupDigits(n: number): string {
  const rounded = Math.round(n);
  if (!Number.isSafeInteger(rounded)) return rounded.toLocaleString('en-US');
  const digits = String(Math.abs(rounded)).replace(/\B(?=(\d{3})+$)/g, ',');
  return rounded < 0 ? `-${digits}` : digits; // -0 is not < 0
}
