/**
 * Proksi's external_auth schema (fixtures/capnp/external_auth.capnp, file ID 0xfce43831b44a3a13),
 * as layouts: `capnp compile -ocapnp` gives every field's place.
 *   AuthRequest  0 data words, 6 pointers: method, host, path, query, clientIp, headers
 *   Header       0 data words, 2 pointers: name, value
 *   AuthDecision 1 data word (action u16 @0, statusCode u16 @2), 3 pointers: upstreamValue,
 *                redirectLocation, responseBody
 */
import type { StructBuilder, StructReader } from './codec.js';

/** ExternalAuthService's interface ID, derived from the file ID: a schema compiled with another file ID has another. */
export const EXTERNAL_AUTH_INTERFACE_ID = 0xe33a260d84ec3ad3n;
export const CHECK_METHOD_ID = 0;

export interface Header {
  name: string;
  value: string;
}

export interface AuthRequest {
  method: string;
  host: string;
  path: string;
  query: string;
  clientIp: string;
  headers: Header[];
}

export const DECISION_ACTIONS = ['pass', 'block', 'redirect'] as const;
export type DecisionAction = (typeof DECISION_ACTIONS)[number];

export interface AuthDecision {
  /** A number when the service sent an enumerant this schema does not have. */
  action: DecisionAction | number;
  statusCode: number;
  upstreamValue: string;
  redirectLocation: string;
  responseBody: string;
  /** Text fields that were not valid UTF-8 (replaced here; Proksi's reader fails on them). */
  invalidUtf8?: string[];
}

export const AUTH_REQUEST_LAYOUT = { dataWords: 0, ptrCount: 6 } as const;
export const AUTH_DECISION_LAYOUT = { dataWords: 1, ptrCount: 3 } as const;

export function writeAuthRequest(target: StructBuilder, request: AuthRequest): void {
  target.setText(0, request.method).setText(1, request.host).setText(2, request.path).setText(3, request.query).setText(4, request.clientIp);
  const headers = target.initStructList(5, request.headers.length, 0, 2);
  for (let i = 0; i < headers.length; i++) headers[i]!.setText(0, request.headers[i]!.name).setText(1, request.headers[i]!.value);
}

export function readAuthRequest(source: StructReader): AuthRequest {
  return {
    method: source.text(0), host: source.text(1), path: source.text(2), query: source.text(3), clientIp: source.text(4),
    headers: source.structList(5).map((h) => ({ name: h.text(0), value: h.text(1) })),
  };
}

export function writeAuthDecision(target: StructBuilder, decision: AuthDecision): void {
  const action = typeof decision.action === 'number' ? decision.action : DECISION_ACTIONS.indexOf(decision.action);
  target.setU16(0, action).setU16(2, decision.statusCode).setText(0, decision.upstreamValue).setText(1, decision.redirectLocation).setText(2, decision.responseBody);
}

export function readAuthDecision(source: StructReader): AuthDecision {
  const action = source.u16(0);
  const upstreamValue = source.text(0);
  const redirectLocation = source.text(1);
  // Invalid UTF-8 always decodes to U+FFFD, so text without one needs no strict second look.
  const invalid: string[] = [];
  if (upstreamValue.includes('\uFFFD') && !source.textIsUtf8(0)) invalid.push('upstreamValue');
  if (redirectLocation.includes('\uFFFD') && !source.textIsUtf8(1)) invalid.push('redirectLocation');
  return {
    ...(invalid.length > 0 ? { invalidUtf8: invalid } : {}),
    action: DECISION_ACTIONS[action] ?? action,
    statusCode: source.u16(2),
    upstreamValue,
    redirectLocation,
    responseBody: lenientText(source, 2),
  };
}

/** Proksi never reads responseBody, so a broken one must not turn a decision into a failure. */
function lenientText(source: StructReader, index: number): string {
  try {
    return source.text(index);
  } catch {
    return '';
  }
}
