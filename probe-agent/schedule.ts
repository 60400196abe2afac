// The probe's schedule: which measurement runs when, within its slots. Periodic measurements run on the probe's own
// timers (as Atlas probes' crontabs do), each probe at a stable offset within the measurement's spread; one-offs run
// when due (a later start waits under its id, so a stop cancels it); runs beyond the free slots queue. What a run
// does is the agent's (`run`); this module only decides when. Tested with fake timers (test/node/schedule.test.ts).
import type { Assignment } from "../protocol/probe.ts";
import type { RunOptions } from "./builtins.ts";

export class Schedule {
  /** Timers of periodic measurements, and of one-offs that start later, by measurement id. */
  private readonly timers = new Map<number, NodeJS.Timeout>();
  private readonly oneoffsRun = new Set<number>();
  private readonly queue: (() => Promise<void>)[] = [];
  private running = 0;
  private readonly slots: number;
  private readonly probeId: number;
  private readonly run: (a: Assignment, opts: RunOptions) => Promise<void>;
  /** A run ended (its slot is free again). */
  private readonly ended: () => void;

  constructor(o: { slots: number; probeId: number; run: (a: Assignment, opts: RunOptions) => Promise<void>; ended: () => void }) {
    this.slots = o.slots;
    this.probeId = o.probeId;
    this.run = o.run;
    this.ended = o.ended;
  }

  /** Slots neither running nor promised to a queued run. */
  get free(): number {
    return Math.max(0, this.slots - this.running - this.queue.length);
  }

  /** The measurements this probe schedules itself (its hello names them, so they are not sent again). */
  scheduled(): number[] {
    return [...this.timers.keys()];
  }

  /**
   * Takes an assignment. `alreadyHeld(msm)`: a one-off whose result still waits to be acknowledged is not run again
   * when the controller re-sends it after a reconnect.
   */
  accept(a: Assignment, alreadyHeld: (msmId: number) => boolean = () => false): void {
    const now = Date.now() / 1000;
    if (a.interval === null) {
      // A resent one-off that already ran (its result may still wait in the spool) is not run twice.
      if (this.oneoffsRun.has(a.msm_id) || alreadyHeld(a.msm_id)) return;
      this.oneoffsRun.add(a.msm_id);
      // Remember the recent ones only (a Set iterates oldest first): a one-off is never resent after an hour.
      if (this.oneoffsRun.size > 10_000) this.oneoffsRun.delete(this.oneoffsRun.values().next().value!);
      // One that is due starts now: a timer would cost an event-loop turn per one-off.
      if (a.start_time <= now) this.enqueue(a);
      // One that starts later waits under its id, as periodic ones do, so a stop before its start cancels it (and
      // the hello of a reconnect names it as scheduled here).
      else this.timers.set(a.msm_id, setTimeout(() => { this.timers.delete(a.msm_id); this.enqueue(a); }, (a.start_time - now) * 1000));
      return;
    }
    if (this.timers.has(a.msm_id)) return;
    // Each probe takes a stable offset within the spread, so runs of one measurement are spread over probes.
    const offset = a.spread > 0 ? (this.probeId * 2654435761 + a.msm_id) % (a.spread + 1) : 0;
    const first = a.start_time + offset;
    const next = first > now ? first : first + Math.ceil((now - first) / a.interval) * a.interval;
    const tick = (at: number) => {
      if (a.stop_time !== null && at >= a.stop_time) { this.timers.delete(a.msm_id); return; }
      this.timers.set(a.msm_id, setTimeout(() => {
        this.enqueue(a);
        tick(at + a.interval!);
      }, Math.max(0, at * 1000 - Date.now())));
    };
    tick(next);
  }

  /** No more runs of this measurement; whether it was scheduled here. (Runs in progress are the agent's to abort.) */
  cancel(msmId: number): boolean {
    const t = this.timers.get(msmId);
    if (t) clearTimeout(t);
    return this.timers.delete(msmId);
  }

  /** Runs `a` as soon as a slot is free. */
  enqueue(a: Assignment, opts: RunOptions = {}): void {
    this.queue.push(() => this.run(a, opts));
    this.pump();
  }

  /** Cancels everything scheduled (the agent is stopping). */
  clear(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  private pump(): void {
    while (this.running < this.slots && this.queue.length) {
      const job = this.queue.shift()!;
      this.running++;
      void job().finally(() => {
        this.running--;
        this.pump();
        this.ended();
      });
    }
  }
}
