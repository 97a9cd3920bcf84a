/**
 * How a protocol plugs into the load engine: open a target, send one operation, report its
 * outcome class. Callbacks, not promises: the engine's own cost per request is part of the
 * client CPU the figures are judged by.
 */
export interface LoadTarget<Op = undefined> {
  /** Connects and proves the target answers; throws a one-line Error when it cannot (fail fast). */
  open(): Promise<void>;
  /**
   * Sends one operation. `done` is called exactly once with the outcome class (e.g. `allow`,
   * `block`, `timeout`) and, for a mix of operation kinds, the kind it belongs to.
   */
  send(op: Op, done: (outcome: string, kind?: string) => void): void;
  /** Outcome classes that count as errors (error_rate), the rest are answers. */
  readonly failures: ReadonlySet<string>;
  /** Every outcome class the target can report, answers and errors (a threshold's {class} must be one). */
  readonly classes: readonly string[];
  close(): Promise<void>;
}

/**
 * Where open-model arrivals come from: a rate profile, or a traffic model (the Xray event mix)
 * whose next events depend on earlier replies. Times are milliseconds from the run's start.
 */
export interface ArrivalSource<Op = undefined> {
  /** When the next arrival is due; Infinity when none is known (yet or ever). */
  peek(): number;
  /** Removes and returns the next arrival's operation. */
  take(): Op;
  /** True once no arrival will ever come again. */
  exhausted(): boolean;
  /** Told about every completion (a session model schedules what follows a reply). */
  completed?(op: Op, outcome: string, nowMs: number): void;
  /** Told about an arrival the engine dropped (no slot, no queue room, or the run ended). */
  dropped?(op: Op, nowMs: number): void;
}
