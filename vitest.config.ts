import { defineConfig } from 'vitest/config';

// Tests that spawn the CLI wait for a process to start, and on a busy 2-core machine that can
// take longer than vitest's 5 s default. No assertion here is about speed, so each test gets a
// generous bound instead: it still ends, whatever the machine.
export default defineConfig({
  test: {
    // Most test files wait on sockets and child processes, not on the CPU: on a 2-core machine
    // vitest's default (one worker per core, less one) runs them one after another.
    maxWorkers: 4,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
