import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { eventually } from '../../helpers.js';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../../helpers.js';
import { InputError } from '../../../src/shared/errors.js';
import { AuthServiceClient, CallError } from '../../../src/capnp/client.js';
import { FrameReader, MessageBuilder } from '../../../src/capnp/wire/codec.js';
import { encodeBootstrap, encodeCheckCall, encodeFinish, readRpcMessage, type RpcMessage } from '../../../src/capnp/wire/rpc.js';
import { parseRules } from '../../../src/capnp/server/rules.js';
import { decideByRules } from '../../../src/capnp/server/rule-match.js';
import { startAuthServer, type AuthServer } from '../../../src/capnp/server/server.js';
import { type AuthServerOptions } from '../../../src/capnp/server/options.js';
import type { AuthDecision, AuthRequest } from '../../../src/capnp/wire/schema.js';

const dir = mkdtempSync(join(tmpdir(), 'authkit-capnp-serve-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const RULES_FILE = join(ROOT, 'fixtures', 'capnp-serve', 'rules.json');
const rules = parseRules(readFileSync(RULES_FILE), 'rules.json');
const TOKEN = 'Bearer good';

const servers: AuthServer[] = [];
const clients: AuthServiceClient[] = [];
const sockets: net.Socket[] = [];
afterEach(async () => {
  clients.splice(0).forEach((c) => c.close());
  sockets.splice(0).forEach((s) => s.destroy());
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

let counter = 0;
function socketPath(): string {
  return join(dir, `s${counter++}.sock`);
}

interface Started extends AuthServer {
  lines: string[];
}

async function start(overrides: Partial<AuthServerOptions> = {}): Promise<Started> {
  const lines: string[] = [];
  const server = await startAuthServer({ socketPath: socketPath(), decide: (r) => decideByRules(rules, r), log: (l) => lines.push(l), ...overrides });
  servers.push(server);
  return Object.assign(server, { lines });
}

async function connect(server: AuthServer): Promise<AuthServiceClient> {
  const client = await AuthServiceClient.connect(server.path, 2000);
  clients.push(client);
  return client;
}

function request(over: Partial<AuthRequest> = {}, headers: [string, string][] = []): AuthRequest {
  return { method: 'GET', host: 'app.example', path: '/', query: '', clientIp: '203.0.113.7:51234', headers: headers.map(([name, value]) => ({ name, value })), ...over };
}

async function decision(client: AuthServiceClient, r: AuthRequest): Promise<AuthDecision> {
  return (await client.check(r, { timeoutMs: 2000 })).decision;
}

async function failure(promise: Promise<unknown>): Promise<CallError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof CallError) return error;
    throw error;
  }
  throw new Error('expected the call to fail');
}


/** Sends raw bytes; resolves with the messages that came back and whether the server closed within the wait. */
/** What the server sent until it closed, `ms` passed, or `enough` holds of the messages so far. */
function rawExchange(path: string, bytes: Uint8Array[], ms = 2000, enough?: (messages: RpcMessage[]) => boolean): Promise<{ messages: RpcMessage[]; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ path });
    sockets.push(socket);
    const frames = new FrameReader();
    const messages: RpcMessage[] = [];
    const timer = setTimeout(() => resolve({ messages, closed: false }), ms);
    socket.on('connect', () => bytes.forEach((b) => socket.write(b)));
    socket.on('data', (chunk) => {
      for (const segments of frames.push(chunk)) messages.push(readRpcMessage(segments));
      if (enough?.(messages)) {
        clearTimeout(timer);
        resolve({ messages, closed: false });
      }
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ messages, closed: true });
    });
  });
}

describe('capnp-serve server: decisions by rules', () => {
  it('pass, block and redirect as the demo rules say, on one connection', async () => {
    const server = await start();
    const client = await connect(server);
    expect(await decision(client, request({ path: '/anything' }, [['authorization', TOKEN]]))).toMatchObject({ action: 'pass', upstreamValue: 'user=alice' });
    expect(await decision(client, request({ path: '/admin/users' }))).toMatchObject({ action: 'block', statusCode: 403 });
    expect(await decision(client, request({ path: '/admin' }, [['authorization', 'Bearer other']]))).toMatchObject({ action: 'block', statusCode: 403 });
    expect(await decision(client, request({ path: '/login' }))).toMatchObject({ action: 'redirect', statusCode: 302, redirectLocation: 'https://login.example/' });
    expect(await decision(client, request({ path: '/' }))).toMatchObject({ action: 'block', statusCode: 401, upstreamValue: '' });
    expect(server.stats()).toMatchObject({ connections: 1, connectionsTotal: 1, decisions: { pass: 1, block: 3, redirect: 1 }, exceptions: 0, aborted: 0 });
  });

  it('logs one line per call with method, host, path, action, status and time, never a header value', async () => {
    const server = await start();
    const client = await connect(server);
    await decision(client, request({ method: 'POST', path: '/x\ny' }, [['authorization', TOKEN], ['cookie', 'session=s3cr3t']]));
    await eventually(() => server.lines.length === 1);
    expect(server.lines[0]).toMatch(/^conn 1: POST app\.example \/x\\u000ay -> pass 0 \(\d+\.\d\d ms\)$/);
    expect(server.lines.join('\n')).not.toMatch(/good|s3cr3t|alice/);
  });

  it('answers 64 calls in flight on one connection, and several connections at once', async () => {
    const server = await start();
    const client = await connect(server);
    const paths = Array.from({ length: 64 }, (_, i) => ['/admin', '/login', '/'][i % 3]!);
    const results = await Promise.all(paths.map((path) => decision(client, request({ path }))));
    expect(results.map((d) => d.action)).toEqual(paths.map((p) => (p === '/login' ? 'redirect' : 'block')));
    expect(results.map((d) => d.statusCode)).toEqual(paths.map((p) => ({ '/admin': 403, '/login': 302, '/': 401 })[p]));
    const others = await Promise.all([connect(server), connect(server), connect(server)]);
    const spread = await Promise.all(others.flatMap((c) => Array.from({ length: 20 }, () => decision(c, request({}, [['authorization', TOKEN]])))));
    expect(spread.every((d) => d.action === 'pass')).toBe(true);
    expect(server.stats().connections).toBe(4);
  });

  it('a slow decision does not hold up the others on the connection (Returns out of order)', async () => {
    const server = await start({ decide: async (r) => {
      if (r.path === '/slow') await new Promise((res) => setTimeout(res, 150));
      return decideByRules(rules, r);
    } });
    const client = await connect(server);
    const order: string[] = [];
    await Promise.all(['/slow', '/admin', '/login'].map(async (path) => {
      await decision(client, request({ path }));
      order.push(path);
    }));
    expect(order[2]).toBe('/slow');
  });
});

describe('capnp-serve server: exceptions', () => {
  it('a wrong interface ID or method ID gets an exception Return in the C++ wording, and the connection goes on', async () => {
    const server = await start();
    const client = await connect(server);
    const wrongInterface = await failure(client.check(request(), { timeoutMs: 2000, interfaceId: 0xc0b8446dd1b6fe7fn }));
    expect(wrongInterface.kind).toBe('exception');
    expect(wrongInterface.message).toBe(
      'unimplemented: Requested interface not implemented.; actualInterfaceName = external_auth.capnp:ExternalAuthService; requestedTypeId = 13886924689457479295',
    );
    const wrongMethod = await failure(client.check(request(), { timeoutMs: 2000, methodId: 3 }));
    expect(wrongMethod.message).toBe('unimplemented: Method not implemented.; interfaceName = external_auth.capnp:ExternalAuthService; typeId = 16373441234765363923; methodId = 3');
    expect(await decision(client, request({ path: '/login' }))).toMatchObject({ action: 'redirect' });
    expect(server.stats()).toMatchObject({ exceptions: 2, aborted: 0 });
    expect(server.lines.filter((l) => /exception unimplemented/.test(l))).toHaveLength(2);
  });

  it('a throwing or rejecting handler gives an exception Return; the server keeps serving', async () => {
    const server = await start({ decide: (r) => {
      if (r.path === '/throw') throw new Error('intentional failure for /throw');
      if (r.path === '/reject') return Promise.reject(new Error('rejected'));
      if (r.path === '/string') return Promise.reject('a bare string');
      if (r.path === '/bad') return { action: 'maybe' } as unknown as AuthDecision;
      return decideByRules(rules, r);
    } });
    const client = await connect(server);
    expect((await failure(client.check(request({ path: '/throw' }), { timeoutMs: 2000 }))).message).toBe('failed: intentional failure for /throw');
    expect((await failure(client.check(request({ path: '/reject' }), { timeoutMs: 2000 }))).message).toBe('failed: rejected');
    expect((await failure(client.check(request({ path: '/string' }), { timeoutMs: 2000 }))).message).toBe('failed: a bare string');
    expect((await failure(client.check(request({ path: '/bad' }), { timeoutMs: 2000 }))).message).toMatch(/^failed: the handler returned a decision with an invalid action/);
    expect(await decision(client, request({ path: '/admin' }))).toMatchObject({ action: 'block', statusCode: 403 });
    const second = await connect(server);
    expect(await decision(second, request({ path: '/login' }))).toMatchObject({ action: 'redirect' });
    expect(server.stats()).toMatchObject({ exceptions: 4, aborted: 0 });
  });

  it('Finish before Return (the caller timed out): the late Return is still sent and the connection goes on', async () => {
    const server = await start({ decide: async (r) => {
      if (r.path === '/slow') await new Promise((res) => setTimeout(res, 200));
      return decideByRules(rules, r);
    } });
    const client = await connect(server);
    await decision(client, request()); // past the bootstrap
    const timedOut = await failure(client.check(request({ path: '/slow' }), { timeoutMs: 30 }));
    expect(timedOut.kind).toBe('timeout');
    expect(await decision(client, request({ path: '/admin' }))).toMatchObject({ statusCode: 403 });
    await eventually(() => server.lines.some((l) => /\/slow -> block 401 .* after the caller finished it/.test(l)));
    // The question IDs are free again on both sides: many more calls, IDs reused.
    const more = await Promise.all(Array.from({ length: 10 }, () => decision(client, request({ path: '/login' }))));
    expect(more.every((d) => d.action === 'redirect')).toBe(true);
    expect(client.closed).toBe(false);
    expect(server.stats().aborted).toBe(0);
  });
});

describe('capnp-serve server: bad peers', () => {
  it('garbage bytes get an Abort and that connection closed; other connections keep working', async () => {
    const server = await start();
    const client = await connect(server);
    expect(await decision(client, request({ path: '/login' }))).toMatchObject({ action: 'redirect' });
    const { messages, closed } = await rawExchange(server.path, [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')]);
    expect(closed).toBe(true);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({ type: 'abort', exception: { type: 'failed' } });
    expect(await decision(client, request({ path: '/admin' }))).toMatchObject({ statusCode: 403 });
    expect(server.stats().aborted).toBe(1);
    expect(server.lines.some((l) => /aborted: not a Cap'n Proto frame/.test(l))).toBe(true);
  });

  it('a frame announcing 4 GiB gets an Abort at once, before any of it is buffered', async () => {
    const server = await start();
    const client = await connect(server);
    const header = Buffer.alloc(8);
    header.writeUInt32LE(0, 0); // one segment
    header.writeUInt32LE(0x20000000, 4); // 2^29 words = 4 GiB
    const { messages, closed } = await rawExchange(server.path, [header]);
    expect(closed).toBe(true);
    expect(messages[0]).toMatchObject({ type: 'abort' });
    expect((messages[0] as Extract<RpcMessage, { type: 'abort' }>).exception.reason).toMatch(/announces more than/);
    expect(await decision(client, request())).toMatchObject({ statusCode: 401 });
  });

  it('maxFrameBytes bounds what one connection may buffer', async () => {
    const server = await start({ maxFrameBytes: 1024 });
    const header = Buffer.alloc(8);
    header.writeUInt32LE(0, 0);
    header.writeUInt32LE(512, 4); // 4 KiB announced, sent in part
    const { messages, closed } = await rawExchange(server.path, [header, Buffer.alloc(2048)]);
    expect(closed).toBe(true);
    expect((messages[0] as Extract<RpcMessage, { type: 'abort' }>).exception.reason).toBe('a frame larger than 1024 bytes');
  });

  it('a message type the service does not implement gets an Abort of type unimplemented', async () => {
    const server = await start();
    const resolve = new MessageBuilder();
    resolve.initRoot(1, 1).setU16(0, 5); // Message.resolve
    const { messages, closed } = await rawExchange(server.path, [resolve.frame()]);
    expect(closed).toBe(true);
    expect(messages[0]).toMatchObject({ type: 'abort', exception: { type: 'unimplemented' } });
  });

  it('a Call on a capability never exported, or on a question that does not exist, is a protocol error', async () => {
    const server = await start();
    const noBootstrap = await rawExchange(server.path, [encodeCheckCall(0, { importedCap: 0 }, request())]);
    expect(noBootstrap).toMatchObject({ closed: true, messages: [{ type: 'abort', exception: { reason: 'Message target is not a current export ID.' } }] });
    const noQuestion = await rawExchange(server.path, [encodeBootstrap(0), encodeCheckCall(1, { promisedAnswer: 7 }, request())]);
    expect(noQuestion.closed).toBe(true);
    expect(noQuestion.messages.map((m) => m.type)).toEqual(['return', 'abort']);
  });

  it('a peer that closes right after the bootstrap, or with a call in flight, leaves the server serving', async () => {
    const server = await start({ decide: async (r) => {
      await new Promise((res) => setTimeout(res, 50));
      return decideByRules(rules, r);
    } });
    const after = await rawExchange(server.path, [encodeBootstrap(0)], 5000, (m) => m.length > 0);
    expect(after.messages.map((m) => m.type)).toEqual(['return']);
    sockets.splice(0).forEach((s) => s.destroy());
    const inFlight = net.createConnection({ path: server.path });
    inFlight.on('error', () => {});
    inFlight.on('connect', () => {
      inFlight.write(encodeBootstrap(0));
      inFlight.end(encodeCheckCall(1, { promisedAnswer: 0 }, request()));
    });
    await eventually(() => server.lines.length === 1); // the decision came after the peer left
    const client = await connect(server);
    expect(await decision(client, request({ path: '/login' }))).toMatchObject({ action: 'redirect' });
    await eventually(() => server.stats().connections === 1);
  });
});

describe('capnp-serve server: bounded answers and quiet logs', () => {
  it('more outstanding calls than maxAnswers on one connection gets an Abort of type overloaded', async () => {
    const server = await start({ maxAnswers: 3, decide: () => new Promise(() => {}) });
    const calls = [encodeBootstrap(0), ...[1, 2, 3].map((q) => encodeCheckCall(q, { promisedAnswer: 0 }, request()))];
    const { messages, closed } = await rawExchange(server.path, calls);
    expect(closed).toBe(true);
    expect(messages.map((m) => m.type)).toEqual(['return', 'abort']);
    expect(messages[1]).toMatchObject({ exception: { type: 'overloaded', reason: 'more than 3 answers outstanding on one connection (Bootstraps and Calls held until returned and finished)' } });
  });

  it('logCalls false: no line per call, but an aborted connection is still logged', async () => {
    const server = await start({ logCalls: false });
    const client = await connect(server);
    await decision(client, request());
    await rawExchange(server.path, [Buffer.from('garbage!')]);
    expect(server.lines).toEqual([expect.stringMatching(/^conn 2: aborted: not a Cap'n Proto frame: capnp frame: \d+ segments, at most 511 at offset 0$/)]);
  });
});

/** A raw peer: writes what it is told, collects what comes back. */
class RawPeer {
  readonly messages: RpcMessage[] = [];
  closed = false;
  private readonly socket: net.Socket;
  private readonly frames = new FrameReader();

  constructor(path: string) {
    this.socket = net.createConnection({ path });
    sockets.push(this.socket);
    this.socket.on('data', (chunk) => {
      for (const segments of this.frames.push(chunk)) this.messages.push(readRpcMessage(segments));
    });
    this.socket.on('error', () => {}); // EPIPE once the server aborted us; 'close' follows
    this.socket.on('close', () => {
      this.closed = true;
    });
  }

  write(bytes: Uint8Array): void {
    if (!this.closed) this.socket.write(bytes);
  }

  count(type: RpcMessage['type']): number {
    return this.messages.filter((m) => m.type === type).length;
  }

  get abort(): Extract<RpcMessage, { type: 'abort' }> | undefined {
    return this.messages.find((m): m is Extract<RpcMessage, { type: 'abort' }> => m.type === 'abort');
  }
}

/** A frame header announcing one segment of `bytes` bytes. */
function frameHeader(bytes: number): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32LE(0, 0);
  header.writeUInt32LE(bytes / 8, 4);
  return header;
}

const MiB = 1024 * 1024;

describe('capnp-serve server: what a peer can make it hold is bounded', () => {
  it('Bootstraps without Finish count against maxAnswers: a flood is aborted at the limit, a good client is answered all along', async () => {
    const LIMIT = 200;
    const BATCH = 50;
    const server = await start({ maxAnswers: LIMIT });
    const good = await connect(server);
    expect(await decision(good, request({ path: '/login' }))).toMatchObject({ action: 'redirect' });
    const flood = new RawPeer(server.path);
    let sent = 0;
    // Batches of Bootstraps never finished, up to twice the limit; between batches the good client is served.
    for (let batch = 0; batch < (2 * LIMIT) / BATCH && !flood.closed; batch++) {
      flood.write(Buffer.concat(Array.from({ length: BATCH }, () => encodeBootstrap(sent++))));
      await eventually(() => flood.closed || flood.count('return') >= Math.min(sent, LIMIT));
      // The flood's answers, and at most one of the good client's whose Finish is on its way.
      expect(server.stats().answersHeld).toBeLessThanOrEqual(LIMIT + 1);
      expect(await decision(good, request({ path: '/admin' }))).toMatchObject({ statusCode: 403 });
    }
    await eventually(() => flood.closed);
    expect(sent).toBeGreaterThan(LIMIT);
    expect(flood.count('return')).toBe(LIMIT);
    expect(flood.messages).toHaveLength(LIMIT + 1);
    expect(flood.abort?.exception).toEqual({ type: 'overloaded', reason: `more than ${LIMIT} answers outstanding on one connection (Bootstraps and Calls held until returned and finished)` });
    expect(await decision(good, request({ path: '/login' }))).toMatchObject({ action: 'redirect' });
    await eventually(() => server.stats().answersHeld === 0); // the good client finished every answer; the flood's are gone
    expect(server.stats()).toMatchObject({ aborted: 1, abortedMaxAnswers: 1, connections: 1 });
    expect(server.lines.filter((l) => /aborted: more than 200 answers outstanding/.test(l))).toEqual([expect.stringMatching(/^conn 2: /)]);
  });

  it('Bootstraps that are finished free their answers: many more than maxAnswers on one connection are fine', async () => {
    const server = await start({ maxAnswers: 4 });
    const peer = new RawPeer(server.path);
    for (let q = 0; q < 40; q++) {
      peer.write(encodeBootstrap(q));
      peer.write(encodeFinish(q, false));
    }
    await eventually(() => peer.count('return') === 40 || peer.closed);
    expect(peer.closed).toBe(false);
    expect(peer.count('abort')).toBe(0);
    await eventually(() => server.stats().answersHeld === 0);
  });

  it('partial frames across all connections are capped: 20 peers sending large frames in pieces are aborted past maxPartialBytes, a good client is answered', async () => {
    const CAP = 4 * MiB;
    const PEERS = 20;
    const FRAME = MiB; // each peer announces a 1 MiB segment and sends all of it but the last 8 bytes
    const SENT = FRAME; // 8 header bytes + FRAME - 8 bytes of the segment: never complete
    const PIECE = 128 * 1024;
    const server = await start({ maxPartialBytes: CAP });
    const good = await connect(server);
    expect(await decision(good, request({ path: '/login' }))).toMatchObject({ action: 'redirect' });
    const peers = Array.from({ length: PEERS }, () => new RawPeer(server.path));
    for (const peer of peers) peer.write(frameHeader(FRAME));
    for (let at = 8; at < SENT; at += PIECE) {
      for (const peer of peers) peer.write(Buffer.alloc(Math.min(PIECE, SENT - at)));
    }
    // Settled: every peer is either aborted or fully held by the server.
    await eventually(() => {
      const stats = server.stats();
      return stats.partialBytes === (PEERS - stats.abortedMaxPartialBytes) * SENT && peers.filter((p) => p.abort).length === stats.abortedMaxPartialBytes;
    }, 10_000);
    const stats = server.stats();
    expect(stats.abortedMaxPartialBytes).toBeGreaterThanOrEqual(PEERS - CAP / SENT);
    expect(stats.abortedMaxPartialBytes).toBeLessThan(PEERS);
    expect(stats.partialBytes).toBeLessThanOrEqual(CAP);
    expect(stats.partialBytesPeak).toBeLessThanOrEqual(CAP);
    expect(stats.aborted).toBe(stats.abortedMaxPartialBytes);
    for (const peer of peers.filter((p) => p.abort)) {
      expect(peer.messages).toHaveLength(1);
      expect(peer.abort!.exception).toEqual({ type: 'overloaded', reason: `partial frames of all connections would hold more than ${CAP} bytes (the cap on bytes held in frames not yet complete)` });
    }
    // Logged once per aborted connection.
    expect(server.lines.filter((l) => /aborted: partial frames of all connections/.test(l))).toHaveLength(stats.abortedMaxPartialBytes);
    expect(await decision(good, request({ path: '/admin' }))).toMatchObject({ statusCode: 403 });
    expect(good.closed).toBe(false);
    // The peers still held give their bytes back when they go.
    sockets.splice(0).forEach((s) => s.destroy());
    await eventually(() => server.stats().partialBytes === 0);
  });

  it('a Call whose params pass traversalWords gets the codec\'s refusal (an exception Return); the connection and the server go on', async () => {
    const server = await start({ traversalWords: 1024 }); // 8 KiB
    const client = await connect(server);
    expect(await decision(client, request({ path: '/login' }))).toMatchObject({ action: 'redirect' });
    const big = await failure(client.check(request({}, [['x-big', 'a'.repeat(64 * 1024)]]), { timeoutMs: 2000 }));
    expect(big.kind).toBe('exception');
    expect(big.message).toMatch(/^failed: cannot read the check\(\) params: .*traversal limit exceeded/);
    expect(await decision(client, request({ path: '/admin' }))).toMatchObject({ statusCode: 403 });
    const other = await connect(server);
    expect(await decision(other, request({ path: '/login' }))).toMatchObject({ action: 'redirect' });
    expect(server.stats()).toMatchObject({ exceptions: 1, aborted: 0, connections: 2 });
  });

  it('the default traversal limit (4 MiB) answers a request with a 1 MiB header, and refuses one with 5 MiB', async () => {
    const server = await start();
    const client = await connect(server);
    expect(await decision(client, request({}, [['x-big', 'a'.repeat(MiB)]]))).toMatchObject({ statusCode: 401 });
    const huge = await failure(client.check(request({}, [['x-big', 'a'.repeat(5 * MiB)]]), { timeoutMs: 5000 }));
    expect(huge.message).toMatch(/traversal limit exceeded/);
    expect(await decision(client, request({ path: '/admin' }))).toMatchObject({ statusCode: 403 });
  });

  it('limits that are not positive integers are refused', async () => {
    await expect(startAuthServer({ socketPath: socketPath(), decide: () => rules.default, maxAnswers: 0 })).rejects.toThrow(new InputError('maxAnswers: expected a positive integer, got 0'));
    await expect(startAuthServer({ socketPath: socketPath(), decide: () => rules.default, traversalWords: 1.5 })).rejects.toThrow(new InputError('traversalWords: expected a positive integer, got 1.5'));
  });
});

describe('capnp-serve server: the socket file', () => {
  it('sets the mode (default 660) and removes the socket on close', async () => {
    const server = await start();
    expect(lstatSync(server.path).isSocket()).toBe(true);
    expect(statSync(server.path).mode & 0o777).toBe(0o660);
    const strict = await start({ mode: 0o600 });
    expect(statSync(strict.path).mode & 0o777).toBe(0o600);
    await server.close();
    expect(existsSync(server.path)).toBe(false);
  });

  it('replaces a stale socket file left by a process that died', async () => {
    const path = socketPath();
    const script = `require('net').createServer().listen(${JSON.stringify(path)}, () => process.exit(0))`;
    const made = spawnSync(process.execPath, ['-e', script], { timeout: 10_000 });
    expect(made.status).toBe(0);
    expect(lstatSync(path).isSocket()).toBe(true);
    const server = await start({ socketPath: path });
    const client = await connect(server);
    expect(await decision(client, request({ path: '/login' }))).toMatchObject({ action: 'redirect' });
  });

  it('refuses a live socket and a regular file, and leaves them alone', async () => {
    const live = await start();
    await expect(startAuthServer({ socketPath: live.path, decide: () => rules.default })).rejects.toThrow(new InputError(`socket ${live.path}: another process is listening on it`));
    const client = await connect(live);
    expect(await decision(client, request())).toMatchObject({ statusCode: 401 });

    const file = join(dir, 'not-a-socket');
    writeFileSync(file, 'keep me');
    await expect(startAuthServer({ socketPath: file, decide: () => rules.default })).rejects.toThrow(new InputError(`socket ${file}: exists and is not a socket (not replaced)`));
    expect(readFileSync(file, 'utf8')).toBe('keep me');
  });

  it('a directory that does not exist is one clear InputError', async () => {
    const path = join(dir, 'missing', 'x.sock');
    await expect(startAuthServer({ socketPath: path, decide: () => rules.default })).rejects.toThrow(new InputError(`cannot listen on ${path}: no such directory`));
  });
});
