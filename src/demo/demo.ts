/**
 * `authkit demo`: the simulators are the backend. Starts xray-backend, capnp-serve and
 * snell-serve in this process on loopback ports and a temporary socket, then runs the commands
 * a user would run against their own backend (as child processes, exactly as typed), and
 * reports each step: a one-shot allow and deny, the conformance suite, a 5-second load run,
 * and trial authentication against 10,000 users. Everything it starts is stopped, and the
 * temporary directory removed, on the way out, Ctrl-C included.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { startXrayBackend, type XrayBackend } from '../xray/server/server.js';
import { dialectNamed } from '../xray/wire/dialects/index.js';
import { startAuthServer, type AuthServer } from '../capnp/server/server.js';
import { loadRulesFile } from '../capnp/server/rules.js';
import { decideByRules } from '../capnp/server/rule-match.js';
import { startSnellServer, type SnellServer } from '../snell/server/server.js';
import { parseTargetPolicy } from '../snell/server/targets.js';
import { loadUsersFile } from '../snell/users.js';
import { buildFirstPacket } from '../snell/wire/first-packet.js';
import { selectKdf } from '../snell/wire/kdf.js';
import { toHex } from '../shared/bytes.js';

export const DEMO_PARTS = ['xray', 'capnp', 'snell'] as const;
export type DemoPart = (typeof DEMO_PARTS)[number];

export interface DemoStep {
  part: DemoPart;
  name: string;
  ok: boolean;
  /** One line: what happened. */
  detail: string;
  /** The command as run here (run it yourself with your backend's address). */
  command: string;
  seconds: number;
}

export interface DemoReport {
  ok: boolean;
  seconds: number;
  steps: DemoStep[];
  figures: Record<string, number>;
  /** Parts of the toolkit the demo does not show, and why. */
  notes: string[];
}

export interface DemoOptions {
  parts: readonly DemoPart[];
  loadSeconds: number;
  onStep?: (step: DemoStep) => void;
  progress?: (line: string) => void;
  signal?: AbortSignal;
}

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'authkit.js');
const FIXTURES = join(ROOT, 'fixtures');

/** A file of the package as a path from its root (fixtures/...): what a reader of the clone can run. */
function fromPackageRoot(arg: string): string {
  return arg.startsWith(ROOT.endsWith(sep) ? ROOT : ROOT + sep) ? relative(ROOT, arg) : arg;
}
const ALLOWED = '550e8400-e29b-41d4-a716-446655440000';
const DISABLED = 'e727d208-859c-41ff-bddc-91e22c3ae6bd';
const SECRET = 'demo-secret';

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

export async function runDemo(options: DemoOptions): Promise<DemoReport> {
  const started = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'authkit-demo-'));
  const children = new Set<ChildProcess>();
  const stops: (() => Promise<void>)[] = [];
  const report: DemoReport = { ok: true, seconds: 0, steps: [], figures: {}, notes: [] };
  const env = { ...process.env, DEMO_SECRET: SECRET, XRAY_ADMIN_SECRET: SECRET, DEMO_PSK: 'demo-user-3-psk', NO_COLOR: '1' };
  const abort = (): void => children.forEach((c) => c.kill('SIGTERM'));
  options.signal?.addEventListener('abort', abort, { once: true });

  const run = (args: string[]): Promise<Ran> => new Promise((resolve) => {
    if (options.signal?.aborted) return resolve({ code: null, stdout: '', stderr: 'aborted' });
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => {
      children.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
  const step = async (part: DemoPart, name: string, args: string[], judge: (ran: Ran) => { ok: boolean; detail: string }): Promise<Ran> => {
    options.progress?.(`${part}: ${name}`);
    const t0 = performance.now();
    const ran = await run(args);
    let verdict: { ok: boolean; detail: string };
    try {
      verdict = ran.code === null ? { ok: false, detail: 'stopped' } : judge(ran);
    } catch (error) {
      verdict = { ok: false, detail: `unexpected output (${(error as Error).message}); exit ${ran.code}: ${ran.stderr.trim().split('\n').pop() ?? ''}` };
    }
    const done: DemoStep = { part, name, ...verdict, command: `authkit ${args.map(fromPackageRoot).map(quote).join(' ')}`, seconds: Math.round((performance.now() - t0) / 100) / 10 };
    report.steps.push(done);
    if (!done.ok) report.ok = false;
    options.onStep?.(done);
    return ran;
  };
  const json = (text: string): any => JSON.parse(text.trim().split('\n').pop()!);
  const load = (part: DemoPart, args: string[]): Promise<Ran> =>
    step(part, `${options.loadSeconds}-second load run`, [...args, '--load', '--duration', `${options.loadSeconds}s`, '--json'], (ran) => {
      const s = json(ran.stdout);
      report.figures[`${part}.achievedRate`] = s.achievedRate;
      report.figures[`${part}.p99Us`] = s.latencyUs.p99;
      return { ok: ran.code === 0, detail: `${Math.round(s.achievedRate)} req/s of ${Math.round(s.targetRate ?? s.achievedRate)} asked, p50 ${ms(s.latencyUs.p50)}, p99 ${ms(s.latencyUs.p99)}, errors ${s.errors}` };
    });

  try {
    if (options.parts.includes('xray') && !options.signal?.aborted) {
      const backend: XrayBackend = await startXrayBackend({ dialect: dialectNamed('wiki'), usersFile: join(FIXTURES, 'xray', 'users.json'), port: 0, secret: SECRET });
      stops.push(() => backend.close());
      const url = backend.url.endsWith('/') ? `${backend.url}auth` : `${backend.url}/auth`;
      const fixture = join(dir, 'xray-conformance.json');
      writeFileSync(fixture, readFileSync(join(FIXTURES, 'xray', 'conformance.json'), 'utf8').split('http://127.0.0.1:8080/').join(backend.url.endsWith('/') ? backend.url : `${backend.url}/`));
      const base = ['xray-sim', '--url', url, '--secret-env', 'DEMO_SECRET'];
      await step('xray', 'an allowed user (one-shot)', [...base, '--credential', ALLOWED, '--json'], (ran) => {
        const r = json(ran.stdout);
        return { ok: ran.code === 0 && r.class === 'allow', detail: `Xray's verdict: ${r.verdict}, user ${JSON.stringify(r.user)}` };
      });
      await step('xray', 'a disabled user (one-shot)', [...base, '--credential', DISABLED, '--json'], (ran) => {
        const r = json(ran.stdout);
        return { ok: ran.code === 1 && r.class === 'policy-deny', detail: `Xray's verdict: ${r.verdict} (${r.class}), status ${r.status}` };
      });
      await step('xray', 'conformance suite', [...base, '--conformance', '--fixture', fixture, '--json'], (ran) => suiteVerdict(ran));
      await load('xray', [...base, '--credential', ALLOWED, '--rate', '1000']);
    }

    if (options.parts.includes('capnp') && !options.signal?.aborted) {
      const rules = await loadRulesFile(join(FIXTURES, 'capnp-serve', 'rules.json'));
      const socket = join(dir, 'auth.sock');
      const server: AuthServer = await startAuthServer({ socketPath: socket, decide: (request) => decideByRules(rules, request) });
      stops.push(() => server.close());
      const base = ['capnp-check', '--socket', socket];
      await step('capnp', 'a request that must pass (one-shot)', [...base, '--header', 'authorization: Bearer good', '--json'], (ran) => {
        const r = json(ran.stdout);
        return { ok: ran.code === 0 && r.decision.action === 'pass', detail: `decision ${r.decision.action}, Proksi ${r.proksi.outcome} with ${r.proksi.headers.map((h: string[]) => `${h[0]}: ${h[1]}`).join(', ')}` };
      });
      await step('capnp', 'a request without credentials (one-shot)', [...base, '--json'], (ran) => {
        const r = json(ran.stdout);
        return { ok: ran.code === 0 && r.decision.action === 'block', detail: `decision ${r.decision.action} ${r.decision.statusCode}, Proksi answers ${r.proksi.status}` };
      });
      await step('capnp', 'conformance suite', [...base, '--conformance', '--fixture', join(FIXTURES, 'capnp-serve', 'conformance.json'), '--json'], (ran) => suiteVerdict(ran));
      await load('capnp', [...base, '--header', 'authorization: Bearer good', '--rate', '1000']);
    }

    if (options.parts.includes('snell') && !options.signal?.aborted) {
      const users = Array.from({ length: 20 }, (_, i) => ({ name: `demo-user-${i}`, psk: `demo-user-${i}-psk` }));
      const usersFile = join(dir, 'snell-users.txt');
      writeFileSync(usersFile, users.map((u) => `${u.name}:${u.psk}`).join('\n'));
      const server: SnellServer = await startSnellServer({ host: '127.0.0.1', port: 0, users, obfs: 'http', udp: true, targets: parseTargetPolicy([], true) });
      stops.push(() => server.close());
      const base = ['snell-probe', '--server', `127.0.0.1:${server.address.port}`, '--obfs', 'http'];
      await step('snell', 'a user\'s PSK (PING)', [...base, '--psk-env', 'DEMO_PSK', '--ping', '--json'], (ran) => {
        const r = json(ran.stdout);
        return { ok: ran.code === 0 && r.reply?.kind === 'pong', detail: `${r.outcome} (${r.reply?.kind}) in ${r.totalMs} ms` };
      });
      await step('snell', 'a PSK no user has', [...base, '--psk', 'not-a-user', '--ping', '--json'], (ran) => {
        const r = json(ran.stdout);
        return { ok: ran.code === 1 && r.outcome === 'rejected', detail: `${r.outcome}: ${r.note}` };
      });
      await step('snell', 'every user of the file (an audit)', [...base, '--users', usersFile, '--ping', '--parallel', '4', '--json'], (ran) => {
        const lines = ran.stdout.trim().split('\n').map((l) => JSON.parse(l) as { outcome: string });
        const good = lines.filter((l) => l.outcome === 'authenticated').length;
        return { ok: ran.code === 0 && good === users.length, detail: `${good} of ${users.length} users authenticated (Snell has no backend contract to check: the audit takes the place of a conformance suite)` };
      });
      await load('snell', [...base, '--users', usersFile, '--ping', '--rate', '100', '--bad-ratio', '0.1']);
      // Trial authentication of captured first packets against 10,000 users.
      const big = await loadUsersFile(join(FIXTURES, 'snell', 'users-10k.csv'));
      const kdf = await selectKdf();
      const picks = [17, 4321, 9876].map((i) => big.users[i]!);
      const captures = await Promise.all([...picks.map((u) => u.psk), 'nobody-has-this-psk'].map(async (psk) =>
        JSON.stringify({ blob: toHex((await buildFirstPacket({ psk, kdf, request: { command: 'connect-v2', clientId: new Uint8Array(0), host: 'example.com', port: 443 } })).wire) })));
      const capturesFile = join(dir, 'captures.jsonl');
      writeFileSync(capturesFile, `${captures.join('\n')}\n`);
      await step('snell', 'trial authentication against 10,000 users', ['snell-auth', '--users', join(FIXTURES, 'snell', 'users-10k.csv'), '--captures', capturesFile, '--json'], (ran) => {
        const lines = ran.stdout.trim().split('\n').map((l) => JSON.parse(l) as { user?: string; matched?: boolean; trials: number; micros: number });
        const found = lines.slice(0, 3).map((l, i) => l.user === picks[i]!.name);
        report.figures['snell.trialsPerMatch'] = Math.round(lines.slice(0, 3).reduce((s, l) => s + l.trials, 0) / 3);
        return {
          ok: ran.code === 1 && found.every(Boolean) && lines[3]?.user === undefined,
          detail: `3 captures matched their users (${lines.slice(0, 3).map((l) => `${l.trials} trials, ${ms(l.micros)}`).join('; ')}), the fourth matched no one (exit 1, as it should)`,
        };
      });
    }
  } finally {
    options.signal?.removeEventListener('abort', abort);
    abort();
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
  report.seconds = Math.round((performance.now() - started) / 100) / 10;
  return report;
}

/** The suite's JSON report (pretty-printed: one document, not lines). */
function suiteVerdict(ran: Ran): { ok: boolean; detail: string } {
  const r = JSON.parse(ran.stdout) as { passed: boolean; summary: Record<string, number> };
  const counts = Object.entries(r.summary).filter(([k, v]) => k !== 'total' && k !== 'mustFailed' && v > 0).map(([k, v]) => `${v} ${k}`);
  return {
    ok: ran.code === 0 && r.passed,
    detail: `${r.summary.total} checks: ${counts.join(', ')}; ${r.passed ? 'every MUST check passed' : `${r.summary.mustFailed} MUST checks failed`}`,
  };
}

function ms(us: number): string {
  return us >= 1000 ? `${(us / 1000).toFixed(1)} ms` : `${Math.round(us)} µs`;
}

function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`;
}
