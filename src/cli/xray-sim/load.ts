/** `xray-sim --load`: one event type at a rate or concurrency, or the event mix of a real node. */
import { InputError } from '../../shared/errors.js';
import { EVENT_TYPES, type ConnectionFacts } from '../../xray/wire/dialect.js';
import { credentialKind, loadXrayUsers } from '../../xray/server/users.js';
import { XrayLoadTarget } from '../../xray/load.js';
import { XrayEventMix } from '../../xray/load-mix.js';
import { connectionsFor, parseLoadFlags } from '../load.js';
import { runLoadCli } from '../load-run.js';
import { log, parseSeconds } from '../io.js';
import { redactUrl } from '../../xray/redact.js';
import type { PreparedEvent, SimFlags, XrayLoadFlags } from './options.js';

function whole(text: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || value < min || value > max) throw new InputError(`${flag}: expected a whole number from ${min} to ${max}, got "${text}"`);
  return value;
}

export async function xrayLoad(flags: SimFlags & XrayLoadFlags, prepared: PreparedEvent, base: ConnectionFacts): Promise<number> {
  const mix = flags.arrival !== undefined || flags.sessions !== undefined;
  if (mix && (flags.rate !== undefined || flags.concurrency !== undefined || flags.stages !== undefined)) {
    throw new InputError('--arrival/--sessions (the event mix) set the rate themselves: not with --rate, --concurrency or --stages');
  }
  if (mix && flags.requests !== undefined) throw new InputError('--requests: the event mix runs for --duration (its requests follow from the traffic model)');
  const arrivalRate = flags.arrival === undefined ? 0 : Number(flags.arrival);
  if (!(/^\s*(\d+(\.\d*)?|\.\d+)\s*$/.test(flags.arrival ?? '0') && arrivalRate <= 1_000_000)) throw new InputError(`--arrival: expected connections per second from 0 to 1000000, got "${flags.arrival}"`);
  // The mix runs on the open model; its arrival rate only labels the intervals.
  const parsed = parseLoadFlags(flags, mix ? Math.max(arrivalRate, 0.001) : undefined);
  const ipsPerUser = whole(flags.ipsPerUser, '--ips-per-user', 1, 65536) ?? 1;
  let credentials = [base.credential];
  if (flags.users !== undefined) {
    const { snapshot, warnings } = await loadXrayUsers(flags.users, credentialKind(prepared.dialect));
    warnings.forEach((w) => log(`note: ${w}`));
    if (snapshot.users.length === 0) throw new InputError(`--users ${flags.users}: no users`);
    credentials = snapshot.users.map((u) => u.credential);
  }
  const { connections, pipelining } = connectionsFor(parsed);
  const target = new XrayLoadTarget({
    url: prepared.url, unixSocket: flags.unixSocket, tls: prepared.tls, dialect: prepared.dialect, secret: prepared.secret, headers: prepared.headers,
    timeoutSeconds: prepared.timeoutSeconds, kickOnDeny: prepared.kickOnDeny, base, credentials, ipsPerUser, maxConnections: connections, pipelining,
  }, flags.event);
  const drainMs = prepared.timeoutSeconds > 0 ? prepared.timeoutSeconds * 1000 + 500 : 5000;
  const title = `xray-sim --load ${prepared.dialect.name} ${mix ? 'event mix' : flags.event}`;
  const settings: [string, string][] = [
    ['target', `${redactUrl(prepared.url)}${flags.unixSocket ? ` over unix:${flags.unixSocket}` : ''}, ${prepared.dialect.name} dialect`],
    ['timeout', prepared.timeoutSeconds > 0 ? `${prepared.timeoutSeconds} s` : 'none'],
  ];
  if (!mix) return runLoadCli({ title, target, parsed, flags, drainMs, settings });

  const meanDurationS = flags.meanDuration === undefined ? 60 : parseSeconds(flags.meanDuration, '--mean-duration', { min: 0.001 });
  const heartbeatS = flags.heartbeat ?? 30;
  const initialSessions = whole(flags.sessions, '--sessions', 0, 10_000_000) ?? Math.round(arrivalRate * meanDurationS);
  if (arrivalRate === 0 && initialSessions === 0) throw new InputError('the event mix needs --arrival R (connections per second) or --sessions N (live connections)');
  const source = new XrayEventMix({
    arrivalRate, initialSessions, meanDurationS, heartbeatS, ttlS: flags.ttl ?? 0, cache: prepared.dialect.cache, kickOnDeny: prepared.kickOnDeny,
    events: prepared.dialect.events, factsFor: (i) => target.factsFor(i),
  });
  const expected = source.expectedRates(credentials.length, ipsPerUser);
  const preamble = [
    `event mix: ${arrivalRate} connections/s, mean life ${meanDurationS} s, heartbeat ${heartbeatS} s, ttl ${flags.ttl ?? 0} s, ${initialSessions} live at start, ${credentials.length} users x ${ipsPerUser} IPs`,
    `expected requests/s once steady, if every connection is allowed: ${Object.entries(expected).filter(([type]) => prepared.dialect.events.includes(type as never)).map(([type, rate]) => `${type} ${rate.toFixed(1)}`).join(', ')}` +
      ` (heartbeats start from ${initialSessions} live connections, tending to ${Math.round(arrivalRate * meanDurationS)})`,
  ];
  return runLoadCli({ title, target, parsed, flags, drainMs, source, preamble, settings, kinds: EVENT_TYPES.filter((type) => prepared.dialect.events.includes(type)) });
}
