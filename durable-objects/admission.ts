// What a controller accepts from a probe, which it does not trust: a probe's host can run any code and send any
// frame, and other people pay for the results it stores. Pure rules, tested on their own (test/edge/admission.test.ts);
// the controller applies them to every result of a frame, refusing each one that breaks them by itself.
import { type Assignment, builtinType, runSeconds } from "../protocol/index.ts";

export type Limits = {
  /** How far a result's timestamp may lie outside its assignment's window, for probes' clocks (seconds). */
  skew: number;
  /** Runs of a periodic measurement a probe may report beyond what its interval allows since its start. */
  extraRuns: number;
  /** Results, and bytes of results frames, one probe may send a minute. */
  resultsPerMinute: number;
  bytesPerMinute: number;
};

/**
 * Defaults a deployment keeps: five minutes of clock skew (an unsynchronised home router), two extra runs (a spread
 * that moves a run across the window's edge, a restart), 6,000 results and 16 MiB a minute — a probe's backlog of a
 * day offline drains in minutes, and one probe cannot fill a controller's minute (Atlas probes send ~1 a second).
 * bench/edge.ts widens skew and runs for its fabricated day-old results; nothing else should.
 */
export function limitsOf(env: Pick<Env, "RESULT_CLOCK_SKEW_S" | "RESULT_EXTRA_RUNS" | "PROBE_RESULTS_PER_MINUTE" | "PROBE_BYTES_PER_MINUTE">): Limits {
  const n = (v: string | undefined, fallback: number) => (v !== undefined && Number.isFinite(Number(v)) && Number(v) >= 0 ? Number(v) : fallback);
  return {
    skew: n(env.RESULT_CLOCK_SKEW_S, 300),
    extraRuns: n(env.RESULT_EXTRA_RUNS, 2),
    resultsPerMinute: n(env.PROBE_RESULTS_PER_MINUTE, 6000),
    bytesPerMinute: n(env.PROBE_BYTES_PER_MINUTE, 16 * 1024 * 1024),
  };
}

/** A one-off is re-sent to a probe that reconnects within this long of its start (assignments.ts catchUp). */
export const ONEOFF_RESEND_S = 3600;
/** The agent's shortest built-in interval (probe-agent/config.ts); one second less for timestamp rounding. */
export const BUILTIN_MIN_SPACING_S = 4;
/**
 * How old a built-in result may be: a probe offline for days sends what it measured meanwhile (its journal keeps
 * it), and a week bounds what a probe could invent for a past it was not connected in (one per id every 5 s).
 */
export const BUILTIN_MAX_AGE_S = 7 * 86_400;

/** What the controller knows of the assignment a result claims to answer. */
export type Held = { assignment: Assignment; periodic: boolean; done: boolean; stopped: boolean; results: number; stop_time: number | null };

/** Why a result for a user measurement is refused, or null if it is accepted. */
export function refuseAssigned(h: Held, r: { msm_id: number; type: string; timestamp: number }, now: number, l: Limits): string | null {
  const a = h.assignment;
  if (a.spec.type !== r.type) return `measurement ${r.msm_id} is a ${a.spec.type}, not a ${r.type}`;
  if (!Number.isSafeInteger(r.timestamp)) return `timestamp ${r.timestamp} is not a unix time`;
  if (r.timestamp < a.start_time - l.skew) return `timestamp ${r.timestamp} is before measurement ${r.msm_id} started (${a.start_time})`;
  if (r.timestamp > now + l.skew) return `timestamp ${r.timestamp} is in the future (now ${now})`;
  if (h.stop_time !== null && r.timestamp > h.stop_time + l.skew) return `measurement ${r.msm_id} ${h.stopped ? "was stopped" : "ended"} at ${h.stop_time}; this result is from ${r.timestamp}`;
  if (!h.periodic) {
    if (h.done) return `measurement ${r.msm_id} is a one-off and this probe's result is already in`;
    if (h.stopped) return `measurement ${r.msm_id} was stopped`;
    const latest = a.start_time + ONEOFF_RESEND_S + runSeconds(a.spec);
    if (r.timestamp > latest + l.skew) return `timestamp ${r.timestamp} is after one-off ${r.msm_id} could have run (by ${latest})`;
    return null;
  }
  const until = Math.min(now + l.skew, h.stop_time === null ? Infinity : h.stop_time + l.skew);
  const allowed = Math.max(0, Math.floor((until - a.start_time) / (a.interval ?? 1))) + 1 + l.extraRuns;
  if (h.results >= allowed) return `measurement ${r.msm_id} runs every ${a.interval} s since ${a.start_time}: at most ${allowed} results by now, and this probe sent ${h.results}`;
  return null;
}

/** Why a built-in result is refused (given the last one of that id this probe stored), or null. */
export function refuseBuiltin(r: { msm_id: number; type: string; timestamp: number }, last: number | undefined, now: number, l: Limits): string | null {
  const type = builtinType(r.msm_id);
  if (!type) return `measurement ${r.msm_id} was not given to this probe`;
  if (type !== r.type) return `measurement ${r.msm_id} is a ${type}, not a ${r.type}`;
  if (!Number.isSafeInteger(r.timestamp) || r.timestamp > now + l.skew) return `built-in result's timestamp ${r.timestamp} is in the future (now ${now})`;
  if (r.timestamp < now - BUILTIN_MAX_AGE_S) return `built-in result's timestamp ${r.timestamp} is more than ${BUILTIN_MAX_AGE_S} s old (now ${now})`;
  if (last !== undefined && r.timestamp < last + BUILTIN_MIN_SPACING_S) {
    return `built-in ${r.msm_id} runs at most every ${BUILTIN_MIN_SPACING_S + 1} s; the last result stored is from ${last}`;
  }
  return null;
}

/** A probe's use of its per-minute allowance (kept in its socket's attachment). */
export type Allowance = { minute: number; results: number; bytes: number };

/**
 * How many of `results` results (a frame of `bytes`) fit in the probe's allowance this minute; the allowance is
 * charged for those. When not all fit, `retryAfter` says when the next minute starts.
 */
export function admit(a: Allowance | undefined, results: number, bytes: number, nowMs: number, l: Limits): { allowance: Allowance; fits: number; retryAfter: number } {
  const minute = Math.floor(nowMs / 60_000);
  const used = a && a.minute === minute ? a : { minute, results: 0, bytes: 0 };
  const retryAfter = Math.max(1, Math.ceil(((minute + 1) * 60_000 - nowMs) / 1000));
  if (used.bytes + bytes > l.bytesPerMinute) return { allowance: used, fits: 0, retryAfter };
  const fits = Math.max(0, Math.min(results, l.resultsPerMinute - used.results));
  return { allowance: { minute, results: used.results + fits, bytes: used.bytes + bytes }, fits, retryAfter };
}
