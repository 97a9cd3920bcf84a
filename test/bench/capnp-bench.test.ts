/**
 * `npm run bench`, Cap'n Proto part (issues 4 and 16): calls per second on one connection, each
 * figure next to the official C++ client against the official C++ server measured in the same
 * round. Rounds alternate every pair (C++/C++ first, then each authkit side), so a busy machine
 * slows both alike; a row's ratio is the median of its rounds' ratios. Every client runs in its
 * own process (authkit's as users run it: node on dist/, test/bench/capnp-client-rate.js).
 * CPU per call is a second, steadier view on a shared machine: each client reports its own, the
 * servers' comes from /proc (Linux). Written to test-results/capnp-bench.md.
 * Excluded from `npm test` (see package.json).
 */
import { it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildPeers, capnpAvailable, parseClientOutput, runClient, startServer, tempSocketPath } from '../interop/capnp/peers.js';
import { ROOT } from '../helpers.js';
import { cpuSecondsOf } from './proc-cpu.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Figure {
  callsPerSec: number;
  /** CPU microseconds per call of the side a row is about (client or server). */
  clientCpuUs: number;
  serverCpuUs?: number;
}

/** Runs one client measurement; the server's CPU is read around it. */
async function measure(serverPid: number, run: () => Promise<{ callsPerSec: number; cpuSeconds: number }>): Promise<Figure> {
  const before = cpuSecondsOf(serverPid);
  const { callsPerSec, cpuSeconds } = await run();
  const after = cpuSecondsOf(serverPid);
  const calls = callsPerSec * SECONDS;
  return { callsPerSec, clientCpuUs: (cpuSeconds * 1e6) / calls, serverCpuUs: before === undefined || after === undefined ? undefined : ((after - before) * 1e6) / calls };
}

/** A Node client script of test/bench in its own process; it prints {callsPerSec, cpuSeconds}. */
async function nodeClient(script: string, args: string[]): Promise<{ callsPerSec: number; cpuSeconds: number }> {
  const child = spawn(process.execPath, [join(ROOT, 'test', 'bench', script), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`${script} exited with ${code}`);
  return JSON.parse(output) as { callsPerSec: number; cpuSeconds: number };
}

async function cppClient(client: string, socket: string, inFlight: number): Promise<{ callsPerSec: number; cpuSeconds: number }> {
  const result = await runClient(client, socket, ['--bench', String(SECONDS), '--in-flight', String(inFlight)], (SECONDS + 20) * 1000);
  return parseClientOutput(result.stdout).summary!;
}

it.skipIf(!capnpAvailable())('measures calls per second', async () => {
  const peers = await buildPeers();
  const cppSocket = tempSocketPath();
  const cppServer = await startServer(peers.server, cppSocket);
  const serveSocket = tempSocketPath();
  const serve = spawn(process.execPath, [join(ROOT, 'bin', 'authkit.js'), 'capnp-serve', '--socket', serveSocket, '--rules', join(ROOT, 'fixtures', 'capnp-serve', 'rules.json'), '--quiet'], { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve) => serve.stderr!.on('data', (c: Buffer) => /listening/.test(c.toString()) && resolve()));
  const cpp = cppServer.child.pid!;
  const figures: Record<string, Figure[]> = {};
  const add = (key: string, figure: Figure): void => void (figures[key] ??= []).push(figure);
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const n of [1, 64]) {
        add(`cpp-client cpp-server ${n}`, await measure(cpp, () => cppClient(peers.client, cppSocket, n)));
        add(`ts-client cpp-server ${n}`, await measure(cpp, () => nodeClient('capnp-client-rate.js', [cppSocket, String(n), String(SECONDS)])));
        add(`cpp-client capnp-serve ${n}`, await measure(serve.pid!, () => cppClient(peers.client, serveSocket, n)));
      }
      add('ts-client capnp-serve 1', await measure(serve.pid!, () => nodeClient('capnp-client-rate.js', [serveSocket, '1', String(SECONDS)])));
      for (const n of [1, 64]) add(`pingpong cpp-server ${n}`, await measure(cpp, () => nodeClient('capnp-pingpong.js', [cppSocket, String(SECONDS), String(n)])));
    }
  } finally {
    await cppServer.stop();
    serve.kill('SIGTERM');
  }
  const rate = (key: string): number => median(figures[key]!.map((f) => f.callsPerSec));
  /** The median over rounds of this round's figure over the reference's in the same round. */
  const ratio = (key: string, reference: string): number => median(figures[key]!.map((f, i) => f.callsPerSec / figures[reference]![i]!.callsPerSec));
  const cpu = (key: string, side: 'clientCpuUs' | 'serverCpuUs'): string => {
    const values = figures[key]!.map((f) => f[side]);
    return values.some((v) => v === undefined) ? 'n/a' : median(values as number[]).toFixed(1);
  };
  const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
  const row = (label: string, key: string, target: string): string => {
    const reference = `cpp-client cpp-server ${key.slice(key.lastIndexOf(' ') + 1)}`;
    return `| ${label} | ${fmt(rate(key))} | ${fmt(rate(reference))} | ${ratio(key, reference).toFixed(2)} | ${target} |`;
  };
  const cpuRow = (label: string, side: 'clientCpuUs' | 'serverCpuUs', key: string, reference: string): string =>
    `| ${label} | ${cpu(key, side)} | ${cpu(reference, side)} |`;
  const lines = [
    `**Proksi external_auth (Cap'n Proto RPC)**, one connection, the C++ client's request (5 fields, 4 headers), median of ${ROUNDS} alternating rounds of ${SECONDS} s:`,
    '',
    '| what | calls/s | reference calls/s | ratio | target |',
    '|---|---:|---:|---:|---:|',
    row('authkit client -> C++ server, 1 at a time', 'ts-client cpp-server 1', '0.8'),
    row('authkit client -> C++ server, 64 in flight', 'ts-client cpp-server 64', '1.0'),
    row('C++ client -> capnp-serve, 1 at a time', 'cpp-client capnp-serve 1', '1.0'),
    row('C++ client -> capnp-serve, 64 in flight', 'cpp-client capnp-serve 64', '1.0'),
    row('authkit client -> capnp-serve, 1 at a time', 'ts-client capnp-serve 1', ''),
    row('bare Node ping-pong -> C++ server, 1 at a time', 'pingpong cpp-server 1', ''),
    row('bare Node ping-pong -> C++ server, 64 in flight', 'pingpong cpp-server 64', ''),
    '',
    'The reference is the official C++ client (`EzRpcClient`, Debian libcapnp) against the official C++ server (`EzRpcServer`), in the same round; the ratio is the median of the rounds\' ratios. The bare ping-pong (test/bench/capnp-pingpong.js) sends pre-encoded calls as soon as Returns come, reading nothing of them but the answer ID: a Node client with nothing else to do.',
    '',
    '| CPU µs per call (median) | authkit | C++ |',
    '|---|---:|---:|',
    cpuRow('client, 1 at a time (C++ server)', 'clientCpuUs', 'ts-client cpp-server 1', 'cpp-client cpp-server 1'),
    cpuRow('client, 64 in flight (C++ server)', 'clientCpuUs', 'ts-client cpp-server 64', 'cpp-client cpp-server 64'),
    cpuRow('server, 1 at a time (C++ client)', 'serverCpuUs', 'cpp-client capnp-serve 1', 'cpp-client cpp-server 1'),
    cpuRow('server, 64 in flight (C++ client)', 'serverCpuUs', 'cpp-client capnp-serve 64', 'cpp-client cpp-server 64'),
    `| bare Node ping-pong client, 1 at a time | ${cpu('pingpong cpp-server 1', 'clientCpuUs')} | |`,
    `| bare Node ping-pong client, 64 in flight | ${cpu('pingpong cpp-server 64', 'clientCpuUs')} | |`,
    '',
    `The C++ server's CPU per call with 64 in flight, by its client: the C++ client ${cpu('cpp-client cpp-server 64', 'serverCpuUs')} µs, authkit's ${cpu('ts-client cpp-server 64', 'serverCpuUs')} µs, the bare Node ping-pong ${cpu('pingpong cpp-server 64', 'serverCpuUs')} µs.`,
  ];
  mkdirSync(join(ROOT, 'test-results'), { recursive: true });
  writeFileSync(join(ROOT, 'test-results', 'capnp-bench.md'), `${lines.join('\n')}\n`);
}, 900_000);
