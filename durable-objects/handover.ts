// A probe that registers onto another shard than last time (its shard was full, or it moved) brings along what
// its old controller knew of it: the assignments it was given there (so their results are still accepted, counted
// and stopped) and its stored-result high-water mark (so a result the old shard stored, whose ack was lost, is not
// stored again here). The new controller asks the old one before it accepts the socket; every step is idempotent,
// so a handover that fails halfway is simply done again at the probe's next connection.

import type { ProbeMarks } from "./marks.ts";
import type { Sql } from "./sql.ts";

/** What a controller holds of one probe: its mark and its assignment rows. */
export type ProbeState = {
  seq: number;
  assignments: { msm_id: number; assignment: string; periodic: number; start_time: number; stop_time: number | null; done: number; stopped: number; results: number }[];
};

/** The old side: the probe's state, its rows marked as handed over to `to` (results for them are refused here). */
export function giveProbe(sql: Sql, marks: ProbeMarks, probeId: number, to: string): ProbeState {
  const { seq, runs } = marks.get(probeId);
  const assignments = sql<ProbeState["assignments"][number]>(
    "SELECT msm_id, assignment, periodic, start_time, stop_time, done, stopped, results FROM assignments WHERE probe_id = ?", probeId)
    .map((r) => ({ ...r, results: Math.max(r.results, runs[r.msm_id] ?? 0) }));
  sql("UPDATE assignments SET moved_to = ? WHERE probe_id = ?", to, probeId);
  return { seq, assignments };
}

/** The new side: the most advanced of what it had and what it was given (a probe may come back to a shard). */
export function takeProbe(sql: Sql, marks: ProbeMarks, probeId: number, s: ProbeState): void {
  const runs: Record<number, number> = {};
  for (const r of s.assignments) if (r.periodic) runs[r.msm_id] = r.results;
  // Its share stays with the old shard, which pays what it accrued there.
  marks.raise(new Map([[probeId, { seq: s.seq, share: 0, runs }]]));
  for (const r of s.assignments) {
    sql(`INSERT INTO assignments (msm_id, probe_id, assignment, periodic, start_time, stop_time, done, stopped, results)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (msm_id, probe_id) DO UPDATE SET done = MAX(done, excluded.done), stopped = MAX(stopped, excluded.stopped),
           results = MAX(results, excluded.results), stop_time = CASE WHEN stop_time IS NULL THEN excluded.stop_time
             WHEN excluded.stop_time IS NULL THEN stop_time ELSE MIN(stop_time, excluded.stop_time) END, moved_to = NULL`,
    r.msm_id, probeId, r.assignment, r.periodic, r.start_time, r.stop_time, r.done, r.stopped, r.results);
  }
}
