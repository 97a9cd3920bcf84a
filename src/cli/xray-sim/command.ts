/** `authkit xray-sim`: play the proxy's side of ExtAuth / Hysteria 2 auth against a backend. */
import { conformanceOptions, secretOptions } from '../options.js';
import { Command, Option } from 'commander';
import { InputError } from '../../shared/errors.js';
import { EVENT_TYPES } from '../../xray/wire/dialect.js';
import { DIALECTS } from '../../xray/wire/dialects/index.js';
import { sendEvent } from '../../xray/client.js';
import { CONFORMANCE_FLAGS } from '../conformance.js';
import { EXIT_FAILED, EXIT_OK, exitsWith, integerOption, log, out, secondsOption, timeParser } from '../io.js';
import { addLoadOptions, LOAD_FLAGS } from '../load.js';
import { withModes, type ModeTable } from '../modes.js';
import { xrayLoad } from './load.js';
import { connectionFacts, prepareEvent, type SimFlags } from './options.js';
import { exchangeJson, renderExchange, secretsOf } from './one-shot.js';
import { simulateSessions } from './session.js';
import { REPLAY_FLAGS, REPLAY_SETS, replayOptions, type ReplayFlags } from '../replay-run.js';

const only = (...modes: string[]): string[] => modes;
const FACTS = only('one-shot', 'session', 'load');

/** Which flag belongs to which mode (a flag outside its mode is exit 2). */
export const XRAY_SIM_MODES: ModeTable = {
  modes: [
    { name: 'replay-load', switches: ['replay', 'load'], together: true },
    { name: 'replay', switches: ['replay'] },
    { name: 'conformance', switches: ['conformance', 'list'] },
    { name: 'load', switches: ['load'] },
    { name: 'session', switches: ['session'] },
    { name: 'one-shot', switches: [] },
  ],
  flags: {
    ...Object.fromEntries(['--url', '--unix-socket', '--cacert', '--insecure', '--header', '--secret-env', '--secret-file', '--secret', '--timeout', '--kick-on-deny', '--no-kick-on-deny', '--json'].map((f) => [f, 'all'])),
    // A replay uses the recording's dialect.
    '--dialect': only('conformance', 'load', 'session', 'one-shot'),
    '--show-secrets': only('one-shot', 'replay'),
    ...Object.fromEntries(REPLAY_FLAGS.map((f) => [f, only('replay', 'replay-load')])),
    ...Object.fromEntries(['--credential', '--source-ip', '--source-port', '--local-ip', '--local-port', '--inbound-tag', '--email', '--level', '--tx'].map((f) => [f, FACTS])),
    '--event': only('one-shot', 'load'),
    '--session': only('session'), '--connections': only('session'), '--ips': only('session'), '--stagger': only('session'),
    '--heartbeat': only('session', 'load'), '--ttl': only('session', 'load'),
    ...Object.fromEntries([...CONFORMANCE_FLAGS, '--burst'].map((f) => [f, only('conformance')])),
    '--junit': only('conformance', 'replay'),
    ...Object.fromEntries([...LOAD_FLAGS, '--arrival', '--sessions', '--mean-duration', '--users', '--ips-per-user'].map((f) => [f, only('load')])),
    // A replay through the load engine: the recording sets the arrivals (no rate, concurrency, stages or count).
    ...Object.fromEntries(LOAD_FLAGS.filter((f) => !REPLAY_SETS.includes(f)).map((f) => [f, only('load', 'replay-load')])),
    '--duration': only('session', 'load', 'replay-load'),
  },
};

export function xraySimCommand(): Command {
  return withModes(addLoadOptions(conformanceOptions(replayOptions(secretOptions(new Command('xray-sim')
    .description('play Xray\'s VLESS inbound (ExtAuth) or Hysteria 2 against an auth backend and show what the proxy decides')
    .option('--url <url>', 'the backend URL the proxy POSTs to')
    .option('--unix-socket <path>', 'connect to the backend over this Unix socket (the URL still names host and path)')
    .option('--cacert <file>', 'https: trust this CA (PEM) for the backend\'s certificate instead of the system roots')
    .option('--insecure', 'https: do not verify the backend\'s certificate (a self-signed test backend; Xray itself always verifies)')
    .option('--dialect <name>', `field names and reply rules: ${Object.keys(DIALECTS).join(', ')}`, 'wiki')
    .addOption(new Option('--event <type>', 'the event to send').choices([...EVENT_TYPES]).default('authorization'))
    .option('--credential <uuid>', 'the VLESS UUID (or Xray text id; for hysteria2 the auth string)')
    .option('--source-ip <ip>', 'client address the proxy reports', '198.51.100.10')
    .option('--source-port <port>', 'client port (default random)', integerOption(0, 65535))
    .option('--local-ip <ip>', 'the inbound\'s local address', '10.0.0.1')
    .option('--local-port <port>', 'the inbound\'s local port', integerOption(0, 65535), 443)
    .option('--inbound-tag <tag>', 'the inbound\'s tag')
    .option('--email <email>', 'wiki dialect: the email hint (a backend must not trust it)')
    .option('--level <n>', 'wiki dialect: the level hint', integerOption(0, 0xffffffff))
    .option('--tx <bytes-per-second>', 'hysteria2: the client\'s declared receive rate (uint64, 0 = unknown)', '0')
    .option('--header <header>', "a custom header 'K: V' (repeatable; wiki dialect)", (value: string, all: string[]) => [...all, value], [] as string[]), 'secret', 'the secret, sent as Authorization: Bearer')
    .option('--timeout <seconds>', 'the proxy\'s timeout in seconds over the whole exchange (redirects and body included); 0 = none, which is Xray\'s default, but a hung backend would then hang this run, so authkit defaults to 5 (hysteria2: its fixed 10); a duration like 500ms, or seconds', timeParser('s', 0, 3600))
    .option('--kick-on-deny', 'a 401/403 on a heartbeat ends the connection (default on for wiki)')
    .option('--no-kick-on-deny', 'a 401/403 on a heartbeat only deletes the cache entry (the archived code)')
    .option('--json', 'print {"verdict","class","status","user","latencyMs","request","warnings"}')
    .option('--show-secrets', 'print the credential, the secret and credential headers in clear (masked by default)')
    .option('--session', 'run whole connections (authorization, connect, heartbeats, disconnect) and print the timeline')
    .option('--heartbeat <seconds>', '--session: heartbeat interval, 0 = none (default 1); --load event mix: default 30', secondsOption)
    .option('--duration <duration>', '--session: how long each connection lives, seconds (default 3); --load: how long to measure (default 10s)')
    .option('--ttl <seconds>', '--session: the proxy\'s positive cache lifetime (0 = no cache, Xray\'s default)', secondsOption, 0)
    .option('--connections <n>', '--session: connections for the credential', integerOption(1, 1000), 1)
    .option('--ips <k>', '--session: source IPs they come from (counting up from --source-ip)', integerOption(1, 1000), 1)
    .option('--stagger <seconds>', '--session: time between connection starts', secondsOption, 0.2), 'xray-tap', '--url'), {
      suite: 'the conformance suite (ExtAuth X01-X31, or Hysteria 2 H01-H14) against the backend',
      fixture: 'JSON naming allowed and denied credentials, limits and a revoke hook',
      example: 'X01,X07',
    })
    .option('--burst <n>', '--conformance: parallel requests in the burst checks', integerOption(1, 5000), 200)
    .option('--arrival <r>', '--load event mix: new connections per second')
    .option('--sessions <n>', '--load event mix: connections live at the start (default arrival x mean duration)')
    .option('--mean-duration <seconds>', '--load event mix: mean connection lifetime (exponential; default 60)')
    .option('--users <file>', '--load: spread the requests over the credentials of this users file (JSON, as xray-backend reads)')
    .option('--ips-per-user <k>', '--load: source IPs per user, counting up from --source-ip (default 1)'), { hasDuration: true })
    .addHelpText('after', '\nExamples:\n  authkit xray-sim --url http://127.0.0.1:8080/auth --conformance --fixture fixture.json --junit report.xml\n  authkit xray-sim --url http://127.0.0.1:8080/auth --replay auth.jsonl --speed 10 --junit replay.xml\n  authkit xray-sim --url http://127.0.0.1:8080/auth --credential 550e8400-e29b-41d4-a716-446655440000\n  authkit xray-sim --url http://127.0.0.1:8080/auth --credential 550e8400-e29b-41d4-a716-446655440000 --session --connections 4 --ips 2\n  authkit xray-sim --url http://127.0.0.1:8080/auth --credential 550e8400-e29b-41d4-a716-446655440000 --load --rate 2000 --duration 30s --threshold \'p99<20ms\'\n  authkit xray-sim --url http://127.0.0.1:8080/auth --users users.json --load --arrival 50 --mean-duration 120 --heartbeat 30 --ttl 60 --duration 60s')
    .action(exitsWith(xraySim)), XRAY_SIM_MODES);
}

async function xraySim(flags: SimFlags & ReplayFlags): Promise<number> {
  if (flags.replay !== undefined) return flags.load ? (await import('./replay.js')).runXrayReplayLoad(flags) : (await import('./replay.js')).runXrayReplay(flags);
  // The suite (undici, ajv) loads only for --conformance: a load run starts without it.
  if (flags.conformance || flags.list) return (await import('./conformance.js')).runConformance(flags);
  const prepared = prepareEvent(flags);
  const { facts, notes } = connectionFacts(flags, prepared.dialect);
  // The one-shot mode sends the event it is given: the dialect must have it (the other modes send a lifecycle).
  if (!flags.load && !flags.session && !prepared.dialect.events.includes(flags.event)) {
    throw new InputError(`the ${prepared.dialect.name} dialect has no ${flags.event} event (it has ${prepared.dialect.events.join(', ')})`);
  }
  [...prepared.notes, ...notes].forEach((n) => log(`note: ${n}`));
  if (flags.load) return xrayLoad(flags, prepared, facts);
  if (flags.session) return simulateSessions(flags, prepared, facts);
  const exchange = await sendEvent({ ...prepared, type: flags.event, facts, unixSocket: flags.unixSocket });
  const custom = prepared.headers.map(([name]) => name);
  const secrets = secretsOf(facts.credential, prepared);
  const shown = flags.showSecrets ? { custom: [], secrets: [], credential: '' } : { custom, secrets, credential: facts.credential };
  if (flags.json) out(JSON.stringify(exchangeJson(exchange, shown.credential, shown.custom, shown.secrets, flags.showSecrets)));
  else out(renderExchange(exchange, prepared.dialect, flags.event, shown.credential, shown.custom, shown.secrets, flags.showSecrets));
  return exchange.verdict.class === 'allow' ? EXIT_OK : EXIT_FAILED;
}

