// A shard's assignments as its probes see them (assign.ts makes them): what a probe saying hello (on every
// connection) missed while it was away — the assignments it does not run, the measurements it still runs that were
// stopped or ended meanwhile — and a measurement stopped on the shard's probes.
import type { Assignment, ControllerMessage } from "../protocol/index.ts";
import type { Sql } from "./sql.ts";

/** The frames that bring a probe running `running` (its hello's list) up to date with this shard. */
export function catchUp(sql: Sql, probeId: number, running: number[]): ControllerMessage[] {
  const measure = activeAssignments(sql, probeId).filter((a) => !running.includes(a.msm_id)).map((assignment) => ({ type: "measure" as const, assignment }));
  const stop = endedOf(sql, probeId, running).map((msm_id) => ({ type: "stop" as const, msm_id }));
  return [...measure, ...stop];
}

/** The probe's assignments still to run: not stopped, done or moved away, periodic or a one-off due within the hour. */
function activeAssignments(sql: Sql, probeId: number): Assignment[] {
  const now = Math.floor(Date.now() / 1000);
  return sql<{ assignment: string }>(
    `SELECT assignment FROM assignments WHERE probe_id = ? AND stopped = 0 AND done = 0 AND moved_to IS NULL
       AND (stop_time IS NULL OR stop_time > ?) AND (periodic = 1 OR start_time > ?)`,
    probeId, now, now - 3600,
  ).map((r) => JSON.parse(r.assignment) as Assignment);
}

/** Of the measurements a probe says it schedules, those this shard knows to be stopped or over. */
function endedOf(sql: Sql, probeId: number, running: number[]): number[] {
  if (!running.length) return [];
  const now = Math.floor(Date.now() / 1000);
  return sql<{ msm_id: number }>(
    `SELECT msm_id FROM assignments WHERE probe_id = ? AND msm_id IN (${running.map(Number).join(",")}) AND (stopped = 1 OR stop_time <= ?)`,
    probeId, now).map((r) => r.msm_id);
}

/**
 * Marks a measurement stopped for this shard's probes (those listed, when `probeIds` is given) and returns the probes
 * to tell: a probe whose one-off result is in has nothing left to stop and is not told (a round of one-offs ending
 * would send a frame each). The stop time bounds the results still accepted (admission.ts).
 */
export function stopAssignments(sql: Sql, msmId: number, probeIds?: number[]): { stopped: number; tell: number[] } {
  const only = probeIds ? ` AND probe_id IN (${probeIds.map(Number).join(",") || "NULL"})` : "";
  const now = Math.floor(Date.now() / 1000);
  const probes = sql<{ probe_id: number; done: number }>(
    `UPDATE assignments SET stopped = 1, stop_time = MIN(COALESCE(stop_time, ?), ?) WHERE msm_id = ?${only} RETURNING probe_id, done`, now, now, msmId);
  return { stopped: probes.length, tell: probes.filter((p) => !p.done).map((p) => p.probe_id) };
}
