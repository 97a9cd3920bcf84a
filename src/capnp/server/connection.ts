/**
 * One client connection of capnp-serve, with its own answer table: the server side of authkit's
 * two-party RPC subset (docs/proksi-external-auth.md §6). It accepts Bootstrap (answered with the
 * service as export 0) and Calls on that export or pipelined on the bootstrap's promised answer,
 * as Proksi sends its first call (§3); a wrong interface or method gets an exception Return in the
 * C++ library's wording; a handler that throws or rejects gets an exception Return, never a
 * crash. Finish before Return does not cancel: the Return is still sent and the answer forgotten
 * once both happened. Release is ignored (the one export lives as long as the connection), Abort
 * closes the connection, and any other message, or bytes that are not RPC, get an Abort and the
 * connection closed.
 *
 * What a peer can make it hold is bounded (§8): its answers (maxAnswers, Bootstraps included),
 * its share of the bytes in partially received frames (maxPartialBytes, across all connections),
 * the frame bytes of unanswered calls (the flow limit) and the words read per message
 * (traversalWords).
 */
import type net from 'node:net';
import { performance } from 'node:perf_hooks';
import { FrameReader } from '../wire/codec.js';
import { encodeAbort, encodeBootstrapReturn, encodeDecisionReturn, encodeExceptionReturn, readRpcMessage, type ExceptionType, type RpcMessage } from '../wire/rpc.js';
import { CHECK_METHOD_ID, EXTERNAL_AUTH_INTERFACE_ID, type AuthDecision, type AuthRequest } from '../wire/schema.js';
import { checkedDecision, interfaceNotImplemented, methodNotImplemented, requestOf } from './check-call.js';
import { describeCall, elapsedMs, logField } from './log-line.js';
import type { AuthServerOptions, AuthServerStats } from './options.js';

/** A question the peer asked (a Bootstrap or a Call), held until it is both returned and finished. */
interface Answer {
  bootstrap: boolean;
  returned: boolean;
  finished: boolean;
  /** Size of the Call's frame, counted against the connection's flow limit until answered. */
  bytes?: number;
}

/**
 * Calls read but not yet answered may hold this many frame bytes per connection; above it the
 * connection is not read until answers go out (as C++'s flow limit does), so slow decisions
 * cannot make a peer's pipelined calls pile up in memory (docs/proksi-external-auth.md §8).
 */
const FLOW_LIMIT_BYTES = 16 * 1024 * 1024;

/** What every connection of one server shares: the handler, the log, the limits and the stats. */
export interface ConnectionSettings {
  decide: AuthServerOptions['decide'];
  log: (line: string) => void;
  /** Undefined when calls are not logged, so nothing is formatted for them. */
  logCall: ((line: string) => void) | undefined;
  maxFrameBytes: number;
  maxAnswers: number;
  /** Shared by all connections, counted in stats.partialBytes. */
  maxPartialBytes: number;
  traversalWords: number;
  stats: AuthServerStats;
}

export class Connection {
  private readonly frames = new FrameReader();
  private readonly answers = new Map<number, Answer>();
  /** The service has been handed out as export 0 (after a Bootstrap). */
  private exported = false;
  private closed = false;
  private paused = false;
  /** Paused by the flow limit (see FLOW_LIMIT_BYTES), apart from write back-pressure. */
  private flowPaused = false;
  private unanswered = 0;
  /** Size of the frame being handled. */
  private frameBytes = 0;
  /** This connection's share of stats.partialBytes: what its FrameReader holds. */
  private partialBytes = 0;
  /** Replies decided while a chunk is handled, sent in one write when it is done. */
  private batch: Uint8Array[] | undefined;

  constructor(
    private readonly socket: net.Socket,
    private readonly id: number,
    private readonly settings: ConnectionSettings,
  ) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', () => {}); // 'close' follows
    socket.once('close', () => {
      this.closed = true;
      this.release();
    });
  }

  get answersHeld(): number {
    return this.answers.size;
  }

  destroy(): void {
    this.closed = true;
    this.release();
    this.socket.destroy();
  }

  /** Gives back what this connection holds: its partial frame and its answers. */
  private release(): void {
    this.frames.clear();
    this.settings.stats.partialBytes -= this.partialBytes;
    this.partialBytes = 0;
    this.answers.clear();
  }

  private receive(chunk: Buffer): void {
    if (this.closed) return;
    let frames: Uint8Array[][];
    try {
      frames = this.frames.push(chunk);
    } catch (error) {
      return this.abort('failed', `not a Cap'n Proto frame: ${(error as Error).message}`);
    }
    if (this.frames.buffered > this.settings.maxFrameBytes) return this.abort('failed', `a frame larger than ${this.settings.maxFrameBytes} bytes`);
    const { stats, maxPartialBytes } = this.settings;
    const grew = this.frames.buffered > this.partialBytes;
    stats.partialBytes += this.frames.buffered - this.partialBytes;
    this.partialBytes = this.frames.buffered;
    if (grew && stats.partialBytes > maxPartialBytes) {
      stats.abortedMaxPartialBytes++;
      return this.abort('overloaded', `partial frames of all connections would hold more than ${maxPartialBytes} bytes (the cap on bytes held in frames not yet complete)`);
    }
    if (stats.partialBytes > stats.partialBytesPeak) stats.partialBytesPeak = stats.partialBytes;
    // Replies decided at once to the calls of one chunk leave in one write (cheaper than cork and
    // uncork, which go through the stream's buffered-write path even for one reply).
    this.batch = [];
    try {
      this.handleFrames(frames);
    } finally {
      this.flush();
    }
  }

  private flush(): void {
    const batch = this.batch;
    this.batch = undefined;
    if (batch && batch.length > 0) this.send(batch.length === 1 ? batch[0]! : Buffer.concat(batch));
  }

  private handleFrames(frames: Uint8Array[][]): void {
    for (const segments of frames) {
      if (this.closed) return;
      this.frameBytes = segments.reduce((sum, s) => sum + s.length, 0);
      let message: RpcMessage;
      try {
        message = readRpcMessage(segments, this.settings.traversalWords);
      } catch (error) {
        return this.abort('failed', `not an RPC message: ${(error as Error).message}`);
      }
      try {
        this.handle(message);
      } catch (error) {
        return this.abort('failed', `internal error: ${(error as Error).message}`);
      }
    }
  }

  private handle(message: RpcMessage): void {
    switch (message.type) {
      case 'bootstrap':
        if (this.answers.has(message.questionId)) return this.abort('failed', `questionId ${message.questionId} is already in use`);
        if (this.answers.size >= this.settings.maxAnswers) return this.tooManyAnswers();
        this.answers.set(message.questionId, { bootstrap: true, returned: true, finished: false });
        this.exported = true;
        this.send(encodeBootstrapReturn(message.questionId, 0));
        return;
      case 'call':
        return this.call(message);
      case 'finish': {
        const answer = this.answers.get(message.questionId);
        if (!answer) return; // lenient: C++ aborts on a Finish for an unknown question
        answer.finished = true;
        if (answer.returned) this.answers.delete(message.questionId);
        return;
      }
      case 'release':
        return; // the one export lives as long as the connection
      case 'abort':
        this.settings.log(`conn ${this.id}: the peer aborted: ${logField(`${message.exception.type}: ${message.exception.reason}`)}`);
        return this.destroy();
      case 'unimplemented':
        return; // we send only Returns and Abort; nothing to undo
      case 'return':
        return this.abort('failed', 'Return for a question this service never asked');
      default:
        return this.abort('unimplemented', `message type ${message.which} is not implemented by this service (Bootstrap, Call, Finish, Release and Abort are)`);
    }
  }

  private tooManyAnswers(): void {
    this.settings.stats.abortedMaxAnswers++;
    this.abort('overloaded', `more than ${this.settings.maxAnswers} answers outstanding on one connection (Bootstraps and Calls held until returned and finished)`);
  }

  private call(message: Extract<RpcMessage, { type: 'call' }>): void {
    const { questionId } = message;
    if (this.answers.has(questionId)) return this.abort('failed', `questionId ${questionId} is already in use`);
    if (this.answers.size >= this.settings.maxAnswers) return this.tooManyAnswers();
    const target = message.target;
    if ('importedCap' in target) {
      if (target.importedCap !== 0 || !this.exported) return this.abort('failed', 'Message target is not a current export ID.');
    } else {
      const promised = this.answers.get(target.promisedAnswer);
      if (!promised) return this.abort('failed', 'PromisedAnswer.questionId is not a current question.');
      if (!promised.bootstrap) return this.exception(questionId, 'failed', 'Pipeline call on a request that returned no capabilities or was already closed.', `call on the answer to question ${target.promisedAnswer}`);
    }
    if (message.interfaceId !== EXTERNAL_AUTH_INTERFACE_ID) {
      return this.exception(questionId, 'unimplemented', interfaceNotImplemented(message.interfaceId), `call to interface 0x${message.interfaceId.toString(16)}`);
    }
    if (message.methodId !== CHECK_METHOD_ID) {
      return this.exception(questionId, 'unimplemented', methodNotImplemented(message.methodId), `call to method ${message.methodId}`);
    }
    let request: AuthRequest;
    try {
      request = requestOf(message.content);
    } catch (error) {
      return this.exception(questionId, 'failed', `cannot read the check() params: ${(error as Error).message}`, 'check with unreadable params');
    }
    const answer: Answer = { bootstrap: false, returned: false, finished: false, bytes: this.frameBytes };
    this.answers.set(questionId, answer);
    this.unanswered += answer.bytes!;
    if (this.unanswered > FLOW_LIMIT_BYTES && !this.flowPaused) {
      this.flowPaused = true;
      this.socket.pause();
    }
    const started = this.settings.logCall ? performance.now() : 0;
    let result: Promise<AuthDecision> | AuthDecision;
    try {
      result = this.settings.decide(request);
    } catch (error) {
      return this.fail(questionId, answer, error, request, started);
    }
    if (isPromiseLike(result)) {
      Promise.resolve(result).then(
        (decision) => this.reply(questionId, answer, decision, request, started),
        (error: unknown) => this.fail(questionId, answer, error, request, started),
      );
    } else {
      this.reply(questionId, answer, result, request, started);
    }
  }

  private reply(questionId: number, answer: Answer, decision: AuthDecision, request: AuthRequest, started: number): void {
    let frame: Uint8Array;
    try {
      frame = encodeDecisionReturn(questionId, checkedDecision(decision));
    } catch (error) {
      return this.fail(questionId, answer, error, request, started);
    }
    const action = typeof decision.action === 'string' ? decision.action : 'other';
    this.settings.stats.decisions[action]++;
    this.returned(questionId, answer, frame);
    this.settings.logCall?.(`conn ${this.id}: ${describeCall(request)} -> ${action === 'other' ? `action ${decision.action}` : action} ${decision.statusCode} (${elapsedMs(started)} ms)${answer.finished ? ' after the caller finished it' : ''}`);
  }

  private fail(questionId: number, answer: Answer, error: unknown, request: AuthRequest, started: number): void {
    const reason = error instanceof Error ? error.message : String(error);
    this.settings.stats.exceptions++;
    this.returned(questionId, answer, encodeExceptionReturn(questionId, { type: 'failed', reason }));
    this.settings.logCall?.(`conn ${this.id}: ${describeCall(request)} -> exception failed: ${logField(reason)} (${elapsedMs(started)} ms)`);
  }

  /** An exception Return for a call that never reached the handler. */
  private exception(questionId: number, type: ExceptionType, reason: string, what: string): void {
    this.settings.stats.exceptions++;
    const answer: Answer = { bootstrap: false, returned: false, finished: false };
    this.answers.set(questionId, answer);
    this.returned(questionId, answer, encodeExceptionReturn(questionId, { type, reason }));
    this.settings.logCall?.(`conn ${this.id}: ${what} -> exception ${type}: ${reason.replace(/;.*/, '')}`);
  }

  private returned(questionId: number, answer: Answer, frame: Uint8Array): void {
    answer.returned = true;
    if (answer.bytes) {
      this.unanswered -= answer.bytes;
      if (this.flowPaused && this.unanswered <= FLOW_LIMIT_BYTES / 2) {
        this.flowPaused = false;
        if (!this.paused && !this.closed) this.socket.resume();
      }
    }
    if (answer.finished && this.answers.get(questionId) === answer) this.answers.delete(questionId);
    this.send(frame);
  }

  /** Writes a frame; reading pauses while the peer does not read what we send (bounded memory). */
  private send(frame: Uint8Array): void {
    if (this.closed) return;
    if (this.batch) {
      this.batch.push(frame);
      return;
    }
    if (!this.socket.write(frame) && !this.paused) {
      this.paused = true;
      this.socket.pause();
      this.socket.once('drain', () => {
        this.paused = false;
        if (!this.closed && !this.flowPaused) this.socket.resume();
      });
    }
  }

  /** Sends an Abort, then closes this connection (the others go on). */
  private abort(type: ExceptionType, reason: string): void {
    if (this.closed) return;
    this.flush(); // the replies before it go first
    this.settings.stats.aborted++;
    this.settings.log(`conn ${this.id}: aborted: ${logField(reason)}`);
    this.socket.write(encodeAbort({ type, reason }));
    this.closed = true;
    this.release();
    this.socket.end();
    // A peer that never reads must not keep the socket half-open.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }
}

function isPromiseLike<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}
