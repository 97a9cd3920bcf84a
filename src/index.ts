/**
 * authkit as a library: the entry points a program needs to play each proxy against a backend,
 * simulate each backend, run the conformance suites and the load engine. Everything else
 * (codec internals, CLI helpers) stays inside; the README's "Using it as a library" lists these.
 */
export { InputError, DecodeError } from './shared/errors.js';

// Snell: what a client sends, which user a server's trial authentication finds, a live probe, a server.
export { buildFirstPacket, type FirstPacket, type FirstPacketOptions, type SnellVersion } from './snell/wire/first-packet.js';
export { sealFrame, openFrame, type OpenedFrame } from './snell/wire/frame.js';
export { encodeRequest, decodeRequest, type SnellRequest } from './snell/wire/request.js';
export { decodeReply, type ServerReply } from './snell/wire/reply.js';
export { wrapObfs, stripObfs, type ObfsMode } from './snell/wire/obfs.js';
export { parseUsers, loadUsersFile } from './snell/users.js';
export type { SnellUser } from './snell/user-store.js';
export { TrialAuthenticator, trialAuthenticate, type TrialOutcome, type TrialOptions } from './snell/model.js';
export { authenticateCapture, capturesFromPcap, type Capture } from './snell/captures.js';
export { probeSnell } from './snell/client.js';
export type { ProbeOptions, ProbeResult } from './snell/client/probe-types.js';
export { startSnellServer, type SnellServer, type SnellServerOptions } from './snell/server/server.js';

// Xray ExtAuth and Hysteria 2 HTTP auth: one event or whole connections as the proxy sends them, and a backend.
export { DIALECTS, dialectNamed } from './xray/wire/dialects/index.js';
export type { Dialect, EventType, ConnectionFacts } from './xray/wire/dialect.js';
export { sendEvent, type EventRequest, type EventExchange } from './xray/client.js';
export type { Verdict, VerdictClass } from './xray/contract.js';
export { runSessions, type SessionOptions, type SessionReport } from './xray/session.js';
export { startXrayBackend, type XrayBackend, type XrayBackendOptions } from './xray/server/server.js';

// Proksi external_auth over Cap'n Proto RPC: the call as Proksi makes it, what Proksi does with the answer, a service.
export { AuthServiceClient, CallError } from './capnp/client.js';
export { buildAuthRequest, proksiOutcome, PROKSI_DEFAULTS, type ClientRequest, type ProksiOptions } from './capnp/model.js';
export type { AuthRequest, AuthDecision } from './capnp/wire/schema.js';
export { startAuthServer } from './capnp/server/server.js';

// The conformance suites, their runner and reports.
export { extAuthSuite } from './xray/suite/extauth.js';
export { hysteriaSuite } from './xray/suite/hysteria.js';
export { capnpSuite } from './capnp/suite/suite.js';
export { runSuite, type SuiteReport, type CheckResult } from './conformance/runner.js';
export type { Check, Suite } from './conformance/check.js';
export { renderText } from './report/text.js';
export { renderJson } from './report/json.js';
export { renderJunit } from './report/junit.js';

// The load engine: any protocol that implements LoadTarget.
export { runLoad } from './load/engine.js';
export type { LoadOptions, LoadResult } from './load/run-types.js';
export type { LoadTarget, ArrivalSource } from './load/target.js';
export { summarize, type LoadSummary } from './load/summary.js';
