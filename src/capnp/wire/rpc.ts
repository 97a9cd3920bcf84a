/**
 * The two-party RPC messages authkit speaks (rpc.capnp, layouts from `capnp compile -ocapnp`):
 *   Message   1 data word (which u16 @0), 1 pointer
 *   Bootstrap questionId u32 @0
 *   Call      3 data words: questionId u32 @0, methodId u16 @4, sendResultsTo u16 @6,
 *             interfaceId u64 @8; pointers: target, params, (thirdParty)
 *   Return    2 data words: answerId u32 @0, releaseParamCaps bool bit 32 (default true, so stored
 *             inverted), which u16 @6; pointer: results | exception
 *   Finish    questionId u32 @0, releaseResultCaps bool bit 32 (default true, stored inverted)
 *   MessageTarget  importedCap u32 @0, which u16 @4; pointer: promisedAnswer
 *   Payload   pointers: content, capTable (List(CapDescriptor: which u16 @0, id u32 @4, attachedFd
 *             u8 @2 default 255 stored XOR 255))
 *   Exception reason (ptr 0), type u16 @4, trace (ptr 1)
 */
import { DecodeError } from '../../shared/errors.js';
import { MessageBuilder, MessageReader, type StructReader } from './codec.js';
import { AUTH_DECISION_LAYOUT, AUTH_REQUEST_LAYOUT, CHECK_METHOD_ID, EXTERNAL_AUTH_INTERFACE_ID, readAuthDecision, writeAuthDecision, writeAuthRequest, type AuthDecision, type AuthRequest } from './schema.js';

const MESSAGE = { unimplemented: 0, abort: 1, call: 2, return: 3, finish: 4, release: 6, bootstrap: 8 } as const;
const RETURN = { results: 0, exception: 1, canceled: 2 } as const;
export const EXCEPTION_TYPES = ['failed', 'overloaded', 'disconnected', 'unimplemented'] as const;
export type ExceptionType = (typeof EXCEPTION_TYPES)[number];

export type MessageTarget = { importedCap: number } | { promisedAnswer: number };

export interface RpcException {
  reason: string;
  type: ExceptionType | number;
}

export type RpcMessage =
  | { type: 'bootstrap'; questionId: number }
  | { type: 'call'; questionId: number; target: MessageTarget; interfaceId: bigint; methodId: number; content?: StructReader }
  | { type: 'return'; answerId: number; result: ReturnResult }
  | { type: 'finish'; questionId: number }
  | { type: 'release'; id: number; referenceCount: number }
  | { type: 'abort'; exception: RpcException }
  | { type: 'unimplemented' }
  | { type: 'other'; which: number };

export type ReturnResult =
  | { kind: 'results'; content?: StructReader; capability?: number; capTable: { which: number; id: number }[] }
  | { kind: 'exception'; exception: RpcException }
  | { kind: 'other'; which: number };

function readException(s: StructReader | undefined): RpcException {
  if (!s) return { reason: '', type: 'failed' };
  const type = s.u16(4);
  return { reason: s.text(0), type: EXCEPTION_TYPES[type] ?? type };
}

function readTarget(s: StructReader | undefined): MessageTarget {
  if (!s) throw new DecodeError('rpc Call', 0, 'no target');
  const which = s.u16(4);
  if (which === 0) return { importedCap: s.u32(0) };
  if (which === 1) {
    const answer = s.struct(0);
    if (!answer) throw new DecodeError('rpc Call', 0, 'promisedAnswer target without its question');
    return { promisedAnswer: answer.u32(0) };
  }
  throw new DecodeError('rpc Call', 0, `unknown target kind ${which}`);
}

/**
 * Reads one RPC message. `traversalWords` bounds the words the reader may visit, the message's
 * header and the Call's params (read later, through `content`) together; past it a read throws.
 */
export function readRpcMessage(segments: readonly Uint8Array[], traversalWords?: number): RpcMessage {
  const root = new MessageReader(segments, traversalWords).root();
  const which = root.u16(0);
  switch (which) {
    case MESSAGE.bootstrap:
      return { type: 'bootstrap', questionId: root.struct(0)?.u32(0) ?? 0 };
    case MESSAGE.call: {
      const call = root.struct(0);
      if (!call) throw new DecodeError('rpc Call', 0, 'empty');
      const params = call.struct(1);
      return {
        type: 'call', questionId: call.u32(0), target: readTarget(call.struct(0)), interfaceId: call.u64(8), methodId: call.u16(4),
        content: params?.struct(0),
      };
    }
    case MESSAGE.return: {
      const ret = root.struct(0);
      if (!ret) throw new DecodeError('rpc Return', 0, 'empty');
      const kind = ret.u16(6);
      if (kind === RETURN.results) {
        const payload = ret.struct(0);
        const capTable = (payload?.structList(1) ?? []).map((c) => ({ which: c.u16(0), id: c.u32(4) }));
        const capability = payload?.isCapability(0) ? payload.capability(0) : undefined;
        return { type: 'return', answerId: ret.u32(0), result: { kind: 'results', content: capability === undefined ? payload?.struct(0) : undefined, capability, capTable } };
      }
      if (kind === RETURN.exception) return { type: 'return', answerId: ret.u32(0), result: { kind: 'exception', exception: readException(ret.struct(0)) } };
      return { type: 'return', answerId: ret.u32(0), result: { kind: 'other', which: kind } };
    }
    case MESSAGE.finish:
      return { type: 'finish', questionId: root.struct(0)?.u32(0) ?? 0 };
    case MESSAGE.release: {
      const release = root.struct(0);
      return { type: 'release', id: release?.u32(0) ?? 0, referenceCount: release?.u32(4) ?? 0 };
    }
    case MESSAGE.abort:
      return { type: 'abort', exception: readException(root.struct(0)) };
    case MESSAGE.unimplemented:
      return { type: 'unimplemented' };
    default:
      return { type: 'other', which };
  }
}

/** `bytes`: about how long the frame will be (see MessageBuilder). */
function message(which: number, bytes: number): { builder: MessageBuilder; body: (dataWords: number, ptrCount: number) => ReturnType<ReturnType<MessageBuilder['initRoot']>['initStruct']> } {
  const builder = new MessageBuilder(bytes);
  const root = builder.initRoot(1, 1).setU16(0, which);
  return { builder, body: (dataWords, ptrCount) => root.initStruct(0, dataWords, ptrCount) };
}

export function encodeBootstrap(questionId: number): Uint8Array {
  const m = message(MESSAGE.bootstrap, 48);
  m.body(1, 1).setU32(0, questionId);
  return m.builder.frame();
}

export function encodeCheckCall(questionId: number, target: MessageTarget, request: AuthRequest, interfaceId = EXTERNAL_AUTH_INTERFACE_ID, methodId = CHECK_METHOD_ID): Uint8Array {
  // Fixed words (table, Message, Call, target, payload, params, request, headers' tag) and per text
  // a word of NUL and padding at most; non-ASCII text makes the builder grow.
  let textBytes = request.method.length + request.host.length + request.path.length + request.query.length + request.clientIp.length;
  for (const h of request.headers) textBytes += h.name.length + h.value.length;
  const m = message(MESSAGE.call, 224 + 5 * 8 + request.headers.length * 32 + textBytes);
  const call = m.body(3, 3).setU32(0, questionId).setU16(4, methodId).setU16(6, 0).setU64(8, interfaceId);
  const t = call.initStruct(0, 1, 1);
  if ('importedCap' in target) t.setU32(0, target.importedCap).setU16(4, 0);
  else t.setU16(4, 1).initStruct(0, 1, 1).setU32(0, target.promisedAnswer);
  const payload = call.initStruct(1, 0, 2);
  const params = payload.initStruct(0, 0, 1);
  writeAuthRequest(params.initStruct(0, AUTH_REQUEST_LAYOUT.dataWords, AUTH_REQUEST_LAYOUT.ptrCount), request);
  return m.builder.frame();
}

/** `releaseResultCaps` false keeps capabilities the results carried (the bootstrap's service). */
export function encodeFinish(questionId: number, releaseResultCaps = true): Uint8Array {
  const m = message(MESSAGE.finish, 40);
  // The field defaults to true, so it is stored inverted.
  m.body(1, 0).setU32(0, questionId).setBool(32, !releaseResultCaps);
  return m.builder.frame();
}

/** The bootstrap's answer: the service as capability 0 of the cap table, hosted by us (export 0). */
export function encodeBootstrapReturn(answerId: number, exportId = 0): Uint8Array {
  const m = message(MESSAGE.return, 96);
  const payload = m.body(2, 1).setU32(0, answerId).setU16(6, RETURN.results).initStruct(0, 0, 2);
  payload.setCapability(0, 0);
  payload.initStructList(1, 1, 1, 1)[0]!.setU16(0, 1).setU32(4, exportId);
  return m.builder.frame();
}

export function encodeDecisionReturn(answerId: number, decision: AuthDecision): Uint8Array {
  const m = message(MESSAGE.return, 136 + decision.upstreamValue.length + decision.redirectLocation.length + decision.responseBody.length);
  const payload = m.body(2, 1).setU32(0, answerId).setU16(6, RETURN.results).initStruct(0, 0, 2);
  const results = payload.initStruct(0, 0, 1);
  writeAuthDecision(results.initStruct(0, AUTH_DECISION_LAYOUT.dataWords, AUTH_DECISION_LAYOUT.ptrCount), decision);
  return m.builder.frame();
}

export function encodeExceptionReturn(answerId: number, exception: RpcException): Uint8Array {
  const m = message(MESSAGE.return, 88 + exception.reason.length);
  const ret = m.body(2, 1).setU32(0, answerId).setU16(6, RETURN.exception);
  writeException(ret.initStruct(0, 1, 2), exception);
  return m.builder.frame();
}

export function encodeAbort(exception: RpcException): Uint8Array {
  const m = message(MESSAGE.abort, 64 + exception.reason.length);
  writeException(m.body(1, 2), exception);
  return m.builder.frame();
}

function writeException(target: ReturnType<MessageBuilder['initRoot']>, exception: RpcException): void {
  const type = typeof exception.type === 'number' ? exception.type : EXCEPTION_TYPES.indexOf(exception.type);
  target.setText(0, exception.reason).setU16(4, type);
}

/** The results of a check call: the `decision` struct, or an error saying what came instead. */
export function decisionOf(result: ReturnResult): AuthDecision {
  if (result.kind !== 'results' || !result.content) throw new DecodeError('rpc Return', 0, 'results without a decision');
  const decision = result.content.struct(0);
  if (!decision) throw new DecodeError('rpc Return', 0, 'results without a decision');
  return readAuthDecision(decision);
}
