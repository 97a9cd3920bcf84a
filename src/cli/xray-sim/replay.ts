/** xray-sim --replay: an xray-tap recording sent to a backend, each new verdict set beside the recorded one. */
import { writeFileSync } from 'node:fs';
import { readRecording } from '../../tap/recording.js';
import { parseSpeed, replay, replayJunit, replayText } from '../../tap/replay.js';
import { checkXrayReplayable, xrayReplayTarget } from '../../xray/replay.js';
import type { XrayRecord } from '../../xray/tap/record.js';
import { GoTransport } from '../../xray/transport.js';
import { openForWrite } from '../../shared/files.js';
import { EXIT_FAILED, EXIT_OK, log, out } from '../io.js';
import { prepareEvent, type SimFlags } from './options.js';

export interface ReplayFlags {
  replay?: string;
  speed: string;
  allowChanges?: boolean;
}

export async function runXrayReplay(flags: SimFlags & ReplayFlags): Promise<number> {
  const file = flags.replay!;
  const speed = parseSpeed(flags.speed);
  // The URL, TLS trust, secret and headers as every mode reads them; the dialect is the recording's.
  const prepared = prepareEvent(flags);
  const records = readRecording<XrayRecord>(file, 'xray');
  checkXrayReplayable(records, file);
  // The JUnit file is opened before the run: a path that cannot be written fails now, not after it.
  const junitFd = flags.junit === undefined ? undefined : openForWrite(flags.junit, '--junit');
  const transport = new GoTransport({ unixSocket: flags.unixSocket, tls: prepared.tls });
  let report;
  try {
    report = await replay(records, xrayReplayTarget({
      url: prepared.url, unixSocket: flags.unixSocket, transport, secret: prepared.secret,
      headers: prepared.headers.length > 0 ? prepared.headers : undefined,
      timeoutSeconds: flags.timeout, kickOnDeny: flags.kickOnDeny, showSecrets: flags.showSecrets === true,
    }), speed);
  } finally {
    transport.close();
  }
  if (junitFd !== undefined) writeFileSync(junitFd, `${replayJunit(report, 'xray-sim replay')}\n`);
  if (flags.json) out(JSON.stringify(report));
  else out(replayText(report, file));
  if (report.changed > 0 && flags.allowChanges) log(`note: ${report.changed} verdicts changed; --allow-changes: exit 0`);
  return report.changed === 0 || flags.allowChanges ? EXIT_OK : EXIT_FAILED;
}
