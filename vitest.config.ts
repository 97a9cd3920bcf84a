import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** The files that take longest, started first so none of them is the last one still running. */
const LONGEST_FIRST = ['test/readme/', 'test/cli/snell-net-cli', 'test/cli/demo-cli', 'test/cli/load-cli', 'test/cli/xray-cli', 'test/cli/pack'];

class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (file: TestSpecification): number => {
      const at = LONGEST_FIRST.findIndex((prefix) => file.moduleId.includes(prefix));
      return at < 0 ? LONGEST_FIRST.length : at;
    };
    return [...sorted].sort((a, b) => rank(a) - rank(b));
  }
}

// Tests that spawn the CLI wait for a process to start, and on a busy 2-core machine that can
// take longer than vitest's 5 s default. No assertion here is about speed, so each test gets a
// generous bound instead: it still ends, whatever the machine.
export default defineConfig({
  test: {
    // Most test files wait on sockets and child processes, not on the CPU: on a 2-core machine
    // vitest's default (one worker per core, less one) runs them one after another.
    maxWorkers: 4,
    sequence: { sequencer: LongestFirst },
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
