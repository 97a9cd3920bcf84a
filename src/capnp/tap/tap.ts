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
}

/** How a check ended when no decision came: as capnp-check names a failed call. */
export type CheckFailure = 'exception' | 'timeout' | 'disconnected' | 'protocol';

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
      const fromProksi = frameWatcher(id, 'Proksi', options.log, (message) => {
        if (message.type === 'call' && message.interfaceId === EXTERNAL_AUTH_INTERFACE_ID && message.methodId === CHECK_METHOD_ID) {
          const params = message.content?.struct(0);
          if (params) pending.set(message.questionId, { request: readAuthRequest(params), at: new Date(), sentAt: performance.now() });
        } else if (message.type === 'finish') {
          // A Finish before the Return: Proksi gave up on the call (its timeout_ms).
          const call = pending.get(message.questionId);
          if (call) emit(message.questionId, call, { failure: { kind: 'timeout', message: `Proksi cancelled the call after ${Math.round(performance.now() - call.sentAt)} ms (its timeout_ms is ${options.proksi.timeoutMs})` } });
        }
      });
      const fromService = frameWatcher(id, 'the service', options.log, (message) => {
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
        onUpstreamEnd: () => endAll('the service closed the connection before the Return'),
        onClosed: () => endAll('the connection closed before the Return'),
      };
    },
  });
}

/** Frames of one direction, decoded; a direction that stops making sense is no longer read. */
function frameWatcher(id: number, who: string, log: (line: string) => void, onMessage: (message: RpcMessage) => void): (chunk: Buffer) => void {
  const frames = new FrameReader();
  let reading = true;
  return (chunk) => {
    if (!reading) return;
    try {
      for (const segments of frames.push(chunk)) onMessage(readRpcMessage(segments));
    } catch (error) {
      reading = false;
      frames.clear();
      log(`connection ${id}: ${who}'s bytes are not Cap'n Proto RPC as authkit reads it (${(error as Error).message}): relayed, not read`);
    }
  };
}

/** The client request as far as the AuthRequest shows it (what Proksi forwarded of it). */
function clientOf(request: AuthRequest): ClientRequest {
  return { method: request.method, path: request.path, query: request.query, clientIp: request.clientIp, headers: request.headers.map((h) => [h.name, h.value]) };
}
