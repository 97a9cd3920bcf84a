/**
 * xray-tap between xray-sim (the proxy, its Go-exact client) and a backend: the bytes the proxy
 * side receives are those it receives without the tap; each exchange's recorded verdict is the
 * one xray-sim reaches on its side; a recording replayed against a changed backend lists exactly
 * the verdicts that changed; bad recordings, an unreachable backend and a proxy that gives up.
 */
import net from 'node:net';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { sendEvent } from '../../src/xray/client.js';
import { startXrayBackend, type XrayBackend } from '../../src/xray/server/server.js';
import { startXrayTap, type TappedExchange } from '../../src/xray/tap/tap.js';
import { xrayTapCommand } from '../../src/cli/xray-tap.js';
import { dialectNamed } from '../../src/xray/wire/dialects/index.js';
import { goRequestBytes } from '../../src/xray/wire/go-request.js';
import { eventRequest } from '../../src/xray/client.js';
import { buildEventBody, type ConnectionFacts, type EventType } from '../../src/xray/wire/dialect.js';
import { parseGoUrl } from '../../src/xray/wire/go-url.js';
import type { Relay } from '../../src/tap/relay.js';
import { ROOT } from '../helpers.js';
import { runMain } from '../cli/run.js';
import { closedPortUrl, rawServer } from '../xray/servers.js';

const wiki = dialectNamed('wiki');
const ALICE = '550e8400-e29b-41d4-a716-446655440000';
const BOB = 'e727d208-859c-41ff-bddc-91e22c3ae6bd';
const dir = mkdtempSync(join(tmpdir(), 'authkit-xray-tap-'));
const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});
afterAll(() => undefined);

const facts = (credential: string, extra: Partial<ConnectionFacts> = {}): ConnectionFacts => ({
  credential, connectionId: 'c0ffee00-0000-4000-8000-000000000001', protocol: 'vless', sourceIp: '198.51.100.10', sourcePort: 40000, localIp: '10.0.0.1', localPort: 443, ...extra,
});

async function backend(usersFile = join(ROOT, 'fixtures', 'xray', 'users.json')): Promise<XrayBackend> {
  const b = await startXrayBackend({ dialect: wiki, usersFile, port: 0 });
  stops.push(() => b.close());
  return b;
}

async function tap(upstreamUrl: string, extra: { timeoutSeconds?: number } = {}): Promise<{ relay: Relay; url: string; exchanges: TappedExchange[]; down: string[] }> {
  const exchanges: TappedExchange[] = [];
  const down: string[] = [];
  const upstream = new URL(upstreamUrl);
  const relay = await startXrayTap({
    listen: { host: '127.0.0.1', port: 0 }, upstream: { host: upstream.hostname, port: Number(upstream.port) },
    dialect: wiki, kickOnDeny: true, timeoutSeconds: extra.timeoutSeconds ?? 5,
    onExchange: (e) => exchanges.push(e), log: () => undefined, onUpstreamDown: (_id, reason) => down.push(reason),
  });
  stops.push(() => relay.close());
  const { port } = relay.address as net.AddressInfo;
  return { relay, url: `http://127.0.0.1:${port}${upstream.pathname}`, exchanges, down };
}

/** Every byte a raw client receives for `bytes` sent, until the server closes (the client, like Go's, never half-closes). */
/** `xray-tap` as the command runs, in this process, recording with secrets to `record`: stop() ends it as SIGTERM would. */
async function tapCommand(upstreamUrl: string, record: string): Promise<{ url: string; log: string[]; stop: () => Promise<unknown> }> {
  const abort = new AbortController();
  let listening: Relay | undefined;
  const log: string[] = [];
  const running = xrayTapCommand({ signal: abort.signal, onListening: (r) => (listening = r), log: (l) => log.push(l) }).exitOverride()
    .parseAsync(['node', 'xray-tap', '--listen', '127.0.0.1:0', '--upstream', upstreamUrl, '--record', record, '--record-secrets', '--quiet']);
  await until(() => listening !== undefined);
  return {
    url: `http://127.0.0.1:${(listening!.address as net.AddressInfo).port}/auth`,
    log,
    stop: () => {
      abort.abort();
      return running;
    },
  };
}

function rawExchange(port: number, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write(bytes));
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

const until = async (check: () => boolean): Promise<void> => {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
};

describe('xray-tap', () => {
  it('relays the bytes unchanged both ways: the proxy side receives what it receives without the tap', async () => {
    // A backend that answers three pipelined requests with fixed bytes: chunked, with a length, then closes.
    const replies = [
      'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nX-Case: KeEp\r\n\r\n9\r\n{"user":{\r\n1e\r\n"email":"a@example.com","level\r\n4\r\n":0}\r\n2\r\n}}\r\n0\r\n\r\n',
      // Bare-LF lines and a CRLF blank line: Go reads it, and so must the tap.
      'HTTP/1.1 204 No Content\nServer: odd  \n\r\n',
      'HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\nConnection: close\r\n\r\ndenied',
    ];
    const seen: Buffer[] = [];
    const server = await rawServer((socket) => {
      let text = '';
      let answered = 0;
      socket.on('data', (chunk: Buffer) => {
        seen.push(chunk);
        text += chunk.toString('latin1');
        while (answered < replies.length && text.split('\r\n\r\n').length - 1 > answered) socket.write(replies[answered++]!);
        if (answered === replies.length) socket.end();
      });
    });
    stops.push(() => server.close());
    const port = Number(new URL(server.url).port);
    const url = parseGoUrl(server.url);
    const request = (type: EventType): Buffer => goRequestBytes(eventRequest(url, { dialect: wiki }, buildEventBody(wiki, type, facts(ALICE), new Date(0))));
    const all = Buffer.concat([request('authorization'), request('connect'), request('heartbeat')]);
    const direct = await rawExchange(port, all);
    const sentDirect = Buffer.concat(seen.splice(0));
    const t = await tap(server.url);
    const through = await rawExchange((t.relay.address as net.AddressInfo).port, all);
    expect(through.toString("latin1")).toBe(direct.toString("latin1"));
    expect(direct.toString("latin1")).toBe(replies.join(""));
    expect(Buffer.concat(seen).equals(sentDirect)).toBe(true);
    await until(() => t.exchanges.length === 3);
    expect(t.exchanges.map((e) => [('type' in e.event ? e.event.type : '?'), e.reply?.head.status, e.verdict.class])).toEqual([
      ['authorization', 200, 'allow'], ['connect', 204, 'allow'], ['heartbeat', 403, 'policy-deny'],
    ]);
    expect(t.exchanges[0]!.verdict.user).toEqual({ email: 'a@example.com', level: 0 });
  });

  it('xray-sim -> xray-tap -> xray-backend: one exchange per request, each with the verdict xray-sim reached', async () => {
    const b = await backend();
    const t = await tap(`${b.url}`);
    const sent: { class: string; user: unknown }[] = [];
    for (const [credential, type] of [[ALICE, 'authorization'], [BOB, 'authorization'], [ALICE, 'connect'], [ALICE, 'heartbeat'], ['not-a-uuid', 'authorization'], [ALICE, 'disconnect']] as const) {
      const exchange = await sendEvent({ url: t.url, dialect: wiki, type, facts: facts(credential), timeoutSeconds: 5 });
      sent.push({ class: exchange.verdict.class, user: exchange.verdict.user ?? null });
    }
    await until(() => t.exchanges.length === sent.length);
    expect(t.exchanges.map((e) => ({ class: e.verdict.class, user: e.verdict.user ?? null }))).toEqual(sent);
    expect(sent.map((s) => s.class)).toEqual(['allow', 'policy-deny', 'allow', 'allow', 'policy-deny', 'allow']);
  });

  it('records with --record-secrets; a replay against changed users lists exactly the changed verdicts (exit 1, --allow-changes 0, --junit)', async () => {
    const b = await backend();
    const record = join(dir, 'auth.jsonl');
    const tapped = await tapCommand(b.url, record);
    for (const [credential, type] of [[ALICE, 'authorization'], [BOB, 'authorization'], [ALICE, 'heartbeat']] as const) {
      await sendEvent({ url: tapped.url, dialect: wiki, type, facts: facts(credential), timeoutSeconds: 5 });
    }
    await tapped.stop();
    const recorded = readFileSync(record, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(recorded.map((r) => [r.event, r.class, r.credential])).toEqual([['authorization', 'allow', ALICE], ['authorization', 'policy-deny', BOB], ['heartbeat', 'allow', ALICE]]);

    // The same backend: nothing changes.
    expect(await runMain(['xray-sim', '--url', b.url, '--replay', record, '--speed', '100'])).toMatchObject({ code: 0, stdout: expect.stringContaining('3 same, 0 changed') });
    // Alice disabled: her authorization and her heartbeat change, Bob's deny does not.
    const users = JSON.parse(readFileSync(join(ROOT, 'fixtures', 'xray', 'users.json'), 'utf8')) as { credential: string; enabled?: boolean }[];
    writeFileSync(join(dir, 'users-changed.json'), JSON.stringify(users.map((u) => (u.credential === ALICE ? { ...u, enabled: false } : u))));
    const changed = await backend(join(dir, 'users-changed.json'));
    const junit = join(dir, 'replay.xml');
    const result = await runMain(['xray-sim', '--url', changed.url, '--replay', record, '--speed', '100', '--json', '--junit', junit]);
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout);
    expect(report).toMatchObject({ exchanges: 3, same: 1, changed: 2 });
    expect(report.changes.map((c: { line: number; from: string; to: string }) => [c.line, c.from, c.to])).toEqual([
      [1, 'allow {"email":"alice@example.com","level":0}', 'policy-deny'], [3, 'allow', 'policy-deny'],
    ]);
    // Masked in the report unless asked.
    expect(result.stdout).not.toContain(ALICE);
    expect(readFileSync(junit, 'utf8')).toMatch(/<testsuites name="xray-sim replay" tests="3" failures="2"/);
    expect((await runMain(['xray-sim', '--url', changed.url, '--replay', record, '--speed', '100', '--allow-changes'])).code).toBe(0);

    // Through the load engine: the recording is the arrivals, thresholds apply, classes are compared.
    const load = await runMain(['xray-sim', '--url', changed.url, '--replay', record, '--speed', '20', '--load', '--json', '--threshold', 'error_rate<1%']);
    expect(load.code).toBe(1);
    expect(JSON.parse(load.stdout)).toMatchObject({ requests: 3, outcomes: { 'policy-deny': 3 } });
    expect(load.stderr).toMatch(/3 exchanges replayed from .* 1 same, 2 changed/);
    expect(load.stderr).toMatch(/line 1: authorization 550e8400-\*{4}.*: allow -> policy-deny/);
    const breached = await runMain(['xray-sim', '--url', changed.url, '--replay', record, '--speed', '20', '--load', '--threshold', 'requests{allow}>=1']);
    expect(breached.code).toBe(3);
    expect((await runMain(['xray-sim', '--url', b.url, '--replay', record, '--speed', '20', '--load'])).code).toBe(0);
    // Cut short by --duration: the records never sent are not a pass. (The recording respaced 10 s
    // apart, so what --duration 100ms leaves out does not depend on how fast the run starts.)
    const spaced = join(dir, 'spaced.jsonl');
    writeFileSync(spaced, recorded.map((r, i) => `${JSON.stringify({ ...r, offsetMs: i * 10_000 })}\n`).join(''));
    const cut = await runMain(['xray-sim', '--url', b.url, '--replay', spaced, '--load', '--duration', '100ms']);
    expect(cut.code).toBe(1);
    expect(cut.stderr).toMatch(/INCOMPLETE: \d+ recorded exchanges were not compared/);
  });

  it('bad recordings are one line and exit 2: not JSON (its line), cut off, another protocol, masked credentials; flags a replay does not use', async () => {
    const good = JSON.stringify({ protocol: 'xray', at: new Date().toISOString(), offsetMs: 0, secrets: true, dialect: 'wiki', event: 'authorization', credential: ALICE, request: { method: 'POST', target: '/auth', headers: [], body: '{}' }, reply: null, class: 'allow', verdict: 'allow' });
    const cases: [string, string, RegExp][] = [
      ['not-json.jsonl', `${good}\n{oops\n${good}\n`, /not-json\.jsonl:2: not JSON/],
      ['cut.jsonl', `${good}\n${good.slice(0, 40)}`, /cut\.jsonl:2: a truncated line/],
      ['capnp.jsonl', `${JSON.stringify({ protocol: 'capnp', offsetMs: 0, secrets: true })}\n`, /capnp\.jsonl:1: a recording of capnp, not xray/],
      ['masked.jsonl', `${good.replace('"secrets":true', '"secrets":false')}\n`, /masked\.jsonl:1: recorded without --record-secrets/],
      ['empty.jsonl', '\n', /an empty recording/],
      ['no-headers.jsonl', `${good.replace('"headers":[],', '')}\n`, /no-headers\.jsonl:1: "request\.headers" must be a list of \[name, value\] strings/],
      ['back.jsonl', `${good.replace('"offsetMs":0', '"offsetMs":50')}\n${good}\n`, /back\.jsonl:2: "offsetMs" goes back/],
    ];
    for (const [name, text, message] of cases) {
      writeFileSync(join(dir, name), text);
      const result = await runMain(['xray-sim', '--url', 'http://127.0.0.1:9/auth', '--replay', join(dir, name)]);
      expect(result.code, name).toBe(2);
      expect(result.stderr.trim().split('\n'), name).toHaveLength(1);
      expect(result.stderr, name).toMatch(message);
    }
    writeFileSync(join(dir, 'good.jsonl'), `${good}\n`);
    expect(await runMain(['xray-sim', '--url', 'http://127.0.0.1:9/auth', '--replay', join(dir, 'good.jsonl'), '--load', '--rate', '10'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--rate belongs to load mode; this is a replay-load run/) });
    expect(await runMain(['xray-sim', '--url', 'http://127.0.0.1:9/auth', '--replay', join(dir, 'good.jsonl'), '--credential', ALICE])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--credential belongs to/) });
    expect(await runMain(['xray-sim', '--url', 'http://127.0.0.1:9/auth', '--replay', join(dir, 'good.jsonl'), '--speed', '0'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--speed/) });
  });

  it('--max-pending: a connection with more requests waiting for replies is relayed and no longer read (one line); the flag takes a count', async () => {
    let received = '';
    const silent = await rawServer((socket) => socket.on('data', (c: Buffer) => (received += c.toString('latin1'))));
    stops.push(() => silent.close());
    const upstream = new URL(silent.url);
    const log: string[] = [];
    const exchanges: TappedExchange[] = [];
    const relay = await startXrayTap({
      listen: { host: '127.0.0.1', port: 0 }, upstream: { host: upstream.hostname, port: Number(upstream.port) },
      dialect: wiki, kickOnDeny: true, timeoutSeconds: 5, maxPending: 3,
      onExchange: (e) => exchanges.push(e), log: (line) => log.push(line),
    });
    stops.push(() => relay.close());
    const request = (n: number): string => `POST /auth HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nX-N: ${n}\r\n\r\n{}`;
    const client = net.connect({ host: '127.0.0.1', port: (relay.address as net.AddressInfo).port }, () => client.write([1, 2, 3, 4, 5].map(request).join('')));
    client.on('error', () => undefined);
    stops.push(async () => void client.destroy());
    // Every byte reaches the backend all the same.
    const sent = [1, 2, 3, 4, 5].map(request).join('');
    await until(() => received.length >= sent.length && log.length > 0);
    expect(received).toBe(sent);
    expect(log).toEqual(['connection 1: more than 3 requests waiting for their replies (--max-pending): relayed, no longer read; 3 waiting not reported']);
    expect(exchanges).toEqual([]);

    const bad = await runMain(['xray-tap', '--listen', '127.0.0.1:0', '--upstream', 'http://127.0.0.1:9', '--max-pending', '0']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--max-pending/);
  });

  it('a reply before the request is whole (a 413 that does not read the body) is paired with it; a tap stopped mid-exchange reports nothing', async () => {
    const refusing = await rawServer((socket) => socket.once('data', () => socket.end('HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')));
    stops.push(() => refusing.close());
    const t = await tap(refusing.url);
    const port = (t.relay.address as net.AddressInfo).port;
    const big = net.connect({ host: '127.0.0.1', port }, () => big.write(`POST /auth HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n{"type":"authorization","credential":"${ALICE}"`));
    big.on('error', () => undefined);
    await until(() => t.exchanges.length === 1);
    big.destroy();
    expect(t.exchanges[0]!.reply?.head.status).toBe(413);
    expect(t.exchanges[0]!.request.truncated).toBe(true);

    // A backend that reads the request and never answers: once it has the bytes, the tap has read
    // them too (it reads its copy in the same turn as it writes them on).
    let received = '';
    const silent = await rawServer((socket) => socket.on('data', (c: Buffer) => (received += c.toString('latin1'))));
    stops.push(() => silent.close());
    const record = join(dir, 'stopped.jsonl');
    const tapped = await tapCommand(silent.url, record);
    const waiting = sendEvent({ url: tapped.url, dialect: wiki, type: 'authorization', facts: facts(ALICE), timeoutSeconds: 30 });
    // The whole request: its JSON body is the last thing sent.
    await until(() => received.endsWith('}'));
    await tapped.stop();
    await waiting;
    expect(readFileSync(record, 'utf8')).toBe('');
    expect(tapped.log.join('\n')).toMatch(/1 exchange\(s\) in flight when the tap stopped: not reported/);
    expect(tapped.log.join('\n')).toMatch(/0 exchanges on 1 connections/);
  });

  it('a backend that is down: the proxy\'s connection is reset (a network error, as without the tap), and the tap says so', async () => {
    const down = await closedPortUrl();
    const t = await tap(down);
    const direct = await sendEvent({ url: down, dialect: wiki, type: 'authorization', facts: facts(ALICE), timeoutSeconds: 5 });
    const through = await sendEvent({ url: t.url, dialect: wiki, type: 'authorization', facts: facts(ALICE), timeoutSeconds: 5 });
    expect(direct.verdict).toMatchObject({ verdict: 'deny', class: 'network-error' });
    expect(through.verdict).toMatchObject({ verdict: 'deny', class: 'network-error' });
    await until(() => t.down.length === 1);
    expect(t.down).toEqual(['connection refused']);
    expect(t.exchanges).toEqual([]);
  });

  it('a proxy that gives up before the reply: recorded as its timeout, and the tap keeps relaying', async () => {
    const silent = await rawServer(() => undefined);
    stops.push(() => silent.close());
    // The tap is told the proxy's timeout is 0.3 s; the proxy here gives up at 0.6 s. The tap times
    // the wait from the request's last byte, later than the proxy's own clock starts, so a proxy
    // that waited its configured timeout exactly could look a little short of it on a busy machine.
    const t = await tap(silent.url, { timeoutSeconds: 0.3 });
    const through = await sendEvent({ url: t.url, dialect: wiki, type: 'authorization', facts: facts(ALICE), timeoutSeconds: 0.6 });
    expect(through.verdict.class).toBe('timeout');
    await until(() => t.exchanges.length === 1);
    expect(t.exchanges[0]!.verdict).toMatchObject({ verdict: 'deny', class: 'timeout' });
    expect(t.exchanges[0]!.violations.map((v) => v.id)).toContain('X15');
    // A client that leaves mid-request: nothing more recorded, nothing broken.
    const half = net.connect({ host: '127.0.0.1', port: (t.relay.address as net.AddressInfo).port }, () => half.write('POST /auth HTTP/1.1\r\nContent-Length: 100\r\n\r\n{"type"'));
    half.on('error', () => undefined);
    await new Promise((resolve) => half.once('connect', resolve));
    half.destroy();
    const b = await backend();
    const again = await tap(b.url);
    expect((await sendEvent({ url: again.url, dialect: wiki, type: 'authorization', facts: facts(ALICE), timeoutSeconds: 5 })).verdict.class).toBe('allow');
    // The request cut short was not read as an exchange.
    expect(t.exchanges).toHaveLength(1);
  });
});
