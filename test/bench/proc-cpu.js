// CPU time from Linux's /proc, for the benches: a process's, or each of its threads'.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_SECOND = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

/** CPU seconds (user + system) in a /proc stat file, or undefined where there is none (off Linux, or ended). */
function statCpuSeconds(path) {
  if (!existsSync(path)) return undefined;
  const text = readFileSync(path, 'utf8');
  // After "pid (name) ": state is field 0, utime field 11, stime field 12.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** A process's CPU seconds, or undefined off Linux. */
export function cpuSecondsOf(pid) {
  return statCpuSeconds(`/proc/${pid}/stat`);
}

/** CPU seconds of each of a process's threads, by thread id. */
export function threadCpuSeconds(pid) {
  const threads = new Map();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const seconds = statCpuSeconds(`/proc/${pid}/task/${tid}/stat`);
      if (seconds !== undefined) threads.set(tid, seconds);
    } catch {
      // A thread that ended between the listing and the read.
    }
  }
  return threads;
}
