// Child process of bench/run.js: loads one users file into a UserStore and reports the time and peak RSS.
import { performance } from 'node:perf_hooks';
import { resourceUsage } from 'node:process';
import { loadUsersFile } from '../../dist/snell/users.js';
import { UserStore } from '../../dist/snell/user-store.js';

const started = performance.now();
const parsed = await loadUsersFile(process.argv[2]);
const store = UserStore.fromUsers(parsed.users);
const seconds = (performance.now() - started) / 1000;
process.stdout.write(`${JSON.stringify({ users: store.size, format: parsed.format, seconds, maxRssMiB: resourceUsage().maxRSS / 1024 })}\n`);
