/**
 * `npm run bench`, Cap'n Proto part (issue 4's figures): calls per second on one connection,
 * authkit's client against the official C++ server next to the C++ client against the same
 * server, and the C++ client against capnp-serve next to it against the C++ server. Measured in
 * alternating rounds, medians reported, written to test-results/capnp-bench.md.
 * Excluded from `npm test` (see package.json).
 */
import { it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildPeers, capnpAvailable, parseClientOutput, runClient, startServer, tempSocketPath } from '../interop/capnp/peers.js';
import { ROOT } from '../helpers.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** authkit's client in its own `node` process on dist/, as a user runs it (no test-runner overhead). */
async function tsRate(socket: string, inFlight: number): Promise<number> {
  const child = spawn(process.execPath, [join(ROOT, 'test', 'bench', 'capnp-client-rate.js'), socket, String(inFlight), String(SECONDS)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`capnp-client-rate exited with ${code}`);
  return (JSON.parse(output) as { callsPerSec: number }).callsPerSec;
}

async function cppRate(client: string, socket: string, inFlight: number): Promise<number> {
  const result = await runClient(client, socket, ['--bench', String(SECONDS), '--in-flight', String(inFlight)], (SECONDS + 20) * 1000);
  return parseClientOutput(result.stdout).summary!.callsPerSec;
}

it.skipIf(!capnpAvailable())('measures calls per second', async () => {
  const peers = await buildPeers();
  const cppSocket = tempSocketPath();
  const cppServer = await startServer(peers.server, cppSocket);
  const serveSocket = tempSocketPath();
  const serve = spawn(process.execPath, [join(ROOT, 'bin', 'authkit.js'), 'capnp-serve', '--socket', serveSocket, '--rules', join(ROOT, 'fixtures', 'capnp-serve', 'rules.json'), '--quiet'], { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve) => serve.stderr!.on('data', (c: Buffer) => /listening/.test(c.toString()) && resolve()));
  const figures: Record<string, number[]> = {};
  const add = (key: string, value: number): void => void (figures[key] ??= []).push(value);
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const inFlight of [1, 64]) {
        add(`cpp-client cpp-server ${inFlight}`, await cppRate(peers.client, cppSocket, inFlight));
        add(`ts-client cpp-server ${inFlight}`, await tsRate(cppSocket, inFlight));
        add(`cpp-client capnp-serve ${inFlight}`, await cppRate(peers.client, serveSocket, inFlight));
      }
    }
  } finally {
    await cppServer.stop();
    serve.kill('SIGTERM');
  }
  const m = (key: string): number => median(figures[key]!);
  const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
  const row = (label: string, key: string, reference: string, target: number): string =>
    `| ${label} | ${fmt(m(key))} | ${fmt(m(reference))} | ${(m(key) / m(reference)).toFixed(2)} | ${target} |`;
  const lines = [
    `**Proksi external_auth (Cap'n Proto RPC)**, one connection, the C++ client's request (5 fields, 4 headers), median of ${ROUNDS} alternating rounds of ${SECONDS} s:`,
    '',
    '| what | calls/s | reference calls/s | ratio | target |',
    '|---|---:|---:|---:|---:|',
    row('authkit client -> C++ server, 64 in flight', 'ts-client cpp-server 64', 'cpp-client cpp-server 64', 0.7),
    row('authkit client -> C++ server, 1 at a time', 'ts-client cpp-server 1', 'cpp-client cpp-server 1', 0.5),
    row('C++ client -> capnp-serve, 64 in flight', 'cpp-client capnp-serve 64', 'cpp-client cpp-server 64', 0.5),
    row('C++ client -> capnp-serve, 1 at a time', 'cpp-client capnp-serve 1', 'cpp-client cpp-server 1', 0.5),
    '',
    'The reference is the official C++ client (`EzRpcClient`, Debian libcapnp) against the official C++ server (`EzRpcServer`), in the same run.',
  ];
  mkdirSync(join(ROOT, 'test-results'), { recursive: true });
  writeFileSync(join(ROOT, 'test-results', 'capnp-bench.md'), `${lines.join('\n')}\n`);
}, 600_000);
