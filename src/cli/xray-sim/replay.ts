/** xray-sim --replay: an xray-tap recording sent to a backend, each new verdict set beside the recorded one. */
import { readRecording } from '../../tap/recording.js';
import { checkXrayReplayable, recordedHeaders, xrayReplayTarget } from '../../xray/replay.js';
import type { XrayRecord } from '../../xray/tap/record.js';
import { GoTransport } from '../../xray/transport.js';
import { parseSpeed, ReplayArrivals } from '../../tap/replay.js';
import { lineOf } from '../../tap/recording.js';
import { InputError } from '../../shared/errors.js';
import { dialectNamed } from '../../xray/wire/dialects/index.js';
import { BadEventError, parseEventBody, type ConnectionFacts } from '../../xray/wire/dialect.js';
import { XrayLoadTarget, type XrayOp } from '../../xray/load.js';
import { maskCredential, redactUrl } from '../../xray/redact.js';
import { connectionsFor } from '../load.js';
import { runLoadCli } from '../load-run.js';
import { finishReplayLoad, replayLoadFlags, runReplay, type ReplayFlags } from '../replay-run.js';
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

/**
 * --replay FILE --load: the recording as the load engine's arrivals, with every load option
 * (thresholds, reports, metrics); each request's class compared with the recorded one. The run
 * lasts the recording at --speed unless --duration cuts it. Exit 3 on a breached threshold, else
 * 1 on a changed class (unless --allow-changes), else 0.
 */
export async function runXrayReplayLoad(flags: SimFlags & ReplayFlags): Promise<number> {
  const file = flags.replay!;
  const speed = parseSpeed(flags.speed);
  const prepared = prepareEvent(flags);
  const records = readRecording<XrayRecord>(file, 'xray');
  checkXrayReplayable(records, file);
  const dialects = new Set(records.map((r) => r.dialect));
  if (dialects.size > 1) throw new InputError(`${file}: a load run sends one dialect, and this recording has ${[...dialects].join(' and ')}`);
  const dialect = dialectNamed(records[0]!.dialect);
  const ops = records.map((record) => {
    try {
      const parsed = parseEventBody(dialect, record.request.body);
      return { type: parsed.type, facts: { ...EMPTY_FACTS, ...parsed.facts } };
    } catch (error) {
      throw new InputError(`${file}:${lineOf(record)}: ${error instanceof BadEventError ? `not a ${dialect.name} event: ${error.message}` : (error as Error).message}`);
    }
  });
  const opOf = new Map(records.map((record, i) => [record, ops[i]!]));
  const source = new ReplayArrivals<XrayRecord, XrayOp>(records, speed, (record) => ({ ...opOf.get(record)!, facts: { ...opOf.get(record)!.facts } }), {
    recordedClass: (record) => record.class,
    describe: (record) => `${record.event ?? 'not-an-event'} ${record.credential === null ? '' : maskCredential(record.credential)}`.trim(),
  });
  // The recording sets the arrivals: its mean rate labels the intervals, its span is the run.
  const parsed = replayLoadFlags(flags, source, records.length);
  // The proxy's secret and headers now, or as recorded (the first exchange's: one proxy's config).
  const secret = prepared.secret ?? records[0]!.request.headers.find(([n]) => n.toLowerCase() === 'authorization')?.[1].replace(/^Bearer\s+/i, '');
  const headers = prepared.headers.length > 0 ? prepared.headers : recordedHeaders(records[0]!);
  const timeoutSeconds = flags.timeout ?? dialect.timeout.default;
  const { connections, pipelining } = connectionsFor(parsed);
  const target = new XrayLoadTarget({
    url: prepared.url, unixSocket: flags.unixSocket, tls: prepared.tls, dialect, secret, headers,
    timeoutSeconds, kickOnDeny: flags.kickOnDeny ?? dialect.kickOnDenyDefault, base: ops[0]!.facts, credentials: [ops[0]!.facts.credential], ipsPerUser: 1,
    maxConnections: connections, pipelining,
  });
  const started = performance.now();
  const code = await runLoadCli({
    title: `xray-sim --replay ${file} --load`, target, parsed, flags, source, drainMs: timeoutSeconds > 0 ? timeoutSeconds * 1000 + 500 : 5000,
    kinds: dialect.events, settings: [['recording', `${file}, ${records.length} exchanges at ${speed}x`], ['target', `${redactUrl(prepared.url)}, ${dialect.name} dialect`]],
  });
  return finishReplayLoad(source, code, flags, file, 'exchanges', Math.round(performance.now() - started));
}

const EMPTY_FACTS: ConnectionFacts = { credential: '', connectionId: '', protocol: '', sourceIp: '', sourcePort: 0, localIp: '', localPort: 0 };
