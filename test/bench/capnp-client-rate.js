// One measurement of authkit's Cap'n Proto client, run as users run it (node on dist/, its own
// process), so the figure carries no test-runner overhead: prints calls per second and the CPU
// time (user + system) this process spent over the measured seconds.
// Usage: node test/bench/capnp-client-rate.js SOCKET IN_FLIGHT SECONDS
import { performance } from 'node:perf_hooks';
import { AuthServiceClient } from '../../dist/capnp/client.js';

const [socketPath, inFlightText, secondsText] = process.argv.slice(2);
const inFlight = Number(inFlightText);
const seconds = Number(secondsText);
// The C++ client's default request: 5 fields and 4 headers.
const request = {
  method: 'GET', host: 'example.com', path: '/', query: '', clientIp: '203.0.113.5:40000',
  headers: [{ name: 'authorization', value: 'Bearer good' }, { name: 'user-agent', value: 'curl/8.5.0' }, { name: 'accept', value: '*/*' }, { name: 'x-request-id', value: 'req-1' }],
};

const client = await AuthServiceClient.connect(socketPath);
let calls = 0;
const cpu = process.cpuUsage();
const started = performance.now();
const lane = async () => {
  while (performance.now() - started < seconds * 1000) {
    await client.check(request, { timeoutMs: 5000 });
    calls++;
  }
};
await Promise.all(Array.from({ length: inFlight }, lane));
const elapsed = performance.now() - started;
const { user, system } = process.cpuUsage(cpu);
client.close();
console.log(JSON.stringify({ callsPerSec: (calls * 1000) / elapsed, cpuSeconds: (user + system) / 1e6 }));
