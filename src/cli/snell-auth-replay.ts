/** `authkit snell-auth --replay`: a snell-serve recording matched again under a new users file. */
import { isIP } from 'node:net';
import type { TrialAuthenticator } from '../snell/model.js';
import type { SnellRecord } from '../snell/record.js';
import { InputError } from '../shared/errors.js';
import type { ReadLimits } from '../shared/files.js';
import { checkFields, lineOf, readRecording } from '../tap/recording.js';
import { replay, replayText, type ReplayTarget } from '../tap/replay.js';
import { EXIT_FAILED, EXIT_OK, out } from './io.js';

/**
 * snell-auth --replay: each connection snell-serve recorded, matched again under --users, in the
 * recorded order through one IP cache as the server had it; a connection whose user changes
 * (another user, or none) is listed. The question before rotating PSKs or editing the file.
 */
export async function replaySnell(options: { json?: boolean; limits: ReadLimits }, file: string, starting: Promise<TrialAuthenticator>): Promise<number> {
  let records: SnellRecord[];
  try {
    records = readRecording<SnellRecord>(file, 'snell', options.limits);
    for (const record of records) {
      checkFields(record, file, [['source', 'string'], ['user', 'string?'], ['firstBytes', 'string']]);
      if (!/^([0-9a-f]{2})+$/i.test(record.firstBytes)) throw new InputError(`${file}:${lineOf(record)}: "firstBytes" must be hex`);
    }
  } catch (error) {
    await starting.then((auth) => auth.close(), () => undefined);
    throw error;
  }
  const auth = await starting;
  const target: ReplayTarget<SnellRecord> = {
    recorded: (record) => record.user ?? 'no user',
    describe: (record) => record.source,
    async send(record) {
      const ip = record.source.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
      const outcome = await auth.authenticate(Buffer.from(record.firstBytes, 'hex'), isIP(ip) ? ip : undefined);
      return { verdict: outcome.ok ? outcome.user : 'no user', detail: outcome.ok ? `${outcome.path}, ${outcome.trials} trials` : `${outcome.reason}, ${outcome.trials} trials` };
    },
  };
  try {
    // No timing to keep: the question is who, not when.
    const report = await replay(records, target, Infinity);
    if (options.json) out(JSON.stringify(report));
    else out(replayText(report, file, 'connections'));
    return report.changed === 0 ? EXIT_OK : EXIT_FAILED;
  } finally {
    await auth.close();
  }
}
