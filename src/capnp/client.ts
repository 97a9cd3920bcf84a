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
  resolve: (message: RpcMessage) => void;
  reject: (error: CallError) => void;
  /** Finish has been sent (a cancel); the Return, when it comes, only frees the ID. */
  finished: boolean;
  /** The Return has come. */
  resolved: boolean;
  timer?: NodeJS.Timeout;
}

export interface CheckOptions {
  timeoutMs?: number;
  /** For tests of a service's error handling: another interface or method ID. */
  interfaceId?: bigint;
  methodId?: number;
}

export class AuthServiceClient {
  private readonly questions = new Map<number, Question>();
  private readonly freeIds: number[] = [];
  private nextId = 0;
  private frames = new FrameReader();
  private bootstrapId: number;
  private importedCap: number | undefined;
  private failure: CallError | undefined;
  /** Finish messages wait to go out with the next Call (one write instead of two), or on the next turn. */
  private pendingFinishes: Uint8Array[] = [];
  private finishFlushScheduled = false;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('close', () => this.fail(new CallError('disconnected', 'the service closed the connection')));
    socket.on('error', (error: NodeJS.ErrnoException) => this.fail(new CallError('disconnected', `connection error: ${error.code ?? error.message}`)));
    this.bootstrapId = this.allocateId();
    const bootstrap = this.expect(this.bootstrapId);
    this.write(encodeBootstrap(this.bootstrapId));
    bootstrap.then(
      (message) => {
        // The imported capability stays ours: tell the service not to release it.
        this.finish(this.bootstrapId, false);
        const result = message.type === 'return' ? message.result : undefined;
        const descriptor = result?.kind === 'results' && result.capability !== undefined ? result.capTable[result.capability] : undefined;
        // senderHosted (1) or senderPromise (2): an export of the service we can call.
        if (descriptor && (descriptor.which === 1 || descriptor.which === 2)) {
          this.importedCap = descriptor.id;
          return;
        }
        const why = result?.kind === 'exception' ? `${result.exception.type}: ${result.exception.reason}` : 'it returned no capability';
        this.fail(new CallError(result?.kind === 'exception' ? 'exception' : 'protocol', `the bootstrap failed (${escapeForDisplay(why)}): no service to call`));
      },
      () => undefined,
    );
  }

  /** Connects to a Unix socket; the errors a user can act on become one clear CallError. */
  static connect(path: string, timeoutMs = 5000): Promise<AuthServiceClient> {
    if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
      return Promise.reject(new CallError('connect', `${Buffer.byteLength(path)}-byte socket path: a Unix socket path holds at most ${MAX_SOCKET_PATH_BYTES} bytes`));
    }
    return new Promise((resolve, reject) => {
      const socket = net.createConnection({ path });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new CallError('connect', `no connection to ${path} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new AuthServiceClient(socket));
      });
      socket.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new CallError('connect', describeConnectError(path, error)));
      });
    });
  }

  /** Calls check(); resolves with the decision and the time from sending the Call to its Return. */
  async check(request: AuthRequest, options: CheckOptions = {}): Promise<{ decision: AuthDecision; latencyMs: number }> {
    if (this.failure) throw this.failure;
    const id = this.allocateId();
    const target: MessageTarget = this.importedCap === undefined ? { promisedAnswer: this.bootstrapId } : { importedCap: this.importedCap };
    const reply = this.expect(id, options.timeoutMs);
    const started = performance.now();
    this.write(encodeCheckCall(id, target, request, options.interfaceId ?? EXTERNAL_AUTH_INTERFACE_ID, options.methodId ?? 0));
    const message = await reply;
    const latencyMs = Math.round((performance.now() - started) * 1000) / 1000;
    this.finish(id, true);
    if (message.type !== 'return') throw new CallError('protocol', `expected a Return, got ${message.type}`);
    if (message.result.kind === 'exception') throw new CallError('exception', `${message.result.exception.type}: ${message.result.exception.reason}`);
    try {
      return { decision: decisionOf(message.result), latencyMs };
    } catch (error) {
      throw new CallError('protocol', (error as Error).message);
    }
  }

  /** Sends any Finish still queued (a cancel must reach the service), then closes. */
  close(): void {
    if (this.pendingFinishes.length > 0 && !this.socket.destroyed) this.socket.write(Buffer.concat(this.pendingFinishes));
    this.pendingFinishes = [];
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  get closed(): boolean {
    return this.failure !== undefined;
  }

  private write(frame: Uint8Array): void {
    if (this.pendingFinishes.length === 0) {
      this.socket.write(frame);
      return;
    }
    this.socket.write(Buffer.concat([...this.pendingFinishes, frame]));
    this.pendingFinishes = [];
  }

  private queueFinish(frame: Uint8Array): void {
    this.pendingFinishes.push(frame);
    if (this.finishFlushScheduled) return;
    this.finishFlushScheduled = true;
    setImmediate(() => {
      this.finishFlushScheduled = false;
      if (this.pendingFinishes.length === 0 || this.socket.destroyed) return;
      this.socket.write(this.pendingFinishes.length === 1 ? this.pendingFinishes[0]! : Buffer.concat(this.pendingFinishes));
      this.pendingFinishes = [];
    });
  }

  private allocateId(): number {
    return this.freeIds.pop() ?? this.nextId++;
  }

  /** The question's Return; with a timeout, Proksi drops the promise and capnp-rust sends Finish: the cancel. */
  private expect(id: number, timeoutMs?: number): Promise<RpcMessage> {
    return new Promise((resolve, reject) => {
      const question: Question = { resolve, reject, finished: false, resolved: false };
      if (timeoutMs !== undefined && timeoutMs > 0) {
        question.timer = setTimeout(() => {
          this.finish(id, true);
          reject(new CallError('timeout', `no reply within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.questions.set(id, question);
    });
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

  private receive(chunk: Buffer): void {
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
      clearTimeout(question.timer);
      if (question.finished) this.release(message.answerId);
      else question.resolve(message);
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
    for (const [id, question] of this.questions) {
      clearTimeout(question.timer);
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
