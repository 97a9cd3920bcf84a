/**
 * The pieces of capnp-serve's log lines (one per call, one per aborted connection). A line names
 * the call by method, host and path and never shows a header value: a header may carry a token.
 */
import { performance } from 'node:perf_hooks';
import { escapeForDisplay } from '../../shared/text.js';
import type { AuthRequest } from '../wire/schema.js';

/** Longest a field is shown in a log line (a path can be 1 MiB); past it the field is cut. */
const FIELD_LIMIT = 200;

/**
 * A peer's text for a log line: control bytes escaped, long values cut, and an empty value shown
 * as "" so that the line's fields stay where a reader expects them.
 */
export function logField(text: string): string {
  return escapeForDisplay(text, FIELD_LIMIT) || '""';
}

/** A call in a log line: method, host and path (never a header). */
export function describeCall(request: AuthRequest): string {
  return `${logField(request.method)} ${logField(request.host)} ${logField(request.path)}`;
}

/** Milliseconds since `started` (a performance.now() reading), for a call's log line. */
export function elapsedMs(started: number): string {
  return (performance.now() - started).toFixed(2);
}
