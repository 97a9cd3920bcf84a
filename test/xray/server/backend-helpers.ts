/** What the xray-backend tests share: the fixture users, a backend started per test and stopped after it, and raw requests. */
import { afterAll, afterEach } from 'vitest';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { ROOT, thrownBy } from '../../helpers.js';
import { InputError } from '../../../src/shared/errors.js';
import { sendEvent, type EventExchange } from '../../../src/xray/client.js';
import type { ConnectionFacts, EventType } from '../../../src/xray/wire/dialect.js';
import { dialectNamed } from '../../../src/xray/wire/dialects/index.js';
import { startXrayBackend, type XrayBackend, type XrayBackendOptions } from '../../../src/xray/server/server.js';

/** A temporary directory for this test file, removed after it. */
export function useTempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'authkit-xray-backend-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Stops the backends each test started, after it. */
export function useBackends(): void {
  afterEach(async () => {
    await Promise.all(running.splice(0).map((b) => b.close()));
  });
}

export const USERS = join(ROOT, 'fixtures', 'xray', 'users.json');
export const HY_USERS = join(ROOT, 'fixtures', 'xray', 'hysteria-users.json');
export const ALICE = '550e8400-e29b-41d4-a716-446655440000';
export const BOB_DISABLED = 'e727d208-859c-41ff-bddc-91e22c3ae6bd';
export const CAROL_EXPIRED = '755663ac-4877-4ad6-ba35-c438ee90c6b0';
export const DAVE_OVER_QUOTA = '4acb8c91-287a-47f7-bc2e-4f460c8bba72';
export const ERIN_MAX2 = 'cada5c99-c459-4f44-9507-1895d3606838';
export const FRANK = 'a6368997-3825-4db2-b339-939719e7c0d2';
export const SECRET = 's3cr3t-token-value';

const running: XrayBackend[] = [];

export interface Started extends XrayBackend {
  lines: string[];
}

export async function start(overrides: Partial<XrayBackendOptions> = {}): Promise<Started> {
  const lines: string[] = [];
  const backend = await startXrayBackend({ dialect: dialectNamed('wiki'), usersFile: USERS, port: 0, log: (line) => lines.push(line), ...overrides });
  running.push(backend);
  return Object.assign(backend, { lines });
}

export function facts(credential: string, over: Partial<ConnectionFacts> = {}): ConnectionFacts {
  return { credential, connectionId: randomUUID(), protocol: 'vless', inboundTag: 'in', sourceIp: '198.51.100.10', sourcePort: 40000, localIp: '10.0.0.1', localPort: 443, ...over };
}

export function send(backend: XrayBackend, type: EventType, f: ConnectionFacts, extra: { secret?: string; headers?: [string, string][] } = {}): Promise<EventExchange> {
  return sendEvent({ url: backend.url, unixSocket: backend.unixSocket, dialect: backend.dialect, type, facts: f, timeoutSeconds: 5, ...extra });
}

export async function status(backend: XrayBackend, type: EventType, f: ConnectionFacts, extra: { secret?: string; headers?: [string, string][] } = {}): Promise<number | undefined> {
  return (await send(backend, type, f, extra)).reply?.status;
}

export interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: unknown;
}

export async function raw(url: string, body?: string | Buffer | Readable, init: { method?: string; headers?: Record<string, string>; socketPath?: string } = {}): Promise<Raw> {
  const dispatcher = init.socketPath ? new Agent({ connect: { socketPath: init.socketPath } }) : undefined;
  try {
    const res = await request(url, { method: (init.method ?? 'POST') as 'POST', body, headers: init.headers, dispatcher, signal: AbortSignal.timeout(5000) });
    const text = await res.body.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.statusCode, headers: res.headers, text, json };
  } finally {
    await dispatcher?.close();
  }
}

export const admin = (backend: XrayBackend, path: string, body?: unknown, secret = SECRET): Promise<Raw> =>
  raw(new URL(path, backend.url).href, body === undefined ? undefined : JSON.stringify(body), {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${secret}` },
    socketPath: backend.unixSocket,
  });

/** A socket file whose server died without closing it: a child process listens, then is SIGKILLed. */
export async function leaveStaleSocket(path: string): Promise<void> {
  const child = spawn(process.execPath, ['-e', "require('net').createServer().listen(process.argv[1], () => console.log('up'))", path], { stdio: ['ignore', 'pipe', 'inherit'] });
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()).once('close', () => resolve()));
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
}

export const inputError = (fn: () => unknown): string => thrownBy(InputError, fn).message;
