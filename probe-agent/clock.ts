// The agent's monotonic clock. Not `performance.now()`: the `performance` global loads perf_hooks and ten modules
// behind it on first use (0.4–0.8 MB of RSS measured on the agent's flags), for a number process.hrtime() gives.
// (NTP, which needs wall-clock time finer than a millisecond, uses `performance.timeOrigin` and pays for it when an
// NTP measurement first runs.)

/** Milliseconds on a monotonic clock (an arbitrary origin; for intervals only), with sub-microsecond resolution. */
export function monotonicMs(): number {
  const [s, ns] = process.hrtime();
  return s * 1e3 + ns / 1e6;
}
