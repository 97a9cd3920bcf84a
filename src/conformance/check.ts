/**
 * What a conformance check is. Every protocol suite (xray-sim, capnp-check, snell-probe) is a
 * list of these, run by the one runner in runner.ts and printed by the reporters in src/report/.
 * Organised like h2spec: a stable ID, a title quoting the requirement, and on failure the
 * evidence (what was sent, what came back, what was expected).
 */

/** RFC 2119 strength. Only MUST checks can fail a run; SHOULD and INFO never gate CI. */
export type CheckLevel = 'MUST' | 'SHOULD' | 'INFO';

/**
 * What happened to one check. `fail` only ever appears on MUST checks: a failure at SHOULD or
 * INFO level is recorded as `warn` (see statusOf). `error` means the check could not reach a
 * verdict: it threw or timed out.
 */
export type CheckStatus = 'pass' | 'fail' | 'warn' | 'skip' | 'info' | 'error';

/**
 * One exchange with the backend. Values may be anything JSON-like, plus bytes (shown as hex) and
 * bigints; `expected` is usually a sentence ("HTTP 403 with an empty body").
 */
export interface Evidence {
  label?: string;
  sent?: unknown;
  received?: unknown;
  expected?: unknown;
}

/**
 * What a check may report about itself; `error` is only ever the runner's verdict. The recorded
 * status can differ by level (see statusOf).
 */
export type OutcomeStatus = Exclude<CheckStatus, 'error'>;

export interface CheckOutcome {
  status: OutcomeStatus;
  message?: string;
  evidence?: Evidence[];
}

/**
 * Handed to every check. The outcome builders are meant to be returned:
 * `return t.fail('allowed user was rejected', { expected: 'HTTP 200' })`.
 */
export interface CheckTools {
  /** Aborted when the check times out, so it can close its sockets instead of lingering. */
  readonly signal: AbortSignal;
  /**
   * Records an exchange as it happens. It is kept even if the check later throws or times out,
   * which is when "what had been sent so far" matters most.
   */
  evidence(e: Evidence): void;
  pass(message?: string): CheckOutcome;
  fail(message: string, evidence?: Evidence): CheckOutcome;
  /** Not a failure at any level: the requirement holds, but something deserves a look. */
  warn(message: string, evidence?: Evidence): CheckOutcome;
  /** The check does not apply to this backend (a feature it does not offer). */
  skip(reason: string): CheckOutcome;
  /** An observation, neither pass nor fail (a version banner, a measured limit). */
  info(message: string): CheckOutcome;
}

export interface Check<C> {
  /** Stable across releases: CI configs pass it to --only. */
  id: string;
  level: CheckLevel;
  /** One line, quoting the requirement it checks. */
  title: string;
  /** Capabilities of the run (e.g. 'fixture.allowed'); a missing one skips the check. */
  requires?: readonly string[];
  /** Returning nothing is a pass. Throwing (anything, InputError included) is an `error`. */
  run(ctx: C, t: CheckTools): Promise<CheckOutcome | void> | CheckOutcome | void;
}

/** Checks run in this order, one at a time: later ones may rely on state earlier ones left. */
export interface Suite<C> {
  name: string;
  checks: readonly Check<C>[];
}

/** A check without its code, for listings and reports. */
export interface CheckInfo {
  id: string;
  level: CheckLevel;
  title: string;
  requires?: readonly string[];
}

/** The one rule mapping an outcome to a status: failures gate only at MUST level. */
export function statusOf(level: CheckLevel, reported: OutcomeStatus): CheckStatus {
  return reported === 'fail' && level !== 'MUST' ? 'warn' : reported;
}

/** Whether a result makes the run fail (and CI go red). */
export function gates(level: CheckLevel, status: CheckStatus): boolean {
  return level === 'MUST' && (status === 'fail' || status === 'error');
}
