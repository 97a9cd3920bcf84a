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

process.exitCode = await main(process.argv);
