/**
 * `capnp-tap`: between Proksi and its external_auth service, on Unix sockets. Bytes are relayed
 * untouched (tap/relay.ts); a copy of each direction is read as Cap'n Proto RPC frames with the
 * project's codec, each check() Call paired with its Return (or its Finish, Proksi's timeout),
 * and what Proksi does with the answer taken from the model capnp-check uses (model.ts).
 */
import { performance } from 'node:perf_hooks';
import { startRelay, type Relay } from '../../tap/relay.js';
import { FrameReader } from '../wire/codec.js';
import { decisionOf, readRpcMessage, type RpcMessage } from '../wire/rpc.js';
import { readAuthRequest, CHECK_METHOD_ID, EXTERNAL_AUTH_INTERFACE_ID, type AuthDecision, type AuthRequest } from '../wire/schema.js';
import { errorOutcome, proksiOutcome, type ClientRequest, type ProksiOptions, type ProksiOutcome } from '../model.js';

export interface CapnpTapOptions {
  listen: string;
  upstream: string;
  proksi: ProksiOptions;
  onExchange: (exchange: TappedCheck) => void;
  log: (line: string) => void;
  onConnection?: (id: number) => void;
  onUpstreamDown?: (id: number, reason: string) => void;
  /** Calls one connection may have waiting for their Returns; past it the connection is no longer read. */
  maxPending?: number;
}

/** As capnp-serve's --max-answers: Proksi sends every check() on one connection, many at a time. */
export const DEFAULT_CAPNP_TAP_MAX_PENDING = 65_536;

/** How a check ended when no decision came: as capnp-check names a failed call. */
export type CheckFailure = 'exception' | 'timeout' | 'cancelled' | 'disconnected' | 'protocol';

export interface TappedCheck {
  connection: number;
  questionId: number;
  at: Date;
  offsetMs: number;
  request: AuthRequest;
  decision?: AuthDecision;
  failure?: { kind: CheckFailure; message: string };
  latencyMs: number;
  proksi: ProksiOutcome;
  warnings: string[];
}

interface PendingCall {
  request: AuthRequest;
  at: Date;
  sentAt: number;
}

export async function startCapnpTap(options: CapnpTapOptions): Promise<Relay> {
  const started = performance.now();
  const maxPending = options.maxPending ?? DEFAULT_CAPNP_TAP_MAX_PENDING;
  return startRelay({
    listen: { path: options.listen },
    upstream: { path: options.upstream },
    onUpstreamDown: (id, error) => options.onUpstreamDown?.(id, error.code === 'ENOENT' ? 'no such socket' : error.code === 'ECONNREFUSED' ? 'connection refused' : error.message),
    watch: (id) => {
      options.onConnection?.(id);
      const pending = new Map<number, PendingCall>();
      const emit = (questionId: number, call: PendingCall, end: { decision?: AuthDecision; failure?: TappedCheck['failure'] }): void => {
        pending.delete(questionId);
        const client = clientOf(call.request);
        const outcome = end.decision ? proksiOutcome(end.decision, client, options.proksi) : errorOutcome(client, options.proksi);
        options.onExchange({
          connection: id, questionId, at: call.at, offsetMs: Math.round((call.sentAt - started) * 100) / 100, request: call.request,
          ...end, latencyMs: Math.round((performance.now() - call.sentAt) * 100) / 100, proksi: outcome.proksi, warnings: outcome.warnings,
        });
      };
      // Both directions are read or neither: a Return is only understood with its Call.
      const state = { reading: true };
      const stopReading = (): void => {
        state.reading = false;
        if (pending.size > 0) options.log(`connection ${id}: ${pending.size} call(s) in flight no longer read: not reported`);
        pending.clear();
      };
      const fromProksi = frameWatcher(id, 'Proksi', options.log, state, stopReading, (message) => {
        if (message.type === 'call' && message.interfaceId === EXTERNAL_AUTH_INTERFACE_ID && message.methodId === CHECK_METHOD_ID) {
          const params = message.content?.struct(0);
          if (!params) return;
          if (pending.has(message.questionId)) options.log(`connection ${id}: question ${message.questionId} asked again before its Return: the earlier call is not reported`);
          else if (pending.size >= maxPending) {
            options.log(`connection ${id}: more than ${maxPending} calls waiting for their Returns (--max-pending): relayed, no longer read`);
            stopReading();
            return;
          }
          pending.set(message.questionId, { request: readAuthRequest(params), at: new Date(), sentAt: performance.now() });
        } else if (message.type === 'finish') {
          // A Finish before the Return: Proksi gave up on the call, at its timeout_ms (within 5 %)
          // or because its client went away.
          const call = pending.get(message.questionId);
          if (!call) return;
          const waited = performance.now() - call.sentAt;
          const timedOut = waited >= options.proksi.timeoutMs * 0.95;
          emit(message.questionId, call, {
            failure: timedOut
              ? { kind: 'timeout', message: `Proksi gave up after ${Math.round(waited)} ms (its timeout_ms is ${options.proksi.timeoutMs})` }
              : { kind: 'cancelled', message: `Proksi cancelled the call after ${Math.round(waited)} ms, before its timeout_ms (${options.proksi.timeoutMs}): its client went away` },
          });
        }
      });
      const fromService = frameWatcher(id, 'the service', options.log, state, stopReading, (message) => {
        if (message.type !== 'return') return;
        const call = pending.get(message.answerId);
        if (!call) return;
        if (message.result.kind === 'exception') {
          emit(message.answerId, call, { failure: { kind: 'exception', message: message.result.exception.reason } });
          return;
        }
        try {
          emit(message.answerId, call, { decision: decisionOf(message.result) });
        } catch (error) {
          emit(message.answerId, call, { failure: { kind: 'protocol', message: (error as Error).message } });
        }
      });
      const endAll = (why: string): void => {
        for (const [questionId, call] of pending) emit(questionId, call, { failure: { kind: 'disconnected', message: why } });
      };
      return {
        onClientBytes: fromProksi,
        onUpstreamBytes: fromService,
        onClientEnd: () => endAll('Proksi closed the connection before the Return'),
        onUpstreamEnd: (reset) => endAll(reset ? 'the service reset the connection before the Return' : 'the service closed the connection before the Return'),
        onClosed: () => endAll('the connection closed before the Return'),
        // The tap stopping is neither side's doing: calls in flight are not reported.
        onStop: () => {
          if (pending.size > 0) options.log(`connection ${id}: ${pending.size} call(s) in flight when the tap stopped: not reported`);
          pending.clear();
        },
      };
    },
  });
}

/** Frames of one direction, decoded; a direction that stops making sense stops the reading of both. */
function frameWatcher(id: number, who: string, log: (line: string) => void, state: { reading: boolean }, stop: () => void, onMessage: (message: RpcMessage) => void): (chunk: Buffer) => void {
  const frames = new FrameReader();
  return (chunk) => {
    if (!state.reading) return;
    try {
      for (const segments of frames.push(chunk)) {
        onMessage(readRpcMessage(segments));
        // A message that stopped the reading (a bound passed): the rest is relayed unread.
        if (!state.reading) {
          frames.clear();
          return;
        }
      }
    } catch (error) {
      frames.clear();
      log(`connection ${id}: ${who}'s bytes are not Cap'n Proto RPC as authkit reads it (${(error as Error).message}): relayed, no longer read`);
      stop();
    }
  };
}

/** The client request as far as the AuthRequest shows it (what Proksi forwarded of it). */
function clientOf(request: AuthRequest): ClientRequest {
  return { method: request.method, path: request.path, query: request.query, clientIp: request.clientIp, headers: request.headers.map((h) => [h.name, h.value]) };
}
