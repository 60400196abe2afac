// A measurement's life after it was created, in the brain: its status over time, driven by timers (start a scheduled
// measurement, stop it at its stop time, finish a one-off, settle an ended one) that one Durable Object alarm
// multiplexes, and its end — the reservation of its credits freed and every controller it ran on told to stop it,
// retried by the alarm until all of it happened, whatever fails or dies halfway.
import { type Status, STATUS } from "../protocol/index.ts";
import type { MeasurementRow } from "./brain-types.ts";
import type { Participant } from "./probe-attachment.ts";
import { controllerStub, shardByName } from "./shards.ts";
import type { Sql } from "./sql.ts";

/** Timers: start a scheduled measurement, stop it at its stop time, finish a one-off, settle an ended one. */
export type Action = "start" | "stop" | "finish" | "settle";

/** How long after a failed settling (reservation freed, controllers told) it is tried again (seconds). */
const SETTLE_RETRY_S = 30;

export type LifecycleHost = { ctx: DurableObjectState; env: () => Env; sql: Sql; get: (id: number) => MeasurementRow | null };

export class Lifecycle {
  private readonly h: LifecycleHost;

  constructor(host: LifecycleHost) {
    this.h = host;
  }

  timer(msmId: number, at: number, action: Action): void {
    this.h.sql("INSERT OR REPLACE INTO timers (msm_id, at, action) VALUES (?, ?, ?)", msmId, at, action);
  }

  /** Sets the alarm for the earliest timer (or none). */
  async armAlarm(): Promise<void> {
    const next = this.h.sql<{ at: number | null }>("SELECT MIN(at) AS at FROM timers")[0]?.at;
    if (next === null || next === undefined) await this.h.ctx.storage.deleteAlarm();
    else await this.h.ctx.storage.setAlarm(next * 1000);
  }

  /** The alarm: every timer that is due, then the alarm again for the next. */
  async fire(): Promise<void> {
    const now = Math.floor(Date.now() / 1000);
    for (const t of this.h.sql<{ msm_id: number; action: Action }>("SELECT msm_id, action FROM timers WHERE at <= ? ORDER BY at", now)) {
      // A settle timer is the settling's own: it goes when everything happened, and stays (later) when not.
      if (t.action === "settle") { await this.settle(t.msm_id); continue; }
      if (t.action === "start") this.setStatus(t.msm_id, STATUS.ongoing, [STATUS.scheduled.id]);
      else await this.end(t.msm_id, STATUS.stopped);
      this.h.sql("DELETE FROM timers WHERE msm_id = ? AND action = ?", t.msm_id, t.action);
    }
    await this.armAlarm();
  }

  /** Moves a measurement to `status` if it is in one of `from`; whether it did. */
  setStatus(id: number, status: Status, from: number[]): boolean {
    const now = Math.floor(Date.now() / 1000);
    return this.h.sql(`UPDATE measurements SET status_id = ?, status_when = ? WHERE id = ? AND status_id IN (${from.join(",")}) RETURNING id`,
      status.id, now, id).length > 0;
  }

  /**
   * Moves a running measurement to a final status, frees what is left of its credits' reservation (results still
   * on their way are charged to the free balance), and tells its controllers to stop it on their probes. (The caller
   * arms the alarm afterwards.)
   */
  async end(id: number, status: Status): Promise<void> {
    const row = this.h.get(id);
    if (!row || !this.setStatus(id, status, [STATUS.specified.id, STATUS.scheduled.id, STATUS.ongoing.id])) return;
    // The end is recorded with a settle timer in the same step: what follows (the reservation freed, every controller
    // told) is retried by the alarm until it has all happened, whatever fails or dies halfway.
    this.h.ctx.storage.transactionSync(() => {
      this.h.sql("DELETE FROM timers WHERE msm_id = ? AND action != 'settle'", id);
      this.timer(id, Math.floor(Date.now() / 1000) + SETTLE_RETRY_S, "settle");
    });
    await this.settle(id);
  }

  /**
   * Frees what is left of an ended measurement's reservation and tells each controller it ran on to stop it (both
   * idempotent); done, the settle timer goes, else it is set to try again. Returns whether all of it happened.
   */
  private async settle(id: number): Promise<boolean> {
    const row = this.h.get(id);
    if (!row) return true;
    let failed = 0;
    try {
      await this.h.env().LEDGER.getByName(row.owner).release(`release:${id}`, id);
    } catch (e) {
      failed++;
      console.error(`brain: freeing ${id}'s reservation failed, will retry: ${String(e)}`);
    }
    const shards = [...new Set((JSON.parse(row.participants) as Participant[]).map((p) => p.shard))];
    await Promise.all(shards.map(async (name) => {
      const shard = shardByName(name);
      if (!shard) return;
      try {
        await controllerStub(this.h.env().CONTROLLER, shard).stop(id);
      } catch (e) {
        failed++;
        console.error(`brain: stopping ${id} on ${name} failed, will retry: ${String(e)}`);
      }
    }));
    if (failed === 0) this.h.sql("DELETE FROM timers WHERE msm_id = ? AND action = 'settle'", id);
    else this.timer(id, Math.floor(Date.now() / 1000) + SETTLE_RETRY_S, "settle");
    return failed === 0;
  }
}
