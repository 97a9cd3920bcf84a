// `npm run bench`: the figures the README quotes, each as a ratio against a reference measured
// on the same machine in the same run. Progress goes to stderr, the results table to stdout.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { availableKdfs, TrialAuthenticator } from '../../dist/index.js';
import { benchTrialAuth, syntheticUsers } from '../../dist/snell/trial-bench.js';
import { buildFirstPacket } from '../../dist/snell/client.js';

const USERS = Number(process.env.BENCH_USERS ?? 1000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const PYTHON = process.env.BENCH_PYTHON ?? '/usr/bin/python3';
const say = (m) => process.stderr.write(`bench: ${m}\n`);
const fmt = (n) => Math.round(n).toLocaleString('en-US');

say(`machine: ${cpus().length} x ${cpus()[0]?.model}, Node ${process.version}`);
const kdfs = await availableKdfs();
const rows = await benchTrialAuth({ users: USERS, kdfs, seconds: SECONDS, progress: say });

say(`reference: libargon2 + OpenSSL AES-GCM via ${PYTHON}, ${USERS} users`);
let reference;
try {
  reference = JSON.parse(execFileSync(PYTHON, [new URL('./reference_trial.py', import.meta.url).pathname, String(USERS), String(SECONDS)], { encoding: 'utf8' }));
} catch (error) {
  say(`reference not available (${error.message.split('\n')[0]}); install python3-argon2 python3-cryptography`);
}

// A cache hit costs one derivation and one open: check the count rather than assume it.
const users = syntheticUsers(64);
const blob = (await buildFirstPacket({ psk: users[40].psk, request: { command: 'connect-v2', clientId: new Uint8Array(0), host: 'example.com', port: 443 } })).wire;
const auth = await TrialAuthenticator.create(users);
await auth.authenticate(blob, '192.0.2.7');
const hit = await auth.authenticate(blob, '192.0.2.7');
await auth.close();

say('users file: 1,000,000 users, name:psk lines and a JSON array');
const dir = mkdtempSync(join(tmpdir(), 'authkit-bench-'));
const loads = [];
try {
  const million = Array.from({ length: 1_000_000 }, (_, i) => ({ name: `user-${i}`, psk: randomBytes(16).toString('base64') }));
  writeFileSync(join(dir, 'users.txt'), million.map((u) => `${u.name}:${u.psk}`).join('\n'));
  writeFileSync(join(dir, 'users.json'), `[\n${million.map((u) => JSON.stringify(u)).join(',\n')}\n]\n`);
  for (const file of ['users.txt', 'users.json']) {
    loads.push(JSON.parse(execFileSync(process.execPath, [new URL('./load-users.js', import.meta.url).pathname, join(dir, file)], { encoding: 'utf8' })));
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const best = rows[0];
const lines = [];
lines.push(`Trial authentication, ${USERS} users, ${cpus().length} cores, Node ${process.version} (authkit backends, best first)`);
lines.push('');
lines.push('| KDF backend | derivations/s (1 thread) | cold path user-trials/s | cold ms/connection | serial match conn/s (16 users) | parallel match conn/s | cache hit conn/s |');
lines.push('|---|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  lines.push(`| ${r.kdf} | ${fmt(r.derivationsPerSec)} | ${fmt(r.cold.userTrialsPerSec)} | ${r.cold.msPerConnection.toFixed(2)} | ${fmt(r.serial.connectionsPerSec)} | ${fmt(r.parallel.connectionsPerSec)} | ${fmt(r.cacheHit.connectionsPerSec)} |`);
}
lines.push('');
if (reference) {
  const ratio = (a, b) => (a / b).toFixed(2);
  lines.push(`Reference, same machine, same run (Python: libargon2 via argon2-cffi + OpenSSL AES-GCM, ${USERS} users, no match):`);
  lines.push('');
  lines.push('| reference | user-trials/s | authkit (' + best.kdf + ') / reference |');
  lines.push('|---|---:|---:|');
  lines.push(`| 1 thread | ${fmt(reference.serialUserTrialsPerSec)} | ${ratio(best.cold.userTrialsPerSec, reference.serialUserTrialsPerSec)} |`);
  lines.push(`| 2 threads | ${fmt(reference.twoThreadsUserTrialsPerSec)} | ${ratio(best.cold.userTrialsPerSec, reference.twoThreadsUserTrialsPerSec)} |`);
  lines.push(`| 2 processes | ${fmt(reference.twoProcessesUserTrialsPerSec)} | ${ratio(best.cold.userTrialsPerSec, reference.twoProcessesUserTrialsPerSec)} |`);
  lines.push('');
}
const slowest = rows[rows.length - 1];
lines.push(`KDF: ${best.kdf} derives ${(best.derivationsPerSec / slowest.derivationsPerSec).toFixed(1)}x as fast as ${slowest.kdf} on one thread.`);
lines.push(`Cache hit: ${hit.trials} derivation and one open (path ${hit.path}); ${(1e6 / best.cacheHit.connectionsPerSec).toFixed(0)} µs per connection with ${best.kdf}, against ${(1e6 / best.derivationsPerSec).toFixed(0)} µs for a derivation alone.`);
for (const l of loads) lines.push(`Users file, ${fmt(l.users)} users (${l.format}): loaded in ${l.seconds.toFixed(2)} s, peak RSS ${Math.round(l.maxRssMiB)} MiB.`);
process.stdout.write(`${lines.join('\n')}\n`);
