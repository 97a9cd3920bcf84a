/**
 * A two-party RPC client for ExternalAuthService, speaking as Proksi's capnp-rust client does:
 * Bootstrap, then the first Call pipelined on the bootstrap's promised answer, later Calls to the
 * imported capability; a Finish after every Return; a timeout that cancels with Finish; every
 * pending call rejected when the connection closes, aborts, or sends something it cannot read.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { DecodeError } from '../shared/errors.js';
import { escapeForDisplay } from '../shared/text.js';
import { MAX_SOCKET_PATH_BYTES } from '../shared/unix-socket.js';
import { FrameReader } from './wire/codec.js';
import { decisionOf, encodeBootstrap, encodeCheckCall, encodeFinish, readRpcMessage, type MessageTarget, type RpcMessage } from './wire/rpc.js';
import { EXTERNAL_AUTH_INTERFACE_ID, type AuthDecision, type AuthRequest } from './wire/schema.js';

export type CallFailure = 'timeout' | 'exception' | 'aborted' | 'disconnected' | 'protocol' | 'connect';

export class CallError extends Error {
  override readonly name = 'CallError';
  constructor(readonly kind: CallFailure, message: string) {
    super(message);
  }
}

interface Question {
  /** The Return, handled at once: its bytes are only valid while it is being read. */
  settle: (message: Extract<RpcMessage, { type: 'return' }>) => void;
  reject: (error: CallError) => void;
  /** Finish has been sent (a cancel); the Return, when it comes, only frees the ID. */
  finished: boolean;
  /** The Return has come. */
  resolved: boolean;
  /** performance.now() by which the Return must come (Infinity: no timeout), and the timeout. */
  deadline: number;
  timeoutMs: number;
}

export interface CheckOptions {
  timeoutMs?: number;
  /** For tests of a service's error handling: another interface or method ID. */
  interfaceId?: bigint;
  methodId?: number;
}

export interface CheckReply {
  decision: AuthDecision;
  latencyMs: number;
}

/** Bytes read from the socket at a time, into one buffer reused for every read. */
const READ_BUFFER_BYTES = 64 * 1024;

export class AuthServiceClient {
  private readonly questions = new Map<number, Question>();
  private readonly freeIds: number[] = [];
  private nextId = 0;
  /** Borrowed: the socket reads into one reused buffer (see connect), so kept bytes are copied. */
  private frames = new FrameReader(true);
  private bootstrapId: number;
  private importedCap: number | undefined;
  private failure: CallError | undefined;
  /**
   * Frames waiting to be written, in order. Calls go out once the current microtasks have run, so
   * calls made together (64 lanes resuming after one read's Returns) share one write; a Finish
   * waits to go with the next Call (one write instead of two), or goes on the next turn.
   */
  private outgoing: Uint8Array[] = [];
  private flushScheduled: 'microtask' | 'immediate' | undefined;
  /** One timer for all questions, due at the earliest deadline (not one per call). */
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;

  private constructor(
    private readonly socket: net.Socket,
    reads: { receive: (chunk: Uint8Array) => void },
  ) {
    reads.receive = (chunk) => this.receive(chunk);
    socket.on('close', () => this.fail(new CallError('disconnected', 'the service closed the connection')));
    socket.on('error', (error: NodeJS.ErrnoException) => this.fail(new CallError('disconnected', `connection error: ${error.code ?? error.message}`)));
    this.bootstrapId = this.allocateId();
    this.ask(this.bootstrapId, (message) => this.bootstrapped(message), () => undefined);
    this.write(encodeBootstrap(this.bootstrapId));
  }

  /** Connects to a Unix socket; the errors a user can act on become one clear CallError. */
  static connect(path: string, timeoutMs = 5000): Promise<AuthServiceClient> {
    if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
      return Promise.reject(new CallError('connect', `${Buffer.byteLength(path)}-byte socket path: a Unix socket path holds at most ${MAX_SOCKET_PATH_BYTES} bytes`));
    }
    return new Promise((resolve, reject) => {
      // `onread` reads into one buffer and calls back with the byte count: no stream machinery
      // and no new Buffer per read on the path of every reply.
      const reads = { receive: (_chunk: Uint8Array): void => undefined };
      const buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
      const socket = net.createConnection({ path, onread: { buffer, callback: (n: number) => {
        reads.receive(buffer.subarray(0, n));
        return true;
      } } });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new CallError('connect', `no connection to ${path} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new AuthServiceClient(socket, reads));
      });
      socket.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new CallError('connect', describeConnectError(path, error)));
      });
    });
  }

  /** Calls check(); resolves with the decision and the time from sending the Call to its Return. */
  check(request: AuthRequest, options: CheckOptions = {}): Promise<CheckReply> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.allocateId();
    const target: MessageTarget = this.importedCap === undefined ? { promisedAnswer: this.bootstrapId } : { importedCap: this.importedCap };
    let frame: Uint8Array;
    try {
      frame = encodeCheckCall(id, target, request, options.interfaceId ?? EXTERNAL_AUTH_INTERFACE_ID, options.methodId ?? 0);
    } catch (error) {
      this.freeIds.push(id);
      return Promise.reject(error as Error);
    }
    return new Promise((resolve, reject) => {
      const started = performance.now();
      this.ask(id, (message) => {
        const latencyMs = Math.round((performance.now() - started) * 1000) / 1000;
        this.finish(id, true);
        if (message.result.kind === 'exception') return reject(new CallError('exception', `${message.result.exception.type}: ${message.result.exception.reason}`));
        try {
          resolve({ decision: decisionOf(message.result), latencyMs });
        } catch (error) {
          reject(new CallError('protocol', (error as Error).message));
        }
      }, reject, options.timeoutMs);
      this.write(frame);
    });
  }

  /** Sends any Finish still queued (a cancel must reach the service), then closes. */
  close(): void {
    this.flush();
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  get closed(): boolean {
    return this.failure !== undefined;
  }

  /** The bootstrap's Return: the imported capability stays ours, so tell the service not to release it. */
  private bootstrapped(message: Extract<RpcMessage, { type: 'return' }>): void {
    this.finish(this.bootstrapId, false);
    const result = message.result;
    const descriptor = result.kind === 'results' && result.capability !== undefined ? result.capTable[result.capability] : undefined;
    // senderHosted (1) or senderPromise (2): an export of the service we can call.
    if (descriptor && (descriptor.which === 1 || descriptor.which === 2)) {
      this.importedCap = descriptor.id;
      return;
    }
    const why = result.kind === 'exception' ? `${result.exception.type}: ${result.exception.reason}` : 'it returned no capability';
    this.fail(new CallError(result.kind === 'exception' ? 'exception' : 'protocol', `the bootstrap failed (${escapeForDisplay(why)}): no service to call`));
  }

  private write(frame: Uint8Array): void {
    this.outgoing.push(frame);
    if (this.flushScheduled === 'microtask') return;
    this.flushScheduled = 'microtask';
    queueMicrotask(() => this.flush());
  }

  private queueFinish(frame: Uint8Array): void {
    this.outgoing.push(frame);
    if (this.flushScheduled !== undefined) return;
    this.flushScheduled = 'immediate';
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = undefined;
    const frames = this.outgoing;
    if (frames.length === 0) return;
    this.outgoing = [];
    if (!this.socket.destroyed) this.socket.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames));
  }

  private allocateId(): number {
    return this.freeIds.pop() ?? this.nextId++;
  }

  /** Asks question `id`; with a timeout, Proksi drops the promise and capnp-rust sends Finish: the cancel. */
  private ask(id: number, settle: Question['settle'], reject: Question['reject'], timeoutMs?: number): void {
    const timed = timeoutMs !== undefined && timeoutMs > 0;
    const deadline = timed ? performance.now() + timeoutMs : Infinity;
    this.questions.set(id, { settle, reject, finished: false, resolved: false, deadline, timeoutMs: timeoutMs ?? 0 });
    if (deadline < this.timerAt) this.armTimer(deadline);
  }

  /**
   * Sets the one timer for `deadline`. It is unref'd: a question waits on the socket, which keeps
   * the process alive; a timer left for an answered question fires once and finds nothing due.
   */
  private armTimer(deadline: number): void {
    clearTimeout(this.timer);
    this.timerAt = deadline;
    this.timer = setTimeout(() => this.expire(), Math.max(1, Math.ceil(deadline - performance.now()))).unref();
  }

  /** Cancels every question past its deadline and sets the timer for the next. */
  private expire(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = performance.now();
    let next = Infinity;
    for (const [id, question] of this.questions) {
      if (question.resolved || question.finished) continue;
      if (question.deadline <= now) {
        this.finish(id, true);
        question.reject(new CallError('timeout', `no reply within ${question.timeoutMs} ms`));
      } else if (question.deadline < next) next = question.deadline;
    }
    if (next < Infinity) this.armTimer(next);
  }

  private finish(id: number, releaseResultCaps: boolean): void {
    const question = this.questions.get(id);
    if (!question || question.finished) return;
    question.finished = true;
    if (!this.failure) this.queueFinish(encodeFinish(id, releaseResultCaps));
    // An ID is free once its Return came and its Finish went.
    if (question.resolved) this.release(id);
  }

  private release(id: number): void {
    this.questions.delete(id);
    this.freeIds.push(id);
  }

  private receive(chunk: Uint8Array): void {
    try {
      for (const segments of this.frames.push(chunk)) this.dispatch(readRpcMessage(segments));
    } catch (error) {
      this.fail(new CallError('protocol', `the service sent bytes that are not Cap'n Proto RPC: ${error instanceof DecodeError ? error.message : String(error)}`));
      this.socket.destroy();
    }
  }

  private dispatch(message: RpcMessage): void {
    if (message.type === 'return') {
      const question = this.questions.get(message.answerId);
      if (!question) {
        // As C++ does: a Return for no question of ours means the peers disagree on the state.
        this.fail(new CallError('protocol', `the service sent a Return for question ${message.answerId}, which is not ours`));
        this.socket.destroy();
        return;
      }
      question.resolved = true;
      if (question.finished) this.release(message.answerId);
      else question.settle(message);
      return;
    }
    if (message.type === 'abort') {
      this.fail(new CallError('aborted', escapeForDisplay(`the service aborted the connection: ${message.exception.type}: ${message.exception.reason}`)));
      this.socket.destroy();
    } else if (message.type === 'unimplemented') {
      this.fail(new CallError('protocol', 'the service answered Unimplemented to one of our messages'));
      this.socket.destroy();
    }
    // Release, Finish and the rest concern capabilities we never export: nothing to do.
  }

  private fail(error: CallError): void {
    this.failure ??= error;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
    for (const [id, question] of this.questions) {
      question.reject(this.failure);
      this.questions.delete(id);
    }
  }
}

function describeConnectError(path: string, error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case 'ENOENT':
      return `no socket at ${path}`;
    case 'ECONNREFUSED':
      return `${path} is not a listening socket (nothing accepts connections there)`;
    case 'ENOTSOCK':
      return `${path} is not a socket`;
    case 'EACCES':
      return `permission denied on ${path}`;
    default:
      return `cannot connect to ${path}: ${error.code ?? error.message}`;
  }
}
