/**
 * The one method this service implements, check(), as the connection sees it: its params read
 * into a request, the handler's decision checked before it is encoded, and the exception
 * reasons for a call to another interface or method, worded as the C++ library words them
 * (docs/proksi-external-auth.md §6) so a caller sees the same text from either server.
 */
import type { StructReader } from '../wire/codec.js';
import { DECISION_ACTIONS, EXTERNAL_AUTH_INTERFACE_ID, readAuthRequest, type AuthDecision, type AuthRequest } from '../wire/schema.js';

/** As the C++ library names the interface in its "not implemented" exceptions. */
const INTERFACE_NAME = 'external_auth.capnp:ExternalAuthService';

export function interfaceNotImplemented(interfaceId: bigint): string {
  return `Requested interface not implemented.; actualInterfaceName = ${INTERFACE_NAME}; requestedTypeId = ${interfaceId}`;
}

export function methodNotImplemented(methodId: number): string {
  return `Method not implemented.; interfaceName = ${INTERFACE_NAME}; typeId = ${EXTERNAL_AUTH_INTERFACE_ID}; methodId = ${methodId}`;
}

/** The request of a check() call; a null params or request struct reads as the default (empty) request. */
export function requestOf(params: StructReader | undefined): AuthRequest {
  const request = params?.struct(0);
  return request ? readAuthRequest(request) : { method: '', host: '', path: '', query: '', clientIp: '', headers: [] };
}

/** What a handler returned, checked so the wire gets what it means (a TypeError becomes an exception Return). */
export function checkedDecision(decision: AuthDecision): AuthDecision {
  if (typeof decision !== 'object' || decision === null) throw new TypeError('the handler returned no decision');
  const { action, statusCode } = decision;
  const actionOk = typeof action === 'number' ? Number.isInteger(action) && action >= 0 && action <= 0xffff : (DECISION_ACTIONS as readonly string[]).includes(action);
  if (!actionOk) throw new TypeError('the handler returned a decision with an invalid action');
  if (!Number.isInteger(statusCode) || statusCode < 0 || statusCode > 0xffff) throw new TypeError('the handler returned a decision with an invalid statusCode');
  for (const field of ['upstreamValue', 'redirectLocation', 'responseBody'] as const) {
    if (decision[field] !== undefined && typeof decision[field] !== 'string') throw new TypeError(`the handler returned a decision with a non-string ${field}`);
  }
  return { action, statusCode, upstreamValue: decision.upstreamValue ?? '', redirectLocation: decision.redirectLocation ?? '', responseBody: decision.responseBody ?? '' };
}
