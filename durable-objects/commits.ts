// Group commit: the results frames that arrive within one commit window, from any of the shard's probes, are written
// in one transaction (one outbox row, carrying the probes' marks, marks.ts), and each
// frame is acknowledged only once that transaction is durable. A fleet's results trickle in one or two per frame;
// written frame by frame they cost ~4 SQLite rows each (docs/benchmarks.md), written together a few rows per window.
//
// What a frame stages is visible at once to the next frame of the same probe (its mark, the one-offs it finished),
// so a resend or a second answer to a one-off inside the window is caught as it would be after the commit.
import type { ControllerMessage, Result } from "../protocol/index.ts";
import { partitionKey } from "../storage/layout.ts";
import { type Mark, marksJson, mergeMarks, type ProbeMarks } from "./marks.ts";
import type { Sql } from "./sql.ts";


/** What the group commit needs of its controller. */
export type CommitHost = {
  ctx: DurableObjectState;
  sql: Sql;
  marks: ProbeMarks;
  send: (ws: WebSocket, m: ControllerMessage) => void;
  /** The window (ms) frames wait to share a transaction; 0 commits each frame as it comes. */
  windowMs: () => number;
  /** Results are durable: a flush is scheduled and the stream fed. */
  stored: (results: Result[]) => Promise<void>;
};

/** One frame's outcome, as ingest.ts decided it. */
export type StagedFrame = {
  ws: WebSocket;
  probeId: number;
  /** The probe's mark after this frame (absent: the frame moved nothing, e.g. a resend). */
  mark?: Mark;
  results: Result[];
  /** One-offs this frame answered (each is done for this probe once committed). */
  oneOffs: number[];
  /** What the probe is told once the frame is durable: its ack, then (when over its allowance) why it must wait. */
  replies: ControllerMessage[];
};

/**
 * An outbox row's id: after the highest in the outbox and the highest sealed. Rows are deleted only once sealed
 * (batches.ts), so an id is never given twice, and no AUTOINCREMENT counter row is written per commit.
 */
const NEXT_ID = `(SELECT MAX(COALESCE((SELECT MAX(id) FROM outbox), 0), COALESCE((SELECT value FROM stats WHERE name = 'sealed_upto'), 0)) + 1)`;

/** A window never holds more than this many results: a burst commits at once rather than wait. */
const MAX_STAGED_RESULTS = 2000;

export class GroupCommit {
  private readonly h: CommitHost;
  private frames: StagedFrame[] = [];
  private marks = new Map<number, Mark>();
  private oneOffs = new Set<string>();
  private results = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(host: CommitHost) {
    this.h = host;
  }

  /** A probe's mark including what is staged for it (a copy). */
  markOf(probeId: number): Mark {
    const staged = this.marks.get(probeId);
    const durable = this.h.marks.get(probeId);
    return staged ? mergeMarks(durable, staged) : durable;
  }

  /** Whether this probe's answer to one-off `msm` is staged. */
  answered(msm: number, probeId: number): boolean {
    return this.oneOffs.has(`${msm}:${probeId}`);
  }

  /** Adds a frame to the window; a frame that moves nothing, with nothing of its probe staged, is answered now. */
  stage(f: StagedFrame): void {
    if (!f.mark && !f.results.length && !f.oneOffs.length && !this.marks.has(f.probeId)) {
      for (const m of f.replies) this.h.send(f.ws, m);
      return;
    }
    this.frames.push(f);
    if (f.mark) this.marks.set(f.probeId, mergeMarks(this.marks.get(f.probeId), f.mark));
    for (const msm of f.oneOffs) this.oneOffs.add(`${msm}:${f.probeId}`);
    this.results += f.results.length;
    const window = this.h.windowMs();
    if (window <= 0 || this.results >= MAX_STAGED_RESULTS) this.commit();
    else this.timer ??= setTimeout(() => this.commit(), window);
  }

  /**
   * Writes the window in one transaction, then acknowledges its frames. Also called before anything that reads
   * marks as durable (a handover).
   */
  commit(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const frames = this.frames, marks = this.marks;
    this.frames = [];
    this.marks = new Map();
    this.oneOffs = new Set();
    this.results = 0;
    if (!frames.length) return;
    const results = frames.flatMap((f) => f.results);
    try {
      this.h.ctx.storage.transactionSync(() => {
        // One row for the whole window, whatever partitions its results fall in (batches.ts seals each partition's
        // lines), carrying the marks the window moved.
        const carried = results.length > 0;
        if (carried) {
          const ts = results.map((r) => r.timestamp);
          this.h.sql(
            `INSERT INTO outbox (id, parts, msm_ids, min_ts, max_ts, count, body, marks) VALUES (${NEXT_ID}, ?, ?, ?, ?, ?, ?, ?)`,
            [...new Set(results.map((r) => partitionKey(r.type, r.timestamp)))].join(","), [...new Set(results.map((r) => r.msm_id))].join(","),
            Math.min(...ts), Math.max(...ts), results.length, results.map((r) => JSON.stringify(r) + "\n").join(""), marksJson(marks));
        }
        // A window whose every result was refused still moved marks: they go straight to their snapshot rows.
        if (!carried && marks.size) this.h.marks.raise(marks);
        for (const f of frames) {
          for (const msm of f.oneOffs) this.h.sql("UPDATE assignments SET done = 1, results = results + 1 WHERE msm_id = ? AND probe_id = ?", msm, f.probeId);
        }
      });
    } catch (e) {
      // Nothing of the window is stored, and nothing is acknowledged: the probes send it again on a new connection.
      console.error(`controller: a commit of ${results.length} results failed: ${String(e)}`);
      this.h.marks.reset();
      for (const ws of new Set(frames.map((f) => f.ws))) {
        try { ws.close(1011, "results could not be stored: send them again"); } catch { /* already closed */ }
      }
      return;
    }
    this.h.marks.committedNow(marks);
    // The output gate holds these frames until the transaction is durable: an ack never precedes the data.
    for (const f of frames) for (const m of f.replies) this.h.send(f.ws, m);
    if (results.length) this.h.ctx.waitUntil(this.h.stored(results));
  }
}
