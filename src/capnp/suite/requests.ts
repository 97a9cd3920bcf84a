/**
 * C08-C11: requests at the edges of what Proksi builds (docs/proksi-external-auth.md §4): as many
 * headers as max_headers lets through, none at all, values Proksi blanks, and a large value.
 * Any decision will do; the service must answer.
 */
import type { Check } from '../../conformance/check.js';
import { clientRequest, type ClientRequest } from '../model.js';
import { BASE, call, type CapnpSuiteContext } from './context.js';

/** BASE with `headers` after its Host header. */
const withHeaders = (headers: [string, string][]): ClientRequest => ({ ...BASE, headers: [...BASE.headers, ...headers] });

/** ID, title, and the headers after Host; C09 is an HTTP/2 request instead, which has no Host. */
const SHAPES: [string, string, [string, string][]][] = [
  // Host is one of the 32.
  ['C08', 'a request with 32 headers (Proksi\'s max_headers) is answered', Array.from({ length: 31 }, (_, i): [string, string] => [`x-h${i}`, `v${i}`])],
  ['C09', 'a request with no headers (an HTTP/2 client sends no Host) is answered', []],
  ['C10', 'a request whose header values were not ASCII (Proksi sends "") is answered', [['x-name', 'Jürgen'], ['x-other', 'ünïcödé']]],
  ['C11', 'a request with a 64 KiB header value is answered', [['x-big', 'a'.repeat(64 * 1024)]]],
];

export const requestShapeChecks: Check<CapnpSuiteContext>[] = SHAPES.map(([id, title, headers]) => ({
  id, level: 'SHOULD', title,
  async run(ctx, t) {
    const decision = await call(ctx, id === 'C09' ? clientRequest({ http2: true }) : withHeaders(headers));
    return t.pass(`answered ${decision.action} ${decision.statusCode}`);
  },
}));
