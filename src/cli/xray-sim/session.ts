/** xray-sim --session: whole connections as Xray runs them, printed as a timeline. */
import { type ConnectionFacts } from '../../xray/wire/dialect.js';
import { runSessions, type TimelineEntry } from '../../xray/session.js';
import { countUpAddresses } from '../../shared/ip.js';
import { EXIT_FAILED, EXIT_OK, log, out, parseSeconds, stdoutColors } from '../io.js';
import { type PreparedEvent, type SimFlags } from './options.js';

export async function simulateSessions(flags: SimFlags, prepared: PreparedEvent, facts: ConnectionFacts): Promise<number> {
  if (!prepared.dialect.cache && flags.ttl > 0) log(`note: ${prepared.dialect.name} has no cache: every connection is authorized, --ttl is not used`);
  const sourceIps = countUpAddresses(flags.sourceIp, flags.ips);
  const c = stdoutColors();
  const line = (entry: TimelineEntry): string => {
    const at = `+${(entry.atMs / 1000).toFixed(3)}s`.padStart(9);
    const who = `conn ${entry.connection}`.padEnd(8);
    const ip = entry.sourceIp.padEnd(16);
    if (!entry.exchange) return `${at}  ${who} ${ip} ${c.yellow(entry.event.padEnd(13))} ${entry.note ?? ''}`;
    const v = entry.exchange.verdict;
    const paint = v.class === 'allow' ? c.green : v.verdict === 'ignored' ? c.yellow : c.red;
    const status = entry.exchange.reply ? String(entry.exchange.reply.status) : '---';
    return `${at}  ${who} ${ip} ${entry.event.padEnd(13)} ${status} ${paint(v.class.padEnd(14))} ${entry.exchange.latencyMs} ms${v.verdict === 'deny' ? `  ${v.effect}` : ''}`;
  };
  const report = await runSessions({
    ...prepared, unixSocket: flags.unixSocket, facts, sourceIps, connections: flags.connections, staggerSeconds: flags.stagger,
    heartbeatSeconds: flags.heartbeat ?? 1, durationSeconds: parseSeconds(flags.duration ?? '3', '--duration'), ttlSeconds: flags.ttl,
    onEvent: flags.json ? undefined : (entry) => out(line(entry)),
  });
  const summary = `${report.admitted} of ${flags.connections} connections admitted and never denied; ` +
    `authorization ${report.counts.authorization}, cache hits ${report.counts['cache-hit']}, connect ${report.counts.connect}, ` +
    `heartbeat ${report.counts.heartbeat}, disconnect ${report.counts.disconnect}, refused ${report.counts.refused}, kicked ${report.counts.kicked}`;
  if (flags.json) {
    const timeline = report.timeline.map((e) => ({
      atMs: e.atMs, connection: e.connection, sourceIp: e.sourceIp, event: e.event, note: e.note ?? null,
      status: e.exchange?.reply?.status ?? null, verdict: e.exchange?.verdict.verdict ?? null, class: e.exchange?.verdict.class ?? null,
      latencyMs: e.exchange?.latencyMs ?? null,
    }));
    out(JSON.stringify({ timeline, counts: report.counts, admitted: report.admitted, denied: report.denied }));
    log(summary);
  } else {
    out(summary);
  }
  return report.denied === 0 ? EXIT_OK : EXIT_FAILED;
}

