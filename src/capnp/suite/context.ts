/**
 * What every check of the Proksi external_auth suite shares: the service as Proksi is configured
 * to call it, the fixture, what the run has seen so far, and calls made the way Proksi makes them
 * (docs/proksi-external-auth.md §3: a first call pipelined on the bootstrap of a fresh connection).
 */
import type { CheckTools } from '../../conformance/check.js';
import { AuthServiceClient } from '../client.js';
import { buildAuthRequest, clientRequest, type ClientRequest, type ProksiOptions } from '../model.js';
import type { AuthDecision } from '../wire/schema.js';
import type { CapnpFixture } from './fixture.js';

export interface CapnpSuiteContext {
  socket: string;
  options: ProksiOptions;
  fixture?: CapnpFixture;
  /** Every reply's latency in the run, for C07. */
  latencies: number[];
  /** Every decision seen, for C05. */
  decisions: AuthDecision[];
}

/** An HTTP/1.1 request for / with only its Host header. */
export const BASE: ClientRequest = clientRequest({});

/** One call on its own connection, as Proksi's first request after a (re)connect. */
export async function call(ctx: CapnpSuiteContext, client: ClientRequest, options: { interfaceId?: bigint; methodId?: number } = {}): Promise<AuthDecision> {
  const connection = await AuthServiceClient.connect(ctx.socket, ctx.options.timeoutMs);
  try {
    const { decision, latencyMs } = await connection.check(buildAuthRequest(client, ctx.options).request, { timeoutMs: ctx.options.timeoutMs * 5, ...options });
    ctx.latencies.push(latencyMs);
    ctx.decisions.push(decision);
    return decision;
  } finally {
    connection.close();
  }
}

/** Calls each fixture request; fails at the first decision `accepts` refuses, saying what was expected. */
export async function expectEach(
  ctx: CapnpSuiteContext, t: CheckTools, requests: ClientRequest[], expected: string, accepts: (decision: AuthDecision, request: ClientRequest) => boolean,
): Promise<ReturnType<CheckTools['fail']> | undefined> {
  for (const request of requests) {
    const decision = await call(ctx, request);
    if (!accepts(decision, request)) return t.fail(`${request.method} ${request.path}: got ${decision.action} ${decision.statusCode}`, { received: decision, expected });
  }
  return undefined;
}
