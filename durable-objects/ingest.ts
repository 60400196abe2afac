// A results frame from a probe, stored once: each result validated and admitted on its own (admission.ts), the
// accepted ones staged with the probe's new high-water mark for the next group commit (commits.ts), and acknowledged
// once that is durable. Resends (seq at or below the mark) are acknowledged without being stored again.
import { type Assignment, type ControllerMessage, creditsPerResult, type FrameSubmission, HOST_SHARE_MILLI_PER_CREDIT, Result as ResultSchema, type Result, USER_MSM_MIN } from "../protocol/index.ts";
import { admit, type Held, limitsOf, refuseAssigned, refuseBuiltin } from "./admission.ts";
import type { GroupCommit } from "./commits.ts";
import type { ProbeAttachment } from "./probe-attachment.ts";
import type { Sql } from "./sql.ts";
import { noteBuiltins, resolverCheck, STABLE_GAP_S, systemTags, type Works, worksOf } from "./system-tags.ts";

/** What ingesting needs of its controller. */
export type IngestHost = {
  env: () => Env;
  sql: Sql;
  /** Records what the controller keeps about the probe on this socket (its allowance, its built-ins' pace). */
  attach: (ws: WebSocket, a: ProbeAttachment) => void;
  /** Sends a message to the probe. */
  send: (ws: WebSocket, m: ControllerMessage) => void;
  /** Logs one line (a frame's refusals are one line, however many: a hostile probe must not flood the logs). */
  warn: (line: string) => void;
  /** The probe's Atlas system tags changed (its built-ins say so): the registry shows them and registration carries them. */
  systemTagsChanged: (probeId: number, tags: string[], works: Works) => void;
  commits: GroupCommit;
};

/**
 * Admits a frame of results and stages it for the next group commit (commits.ts), which stores it durably and only
 * then acknowledges up to its last seq. Each result is checked on its own (its shape, then admission.ts: an
 * assignment this probe holds and that is live, no more results than the definition allows, a timestamp inside its
 * window; built-ins within their bounds) and refused by itself; a frame past the probe's per-minute allowance is
 * stored only up to it, and the probe is told when to send the rest.
 */
export function ingest(h: IngestHost, ws: WebSocket, a: ProbeAttachment, submissions: FrameSubmission[], bytes: number): void {
  const mark = h.commits.markOf(a.probe_id);
  const stored = mark.seq;
  const runs = mark.runs;
  const limits = limitsOf(h.env());
  const fresh = submissions.filter((s) => s.seq > stored);
  const { allowance, fits, retryAfter } = admit(a.allowance, fresh.length, bytes, Date.now(), limits);
  let upto = stored;
  const accepted: Result[] = [];
  const finishedOneOffs = new Set<number>();
  const builtinLast = { ...a.builtin_last };
  const now = Math.floor(Date.now() / 1000);
  let shareMilli = 0;
  const refused: { seq: number; reason: string }[] = [];
  const refuse = (seq: number, reason: string) => {
    refused.push({ seq, reason });
    h.send(ws, { type: "reject", seq, reason });
  };
  for (const s of fresh.slice(0, fits)) {
    if (s.seq <= upto) continue; // out of order within the frame
    upto = s.seq;
    const parsed = ResultSchema.safeParse(s.result);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      refuse(s.seq, `invalid result at /${issue.path.join("/")}: ${issue.message}`);
      continue;
    }
    const r = parsed.data;
    if (r.prb_id !== a.probe_id) { refuse(s.seq, `prb_id ${r.prb_id} is not this probe (${a.probe_id})`); continue; }
    const given = h.sql<{ assignment: string; periodic: number; done: number; stopped: number; results: number; stop_time: number | null; moved_to: string | null }>(
      "SELECT assignment, periodic, done, stopped, results, stop_time, moved_to FROM assignments WHERE msm_id = ? AND probe_id = ?", r.msm_id, a.probe_id)[0];
    let assignment: Assignment | null = null;
    if (given?.moved_to) { refuse(s.seq, `measurement ${r.msm_id} was handed over to ${given.moved_to} with this probe`); continue; }
    if (given) {
      const held: Held = {
        assignment: JSON.parse(given.assignment) as Assignment, periodic: given.periodic === 1, stopped: given.stopped === 1, stop_time: given.stop_time,
        done: given.done === 1 || finishedOneOffs.has(r.msm_id) || h.commits.answered(r.msm_id, a.probe_id), results: Math.max(given.results, runs[r.msm_id] ?? 0),
      };
      const refusal = refuseAssigned(held, r, now, limits);
      if (refusal) { refuse(s.seq, refusal); continue; }
      assignment = held.assignment;
      if (held.periodic) runs[r.msm_id] = held.results + 1;
      else finishedOneOffs.add(r.msm_id);
    } else {
      // Built-in measurements are every probe's own: no assignment, but their type and pace are fixed.
      const refusal = r.msm_id >= USER_MSM_MIN ? `measurement ${r.msm_id} was not given to this probe` : refuseBuiltin(r, builtinLast[r.msm_id], now, limits);
      if (refusal) { refuse(s.seq, refusal); continue; }
      builtinLast[r.msm_id] = r.timestamp;
    }
    if (a.address) r.from = a.address;
    r.stored_timestamp = now;
    accepted.push(r);
    // Users pay for their results (built-in ones are free), and the probe's host earns a share of it.
    if (assignment && r.msm_id >= USER_MSM_MIN) shareMilli += creditsPerResult(assignment.spec, !given!.periodic) * HOST_SHARE_MILLI_PER_CREDIT;
  }
  const reach = noteBuiltins(a.reach, accepted, resolverCheck(h.env()));
  const tags = reach === a.reach ? a.system_tags : systemTags(a.address, reach, a.system_tags);
  // The registry hears of new tags at once, and of a run of working built-ins when it starts, breaks, or has gone on
  // another STABLE_GAP_S/2 (so a probe that registers again goes on from nearly where it was, at one write an hour).
  const works = worksOf(reach);
  const moved = ([4, 6] as const).some((af) => works[af]?.[0] !== a.works_reported?.[af]?.[0] || (works[af]?.[1] ?? 0) - (a.works_reported?.[af]?.[1] ?? 0) >= STABLE_GAP_S / 2);
  const changed = !!tags && tags.join() !== (a.system_tags ?? []).join();
  if (changed || moved) h.systemTagsChanged(a.probe_id, tags ?? [], works);
  h.attach(ws, { ...a, allowance, builtin_last: builtinLast, reach, system_tags: tags, works_reported: changed || moved ? works : a.works_reported });
  if (refused.length) {
    const first = refused[0]!;
    h.warn(`probe ${a.probe_id}: refused ${refused.length} of ${submissions.length} results of a frame (first: result ${first.seq}: ${first.reason})`);
  }
  const replies: ControllerMessage[] = [{ type: "ack", upto }];
  if (fits < fresh.length) {
    replies.push({
      type: "reject", seq: null, retry_after: retryAfter,
      reason: `over this probe's allowance of ${limits.resultsPerMinute} results and ${limits.bytesPerMinute} bytes a minute: results after ${upto} were not stored; send them again in ${retryAfter} s`,
    });
  }
  h.commits.stage({
    ws, probeId: a.probe_id, results: accepted, oneOffs: [...finishedOneOffs], replies,
    mark: upto > stored ? { seq: upto, share: mark.share + shareMilli, runs } : undefined,
  });
}
