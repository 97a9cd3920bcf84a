// Child process of bench/run.js: loads one users file into a UserStore, as snell-auth and
// snell-serve do, and reports the time and peak RSS.
import { performance } from 'node:perf_hooks';
import { resourceUsage } from 'node:process';
import { loadUserStore } from '../../dist/snell/users.js';

const started = performance.now();
const { store, format } = await loadUserStore(process.argv[2]);
const seconds = (performance.now() - started) / 1000;
process.stdout.write(`${JSON.stringify({ users: store.size, format, seconds, maxRssMiB: resourceUsage().maxRSS / 1024 })}\n`);
