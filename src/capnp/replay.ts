/**
 * A capnp-tap recording sent again: each recorded AuthRequest as Proksi sent it, through
 * capnp-check's own client, on one connection (a new one if the service drops it), with the
 * decision compared in capnp-tap's words (`pass "user=1"`, `block 403`, `timeout`...).
 */
import { InputError } from '../shared/errors.js';
import { isSecretHeader } from '../shared/redact.js';
import type { ReplayTarget } from '../tap/replay.js';
import { checkFields, lineOf } from '../tap/recording.js';
import { AuthServiceClient, CallError } from './client.js';
import { capnpVerdict, type CapnpRecord } from './tap/record.js';

/**
 * Refuses what cannot be replayed faithfully: a masked credential header or query (recorded
 * without --record-secrets; a request without them replays as it is), a line that is not a check.
 */
export function checkCapnpReplayable(records: readonly CapnpRecord[], file: string): void {
  for (const record of records) {
    checkFields(record, file, [
      ['request', 'object'], ['request.method', 'string'], ['request.host', 'string'], ['request.path', 'string'], ['request.query', 'string'],
      ['request.clientIp', 'string'], ['request.headers', 'headers'], ['verdict', 'string'], ['decision', 'object?'], ['error', 'object?'],
    ]);
    const { headers } = record.request;
    // A masked value ends in <redacted> (shared/redact.ts), whichever header it was.
    const masked = record.secrets ? undefined : headers.find((h) => isSecretHeader(h.name) || h.value.endsWith('<redacted>'))?.name ?? (record.request.query.includes('=') ? 'query' : undefined);
    if (masked) {
      const what = masked === 'query' ? 'its query is masked' : `its ${masked} header is masked`;
      throw new InputError(`${file}:${lineOf(record)}: recorded without --record-secrets: ${what} and the service decides on it, so it cannot be replayed (record again with capnp-tap --record-secrets)`);
    }
  }
}

export function capnpReplayTarget(socket: string, timeoutMs: number): ReplayTarget<CapnpRecord> & { close(): void } {
  let connection: Promise<AuthServiceClient> | undefined;
  const connected = (): Promise<AuthServiceClient> => (connection ??= AuthServiceClient.connect(socket, timeoutMs));
  return {
    recorded: (record) => record.verdict,
    describe: (record) => `${record.request.method} ${record.request.host}${record.request.path} from ${record.request.clientIp}`,
    async send(record) {
      try {
        const client = await connected();
        const { decision } = await client.check(record.request, { timeoutMs });
        return { verdict: capnpVerdict(decision, undefined) };
      } catch (error) {
        if (!(error instanceof CallError)) throw error;
        // The next call gets a new connection: one dropped connection is not every later verdict.
        if (error.kind === 'disconnected' || error.kind === 'connect') connection = undefined;
        return { verdict: capnpVerdict(undefined, error), detail: error.message };
      }
    },
    close() {
      void connection?.then((c) => c.close(), () => undefined);
    },
  };
}
