/** authkit as a library: the Snell codecs and trial authentication, usable without the CLI. */
export { InputError, DecodeError } from './shared/errors.js';
export { selectKdf, availableKdfs, deriveSnellKey, parseKdfChoice, type KdfBackend, type KdfBackendName, type KdfChoice } from './snell/wire/kdf.js';
export { seal, open, aeadKey, counterNonce, AeadDirection, type AeadName } from './snell/wire/aead.js';
export { sealFrame, openFrame, encodeFrameHeader, decodeFrameHeader, swapPadding, type FrameHeader, type OpenedFrame } from './snell/wire/frame.js';
export { sealLegacyChunk, openLegacyChunk, legacyAead } from './snell/wire/legacy.js';
export { encodeRequest, decodeRequest, COMMANDS, type SnellRequest, type SnellCommand } from './snell/wire/request.js';
export { encodeReply, decodeReply, type ServerReply } from './snell/wire/reply.js';
export { encodeClientDatagram, decodeClientDatagram, encodeServerDatagram, decodeServerDatagram, type UdpDatagram } from './snell/wire/udp.js';
export { sealQuicEnvelope, openQuicEnvelope, quicSafeSalt, type QuicEnvelope } from './snell/wire/quic.js';
export { wrapObfs, stripObfs, wrapHttp, stripHttp, wrapTls, stripTls, type ObfsMode } from './snell/wire/obfs.js';
export { buildFirstPacket, buildQuicPacket, type FirstPacket, type FirstPacketOptions, type SnellVersion } from './snell/wire/first-packet.js';
export { parseUsers, loadUsersFile, UserStore, type SnellUser, type ParsedUsers } from './snell/users.js';
export {
  TrialAuthenticator,
  trialAuthenticate,
  trialAuthenticate as trialAuth,
  type TrialOutcome,
  type TrialPath,
  type TrialOptions,
} from './snell/model.js';
export { readPcap, readPcapStreams, type CapturedStream, type PcapRead } from './snell/wire/pcap.js';
export { authenticateCapture, parseCapturesJsonl, capturesFromPcap, type Capture } from './snell/captures.js';

// Xray ExtAuth and Hysteria 2 HTTP auth: play the proxy against a backend.
export { EVENT_TYPES, buildEventBody, parseEventBody, type Dialect, type EventType, type ConnectionFacts } from './xray/wire/dialect.js';
export { DIALECTS, dialectNamed } from './xray/wire/dialects/index.js';
export { sendEvent, type EventRequest, type EventExchange } from './xray/client.js';
export { readReply, type Verdict, type VerdictClass } from './xray/contract.js';
export { runSessions, type SessionOptions, type SessionReport } from './xray/session.js';
export { extAuthSuite } from './xray/suite/extauth.js';
export { hysteriaSuite } from './xray/suite/hysteria.js';
export { startXrayBackend, type XrayBackend, type XrayBackendOptions } from './xray/server/server.js';

// The conformance runner and its reports, shared by every protocol's suite.
export { runSuite, listChecks, parseOnly, type SuiteReport, type CheckResult } from './conformance/runner.js';
export type { Check, Suite, CheckLevel, CheckStatus } from './conformance/check.js';
export { renderText } from './report/text.js';
export { renderJson } from './report/json.js';
export { renderJunit } from './report/junit.js';

// Proksi external_auth over Cap'n Proto RPC.
export { AuthServiceClient, CallError } from './capnp/client.js';
export { startAuthServer } from './capnp/server/server.js';
export { buildAuthRequest, proksiOutcome, PROKSI_DEFAULTS, type ClientRequest, type ProksiOptions } from './capnp/model.js';
export { capnpSuite } from './capnp/suite/suite.js';
export type { AuthRequest, AuthDecision } from './capnp/wire/schema.js';
