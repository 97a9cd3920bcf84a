/**
 * The server side of our two-party RPC subset: an ExternalAuthService on a Unix socket
 * (docs/proksi-external-auth.md §8 item 5). Every connection has its own answer table. It accepts Bootstrap (answered
 * with the service as export 0) and Calls on that export or pipelined on the bootstrap's promised
 * answer; a wrong interface or method gets an exception Return in the C++ library's wording; a
 * handler that throws or rejects gets an exception Return, never a crash. Finish before Return
 * does not cancel: the Return is still sent and the answer forgotten once both happened. Release
 * is ignored (the one export lives as long as the connection), Abort closes the connection, and
 * any other message, or bytes that are not RPC, get an Abort and the connection closed.
 *
 * What peers can make it hold is bounded: answers per connection (maxAnswers, Bootstraps
 * included), bytes in partially received frames across all connections (maxPartialBytes), and the
 * words read per message (traversalWords). Past the first two the connection is aborted.
 */
import { chmod } from 'node:fs/promises';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { checkSocketPath, clearStaleSocket } from '../../shared/unix-socket.js';
import { listenOn } from '../../shared/listen.js';
import { escapeForDisplay } from '../../shared/text.js';
import { describeFsError, InputError } from '../../shared/errors.js';
import { FrameReader, MAX_FRAME_BYTES, type StructReader } from '../wire/codec.js';
import { encodeAbort, encodeBootstrapReturn, encodeDecisionReturn, encodeExceptionReturn, readRpcMessage, type ExceptionType, type RpcMessage } from '../wire/rpc.js';
import { CHECK_METHOD_ID, DECISION_ACTIONS, EXTERNAL_AUTH_INTERFACE_ID, readAuthRequest, type AuthDecision, type AuthRequest } from '../wire/schema.js';

/** As the C++ library names the interface in its "not implemented" exceptions. */
const INTERFACE_NAME = 'external_auth.capnp:ExternalAuthService';
/**
 * Answers (Bootstraps and Calls not yet both returned and finished) a connection may hold before
 * it is aborted.
 */
export const DEFAULT_MAX_ANSWERS = 65_536;
/** Bytes all connections together may hold in frames not yet completely received. */
export const DEFAULT_MAX_PARTIAL_BYTES = 256 * 1024 * 1024;
/**
 * Words (8 bytes) the reader may visit in one message, the Call's params included: 512 Ki words,
 * 4 MiB. A check() request from Proksi carries at most one HTTP request head, which pingora caps at
 * 1 MiB (MAX_HEADER_SIZE) and 256 headers for HTTP/1.1; with the host a second time and a few words
 * per header that is at most about 2 MiB, so 4 MiB leaves twice that. C++'s default (8 Mi words,
 * 64 MiB) is sized for any message of any schema; this service only ever reads check().
 */
export const DEFAULT_SERVE_TRAVERSAL_WORDS = 512 * 1024;

export interface AuthServerOptions {
  socketPath: string;
  /** The socket file's mode; default 0o660. */
  mode?: number;
  decide: (request: AuthRequest) => Promise<AuthDecision> | AuthDecision;
  /** One line per call and per connection aborted; never a header value. Default: silent. */
  log?: (line: string) => void;
  /** Whether every call gets a log line (default true); aborted connections are always logged. */
  logCalls?: boolean;
  /** A frame larger than this aborts the connection; default (and at most) 64 MiB, C++'s limit. */
  maxFrameBytes?: number;
  /** Outstanding answers (Bootstraps and Calls) per connection before it is aborted; default 65536. */
  maxAnswers?: number;
  /**
   * Bytes held in partially received frames across all connections; a connection whose partial
   * frame would pass it is aborted. Default 256 MiB.
   */
  maxPartialBytes?: number;
  /** Traversal limit per message in words (8 bytes); default 512 Ki words (4 MiB). */
  traversalWords?: number;
}

export interface AuthServerStats {
  /** Connections open now, and since the start. */
  connections: number;
  connectionsTotal: number;
  /** Calls answered with a decision, per action. */
  decisions: Record<'pass' | 'block' | 'redirect' | 'other', number>;
  /** Calls answered with an exception Return (handler errors and unimplemented interface or method). */
  exceptions: number;
  /** Connections this side aborted (garbage, oversized frames, protocol errors, limits). */
  aborted: number;
  /** Of those, aborted for holding more than maxAnswers answers. */
  abortedMaxAnswers: number;
  /** Of those, aborted because their partial frame would have passed maxPartialBytes. */
  abortedMaxPartialBytes: number;
  /** Answers held now, all connections together. */
  answersHeld: number;
  /** Bytes held now in partially received frames, all connections together. */
  partialBytes: number;
  /** The most bytes partial frames held at once, measured after each chunk was accepted or refused. */
  partialBytesPeak: number;
}

export interface AuthServer {
  path: string;
  stats(): AuthServerStats;
  /** Stops listening, closes every connection and removes the socket file. */
  close(): Promise<void>;
}

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
 * cannot make a peer's pipelined calls pile up in memory.
 */
const FLOW_LIMIT_BYTES = 16 * 1024 * 1024;

export async function startAuthServer(options: AuthServerOptions): Promise<AuthServer> {
  const mode = options.mode ?? 0o660;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) throw new InputError('socket mode: expected permission bits from 000 to 777');
  const maxFrameBytes = Math.min(options.maxFrameBytes ?? MAX_FRAME_BYTES, MAX_FRAME_BYTES);
  const path = options.socketPath;
  const maxAnswers = positiveInteger(options.maxAnswers, DEFAULT_MAX_ANSWERS, 'maxAnswers');
  const maxPartialBytes = positiveInteger(options.maxPartialBytes, DEFAULT_MAX_PARTIAL_BYTES, 'maxPartialBytes');
  const traversalWords = positiveInteger(options.traversalWords, DEFAULT_SERVE_TRAVERSAL_WORDS, 'traversalWords');
  const stats: AuthServerStats = {
    connections: 0, connectionsTotal: 0, decisions: { pass: 0, block: 0, redirect: 0, other: 0 }, exceptions: 0, aborted: 0,
    abortedMaxAnswers: 0, abortedMaxPartialBytes: 0, answersHeld: 0, partialBytes: 0, partialBytesPeak: 0,
  };
  const connections = new Set<Connection>();
  const log = options.log ?? (() => {});
  const settings: ConnectionSettings = {
    decide: options.decide, log, logCall: options.logCalls === false || options.log === undefined ? undefined : log, maxFrameBytes, maxAnswers, maxPartialBytes, traversalWords, stats,
  };

  checkSocketPath(path, 'socket');
  await clearStaleSocket(path, 'socket');
  const server = net.createServer((socket) => {
    stats.connections++;
    stats.connectionsTotal++;
    const connection = new Connection(socket, stats.connectionsTotal, settings);
    connections.add(connection);
    socket.once('close', () => {
      connections.delete(connection);
      stats.connections--;
    });
  });
  await listenOn(server, { path });
  try {
    await chmod(path, mode);
  } catch (error) {
    server.close();
    throw new InputError(`socket ${path}: cannot set its mode: ${describeFsError(error)}`);
  }

  let closing: Promise<void> | undefined;
  return {
    path,
    stats: () => {
      let answersHeld = 0;
      for (const connection of connections) answersHeld += connection.answersHeld;
      return { ...structuredClone(stats), answersHeld };
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        // Node removes the socket file once the listening handle is closed.
        server.close(() => resolve());
        for (const connection of connections) connection.destroy();
      });
      return closing;
    },
  };
}

interface ConnectionSettings {
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

class Connection {
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
    // Replies decided at once to several calls of one chunk leave in one write.
    const batch = frames.length > 1;
    if (batch) this.socket.cork();
    try {
      this.handleFrames(frames);
    } finally {
      if (batch) this.socket.uncork();
    }
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
        this.settings.log(`conn ${this.id}: the peer aborted: ${clean(`${message.exception.type}: ${message.exception.reason}`)}`);
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
      return this.exception(questionId, 'unimplemented', `Requested interface not implemented.; actualInterfaceName = ${INTERFACE_NAME}; requestedTypeId = ${message.interfaceId}`, `call to interface 0x${message.interfaceId.toString(16)}`);
    }
    if (message.methodId !== CHECK_METHOD_ID) {
      return this.exception(questionId, 'unimplemented', `Method not implemented.; interfaceName = ${INTERFACE_NAME}; typeId = ${EXTERNAL_AUTH_INTERFACE_ID}; methodId = ${message.methodId}`, `call to method ${message.methodId}`);
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
    this.settings.logCall?.(`conn ${this.id}: ${described(request)} -> ${action === 'other' ? `action ${decision.action}` : action} ${decision.statusCode} (${elapsed(started)} ms)${answer.finished ? ' after the caller finished it' : ''}`);
  }

  private fail(questionId: number, answer: Answer, error: unknown, request: AuthRequest, started: number): void {
    const reason = error instanceof Error ? error.message : String(error);
    this.settings.stats.exceptions++;
    this.returned(questionId, answer, encodeExceptionReturn(questionId, { type: 'failed', reason }));
    this.settings.logCall?.(`conn ${this.id}: ${described(request)} -> exception failed: ${clean(reason)} (${elapsed(started)} ms)`);
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
    this.settings.stats.aborted++;
    this.settings.log(`conn ${this.id}: aborted: ${clean(reason)}`);
    this.socket.write(encodeAbort({ type, reason }));
    this.closed = true;
    this.release();
    this.socket.end();
    // A peer that never reads must not keep the socket half-open.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }
}

function positiveInteger(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) throw new InputError(`${name}: expected a positive integer, got ${value}`);
  return value;
}

/** The request of a check() call; a null params or request struct reads as the default (empty) request. */
function requestOf(params: StructReader | undefined): AuthRequest {
  const request = params?.struct(0);
  return request ? readAuthRequest(request) : { method: '', host: '', path: '', query: '', clientIp: '', headers: [] };
}

/** What a handler returned, checked so the wire gets what it means (a TypeError becomes an exception Return). */
function checkedDecision(decision: AuthDecision): AuthDecision {
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

function isPromiseLike<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/** A call in a log line: method, host and path (never a header). */
function described(request: AuthRequest): string {
  return `${clean(request.method)} ${clean(request.host)} ${clean(request.path)}`;
}

function elapsed(started: number): string {
  return (performance.now() - started).toFixed(2);
}

/** A request field for a log line: control bytes escaped, long values cut. */
function clean(text: string): string {
  return escapeForDisplay(text, 200) || '""';
}


