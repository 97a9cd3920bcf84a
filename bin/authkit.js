#!/usr/bin/env node
import { prestart } from '../dist/bundle/prestart.js';

// Before the rest loads: a worker a command will need boots meanwhile (cli/prestart.ts).
prestart(process.argv);
const { main } = await import('../dist/bundle/main.js');

// A reader that stops early (`| head`) closes the pipe: that ends the output, not in a stack trace.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

// A process that ends before main() has settled (nothing left holding the event loop open while
// it waits) would leave with whatever exit code was last set, 0 even: that is authkit's bug, not a
// verdict, and says so.
let settled = false;
process.on('exit', () => {
  if (settled) return;
  process.stderr.write('authkit: internal error: the process ended before the command finished\n');
  process.exitCode = 70;
});
process.exitCode = await main(process.argv);
settled = true;
