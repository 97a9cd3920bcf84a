/** xray-sim --replay: an xray-tap recording sent to a backend, each new verdict set beside the recorded one. */
import { readRecording } from '../../tap/recording.js';
import { checkXrayReplayable, xrayReplayTarget } from '../../xray/replay.js';
import type { XrayRecord } from '../../xray/tap/record.js';
import { GoTransport } from '../../xray/transport.js';
import { parseSpeed } from '../../tap/replay.js';
import { runReplay, type ReplayFlags } from '../replay-run.js';
import { prepareEvent, type SimFlags } from './options.js';

export type { ReplayFlags };

export async function runXrayReplay(flags: SimFlags & ReplayFlags): Promise<number> {
  const file = flags.replay!;
  parseSpeed(flags.speed);
  // The URL, TLS trust, secret and headers as every mode reads them; the dialect is the recording's.
  const prepared = prepareEvent(flags);
  const records = readRecording<XrayRecord>(file, 'xray');
  checkXrayReplayable(records, file);
  const transport = new GoTransport({ unixSocket: flags.unixSocket, tls: prepared.tls });
  try {
    return await runReplay(flags, records, xrayReplayTarget({
      url: prepared.url, unixSocket: flags.unixSocket, transport, secret: prepared.secret,
      headers: prepared.headers.length > 0 ? prepared.headers : undefined,
      timeoutSeconds: flags.timeout, kickOnDeny: flags.kickOnDeny, showSecrets: flags.showSecrets === true,
    }), 'xray-sim replay');
  } finally {
    transport.close();
  }
}
