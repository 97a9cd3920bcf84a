/** A monotonic clock in ms that every thread shares (performance.now() has a per-thread origin). */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
