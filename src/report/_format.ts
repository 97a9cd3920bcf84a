/**
 * Turning evidence into text, shared by the reporters. Evidence holds whatever the backend sent,
 * so everything here assumes hostile input: terminal escapes are made visible and huge values
 * are cut short.
 */
import { escapeForDisplay } from '../shared/text.js';
import type { CheckStatus, Evidence } from '../conformance/check.js';

/** Per value, in the text and JUnit reports; a body of megabytes helps nobody in a CI log. */
export const VALUE_LIMIT = 2048;

/**
 * Control characters as \uXXXX, except tab and newline: a backend could otherwise move the
 * cursor, recolour or retitle the terminal of whoever reads the report.
 */
export function printable(text: string): string {
  return escapeForDisplay(text, { limit: Infinity, keepLineBreaks: true });
}

/**
 * Evidence as JSON can hold it: bytes as hex, bigints as decimal strings, Maps and Headers as
 * objects, cycles cut. The JSON report uses this as is.
 */
export function plainValue(value: unknown, seen = new Set<object>()): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'symbol') return value.toString();
  if (typeof value === 'function') return undefined;
  if (typeof value !== 'object' || value === null) return value;
  if (value instanceof Uint8Array) return { hex: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex') };
  if (value instanceof ArrayBuffer) return { hex: Buffer.from(value).toString('hex') };
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  if (seen.has(value)) return '[circular]';
  seen.add(value);
  try {
    const object = value as { toJSON?: () => unknown; entries?: () => Iterable<[unknown, unknown]> };
    if (Array.isArray(value)) return value.map((item) => plainValue(item, seen));
    if (value instanceof Set) return [...value].map((item) => plainValue(item, seen));
    if (typeof object.toJSON === 'function') return plainValue(object.toJSON(), seen);
    // Map, Headers, URLSearchParams: their contents are not own properties.
    const entries = typeof object.entries === 'function' ? [...object.entries()] : Object.entries(value);
    return Object.fromEntries(entries.map(([key, item]) => [String(key), plainValue(item, seen)]));
  } finally {
    seen.delete(value);
  }
}

/** Strings as they are (a response body reads better unquoted), anything else as pretty JSON. */
export function formatValue(value: unknown, limit = VALUE_LIMIT): string {
  let text: string;
  if (typeof value === 'string') text = value;
  else if (value instanceof Uint8Array) text = `${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')} (${value.byteLength} bytes, hex)`;
  else text = JSON.stringify(plainValue(value), null, 2) ?? String(value);
  return printable(truncate(text, limit));
}

export function truncate(text: string, limit: number): string {
  if (text.length <= limit) return text;
  // Never split a surrogate pair: half of one is not valid UTF-8 or XML.
  const end = /[\uD800-\uDBFF]/.test(text.charAt(limit - 1)) ? limit - 1 : limit;
  return `${text.slice(0, end)}\n… truncated: ${text.length - end} more characters (the JSON report has them all)`;
}

/** "sent:", "received:", "expected:" blocks, one value per line when it fits. */
export function evidenceLines(evidence: readonly Evidence[]): string[] {
  const lines: string[] = [];
  for (const item of evidence) {
    const indent = item.label === undefined ? '' : '  ';
    if (item.label !== undefined) lines.push(`${printable(item.label)}:`);
    for (const key of ['sent', 'received', 'expected'] as const) {
      if (item[key] === undefined) continue;
      const text = formatValue(item[key]);
      if (!text.includes('\n')) lines.push(`${indent}${key}: ${text}`);
      else lines.push(`${indent}${key}:`, ...text.split('\n').map((line) => `${indent}  ${line}`));
    }
  }
  return lines;
}

/** Evidence is what the reader came for when something went wrong, and noise otherwise. */
const SHOWS_EVIDENCE = new Set<CheckStatus>(['fail', 'warn', 'error']);

/** A result's message, and its evidence if it went wrong, for a report's detail block. */
export function detailLines({ status, message, evidence }: { status: CheckStatus; message?: string; evidence?: readonly Evidence[] }): string[] {
  if (!SHOWS_EVIDENCE.has(status)) evidence = undefined;
  return [...(message === undefined ? [] : printable(truncate(message, VALUE_LIMIT)).split('\n')), ...evidenceLines(evidence ?? [])];
}
