/** `authkit report merge A.hlog B.hlog ...`: one report from the histogram logs of several generators. */
import { Command } from 'commander';
import { InputError } from '../shared/errors.js';
import { percentileCurve } from '../load/histogram.js';
import { summarize } from '../load/summary.js';
import { evaluateThresholds, parseThreshold } from '../load/thresholds.js';
import { mergeHlogs } from '../report/hlog.js';
import { renderLoadHtml } from '../report/load-html.js';
import { renderLoadText } from '../report/load-text.js';
import { exitsWith, out, stdoutColors, readBinaryFile } from './io.js';
import { loadExitCode, writeReport } from './load-run.js';

interface MergeFlags {
  json?: boolean;
  html?: string;
  threshold: string[];
}

export function reportCommand(): Command {
  const report = new Command('report').description('work with the files load runs write').addHelpText('after', '\nExample:\n  authkit report merge gen-0.hlog gen-1.hlog --html merged.html');
  report
    .command('merge')
    .description('merge the --hdr-log files of several load generators into one report (a run spread over many machines)')
    .argument('<hlog...>', 'histogram logs written by --load --hdr-log')
    .option('--json', 'print the merged summary as JSON (the --load --json fields)')
    .option('--html <file>', 'write the merged report as a self-contained HTML page')
    .option('--threshold <cond>', "as in --load, judged on the merged figures (exit 3 when one is breached)", (v: string, all: string[]) => [...all, v], [] as string[])
    .addHelpText('after', '\nExample:\n  authkit report merge gen-0.hlog gen-1.hlog gen-2.hlog --html merged.html --threshold \'p99<20ms\'')
    .action(exitsWith(merge));
  return report;
}

async function merge(files: string[], flags: MergeFlags): Promise<number> {
  const thresholds = flags.threshold.map(parseThreshold);
  const logs = files.map((name) => {
    return { name, text: readBinaryFile(name, 'log').toString('utf8') };
  });
  // The same log twice (the same file, or a copy) would count one generator's requests twice.
  const seen = new Map<string, string>();
  for (const log of logs) {
    const earlier = seen.get(log.text);
    if (earlier !== undefined) throw new InputError(`${log.name}: the same log as ${earlier}: each generator's log may be merged once`);
    seen.set(log.text, log.name);
  }
  const merged = mergeHlogs(logs);
  const summary = summarize(merged.result);
  const outcomes = evaluateThresholds(thresholds, summary);
  const title = `authkit report merge: ${files.length} generator log${files.length === 1 ? '' : 's'}`;
  if (flags.html) {
    const curve = percentileCurve(summary.model === 'open' ? merged.result.response : merged.result.service);
    writeReport(flags.html, '--html', renderLoadHtml({ title, summary, rows: merged.rows, curve, thresholds: outcomes, generatedAt: new Date() }));
  }
  if (flags.json) out(JSON.stringify({ ...summary, files: files.length, thresholds: outcomes }));
  else out(renderLoadText(summary, outcomes, stdoutColors(), title));
  return loadExitCode(summary, outcomes);
}
