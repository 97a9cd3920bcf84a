/** xray-sim --conformance: the ExtAuth or Hysteria 2 suite against a backend. */
import { dialectNamed } from '../../xray/wire/dialects/index.js';
import { GoTransport } from '../../xray/transport.js';
import { parseGoUrl } from '../../xray/wire/go-url.js';
import { redactUrl } from '../../xray/redact.js';
import { parseOnly } from '../../conformance/runner.js';
import { listSuite, reachOrFail, runSuiteCli } from '../conformance.js';
import { fixtureCapabilities, loadFixture } from '../../xray/suite/fixture.js';
import { extAuthSuite, inapplicableWithout, targetCapabilities } from '../../xray/suite/extauth.js';
import { hysteriaSuite } from '../../xray/suite/hysteria.js';
import type { XraySuiteContext } from '../../xray/suite/context.js';
import { log } from '../io.js';
import { prepareEvent, type SimFlags } from './options.js';

export async function runConformance(flags: SimFlags): Promise<number> {
  const dialect = dialectNamed(flags.dialect);
  const suite = dialect.reply === 'hysteria-ok' ? hysteriaSuite : extAuthSuite;
  if (flags.list) return listSuite(suite);
  if (flags.only !== undefined) parseOnly(flags.only, suite);
  const prepared = prepareEvent(flags);
  prepared.notes.forEach((n) => log(`note: ${n}`));
  const fixture = flags.fixture === undefined ? undefined : loadFixture(flags.fixture, dialect.reply === 'extauth-user');
  if (!fixture) log('note: no --fixture: the checks that need known credentials are skipped, and the run cannot pass (--allow-skips to accept that)');
  const url = parseGoUrl(prepared.url);
  const unreachable = await reachOrFail(redactUrl(prepared.url), flags.unixSocket ? { path: flags.unixSocket } : { host: url.hostname, port: url.port });
  if (unreachable !== undefined) return unreachable;
  const transport = new GoTransport({ unixSocket: flags.unixSocket, tls: prepared.tls });
  const ctx: XraySuiteContext = { target: prepared, fixture, transport, burst: flags.burst };
  // The longest checks send 50 requests one after another, each allowed the proxy's timeout.
  const timeoutMs = prepared.timeoutSeconds > 0 ? (55 * prepared.timeoutSeconds + 10) * 1000 : 120_000;
  return runSuiteCli(suite, ctx, flags, {
    has: new Set([...fixtureCapabilities(fixture), ...targetCapabilities(ctx)]), timeoutMs,
    inapplicable: inapplicableWithout,
    // A request a timed-out check left behind must not hold the report back.
    cleanup: async () => transport.close(),
  });
}
