// The floor for any Node client of the C++ server, one call at a time: a bare ping-pong on one
// Unix socket that sends a pre-encoded check() Call (its question ID patched in) with the Finish
// of the previous one, and sends the next as soon as any bytes come back: no decoding, no
// promise, no timer. What is left is Node's event loop and the socket. Prints calls per second
// and CPU seconds, as capnp-client-rate.js does.
// Usage: node test/bench/capnp-pingpong.js SOCKET SECONDS
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { encodeBootstrap, encodeCheckCall, encodeFinish } from '../../dist/capnp/wire/rpc.js';

const [socketPath, secondsText] = process.argv.slice(2);
const seconds = Number(secondsText);
const request = {
  method: 'GET', host: 'example.com', path: '/', query: '', clientIp: '203.0.113.5:40000',
  headers: [{ name: 'authorization', value: 'Bearer good' }, { name: 'user-agent', value: 'curl/8.5.0' }, { name: 'accept', value: '*/*' }, { name: 'x-request-id', value: 'req-1' }],
};
// Question 0 is the bootstrap; every call is question 1, on the imported capability 0 (the
// C++ server's first export), finished before the next is asked.
const call = Buffer.from(encodeCheckCall(1, { importedCap: 0 }, request));
const finishThenCall = Buffer.concat([encodeFinish(1, true), call]);

let calls = 0;
let started = 0;
let cpu;
let bootstrapped = false;
const buffer = Buffer.allocUnsafe(64 * 1024);
// Each reply (the bootstrap's Return, then each call's) fits in one read on a Unix socket.
const socket = net.createConnection({ path: socketPath, onread: { buffer, callback: () => {
  if (!bootstrapped) {
    bootstrapped = true;
    socket.write(Buffer.concat([encodeFinish(0, false), call]));
    cpu = process.cpuUsage();
    started = performance.now();
    return true;
  }
  calls++;
  const elapsed = performance.now() - started;
  if (elapsed < seconds * 1000) {
    socket.write(finishThenCall);
    return true;
  }
  const { user, system } = process.cpuUsage(cpu);
  console.log(JSON.stringify({ callsPerSec: (calls * 1000) / elapsed, cpuSeconds: (user + system) / 1e6 }));
  socket.destroy();
  return false;
} } });
socket.on('connect', () => socket.write(encodeBootstrap(0)));
