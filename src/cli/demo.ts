/** `authkit demo`: everything authkit does, against its own simulators, in under a minute. */
import { Command } from 'commander';
import { DEMO_PARTS, runDemo, type DemoPart, type DemoStep } from '../demo/demo.js';
import { InputError } from '../shared/errors.js';
import { EXIT_FAILED, EXIT_OK, exitsWith, log, out, parseSeconds, stdoutColors } from './io.js';

interface DemoFlags {
  only?: string;
  json?: boolean;
  loadSeconds: string;
}

export function demoCommand(): Command {
  return new Command('demo')
    .description('start the simulators (xray-backend, capnp-serve, snell-serve) and run every kind of check against them')
    .option('--only <parts>', `run only these parts: ${DEMO_PARTS.join(', ')} (comma-separated)`)
    .option('--json', 'print a machine-readable summary {"ok","seconds","steps","figures","notes"}')
    .option('--load-seconds <duration>', 'length of each load run: a duration like 3s, or seconds (1 to 60)', '5')
    .addHelpText('after', '\nExamples:\n  npx authkit demo\n  npx authkit demo --only xray --json')
    .action(exitsWith(demo));
}

async function demo(flags: DemoFlags): Promise<number> {
  const parts = flags.only === undefined ? [...DEMO_PARTS] : flags.only.split(',').map((p) => p.trim());
  for (const part of parts) if (!(DEMO_PARTS as readonly string[]).includes(part)) throw new InputError(`--only: unknown part "${part}" (known: ${DEMO_PARTS.join(', ')})`);
  const loadSeconds = parseSeconds(flags.loadSeconds, '--load-seconds', { min: 1, max: 60 });
  const controller = new AbortController();
  const stop = (): void => {
    log('\ninterrupted: stopping everything the demo started');
    controller.abort();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const c = stdoutColors();
  const titles: Record<DemoPart, string> = {
    xray: 'Xray ExtAuth: xray-sim against xray-backend',
    capnp: 'Proksi external_auth: capnp-check against capnp-serve',
    snell: 'Snell: snell-probe against snell-serve, snell-auth against 10,000 users',
  };
  let lastPart: DemoPart | undefined;
  const show = (step: DemoStep): void => {
    if (flags.json) return;
    if (step.part !== lastPart) {
      out(`${lastPart ? '\n' : ''}${c.bold(titles[step.part])}`);
      lastPart = step.part;
    }
    out(`${step.ok ? c.green('✔') : c.red('✘')} ${step.name} ${c.dim(`(${step.seconds} s)`)}\n    ${step.detail}\n    ${c.dim(`$ ${step.command}`)}`);
  };
  let report;
  try {
    report = await runDemo({ parts: parts as DemoPart[], loadSeconds, onStep: show, progress: (line) => log(`demo: ${line}`), signal: controller.signal });
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  if (controller.signal.aborted) return 130;
  if (flags.json) {
    out(JSON.stringify(report));
  } else {
    const passed = report.steps.filter((s) => s.ok).length;
    const f = report.figures;
    const figures = [
      f['xray.achievedRate'] === undefined ? '' : `xray-sim --load ${Math.round(f['xray.achievedRate'])} req/s (p99 ${Math.round((f['xray.p99Us'] ?? 0) / 100) / 10} ms)`,
      f['capnp.achievedRate'] === undefined ? '' : `capnp-check --load ${Math.round(f['capnp.achievedRate'])} calls/s (p99 ${Math.round((f['capnp.p99Us'] ?? 0) / 100) / 10} ms)`,
      f['snell.trialsPerMatch'] === undefined ? '' : `snell-auth: a match among 10,000 users took ${f['snell.trialsPerMatch']} trials on average`,
    ].filter(Boolean);
    out('');
    out(c.bold(`${passed} of ${report.steps.length} steps passed in ${report.seconds} s${report.ok ? '' : c.red(' (some failed)')}`));
    if (figures.length > 0) out(`figures: ${figures.join('; ')}`);
    out('Each step\'s command is shown under it: put your own backend\'s URL, socket or server in its place.');
  }
  return report.ok ? EXIT_OK : EXIT_FAILED;
}
