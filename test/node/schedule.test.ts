// The probe's schedule (probe-agent/schedule.ts) with fake timers: when periodic measurements run (their offset in
// the spread, their stop), one-offs now or later (and cancelled), and runs queued beyond the slots.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Assignment } from "../../protocol/probe.ts";
import { Schedule } from "../../probe-agent/schedule.ts";

const T0 = 1_800_000_000;  // a whole minute
const ping = { type: "ping" as const, af: 4 as const, target: "193.0.14.129", resolve_on_probe: false, packets: 1, size: 48, packet_interval: 1000 };
const assignment = (o: Partial<Assignment>): Assignment => ({ msm_id: 10_000_001, spec: ping, interval: 60, spread: 0, start_time: T0, stop_time: null, ...o });

/** A schedule whose runs take `runMs` each and are recorded with the (fake) time they started. */
function schedule(slots = 2, runMs = 1000, probeId = 1_000_001) {
  const started: { msm: number; at: number }[] = [];
  let ended = 0;
  const s = new Schedule({
    slots, probeId,
    run: async (a) => { started.push({ msm: a.msm_id, at: Date.now() / 1000 }); await new Promise((r) => setTimeout(r, runMs)); },
    ended: () => { ended++; },
  });
  return { s, started, ended: () => ended };
}

describe("the probe's schedule", () => {
  beforeEach(() => { vi.useFakeTimers(); vi.setSystemTime(T0 * 1000); });
  afterEach(() => { vi.useRealTimers(); });

  it("runs a periodic measurement every interval from its start, until its stop time", async () => {
    const { s, started } = schedule();
    s.accept(assignment({ start_time: T0 + 10, stop_time: T0 + 10 + 180 }));
    await vi.advanceTimersByTimeAsync(400_000);
    expect(started.map((r) => r.at)).toEqual([T0 + 10, T0 + 70, T0 + 130]);
    expect(s.scheduled()).toEqual([]);
  });

  it("joins a running measurement at its next run, at this probe's stable offset within the spread", async () => {
    const a = assignment({ start_time: T0 - 1000, spread: 30 });
    const offset = (1_000_001 * 2654435761 + 10_000_001) % 31;
    const { s, started } = schedule();
    s.accept(a);
    s.accept(a);  // a resend changes nothing
    await vi.advanceTimersByTimeAsync(130_000);
    const next = T0 - 1000 + offset + Math.ceil((1000 - offset) / 60) * 60;
    expect(started.map((r) => r.at)).toEqual([next, next + 60]);
    // Another probe takes another offset: runs of one measurement spread over probes.
    const other = schedule(2, 1000, 1_000_002);
    other.s.accept(a);
    await vi.advanceTimersByTimeAsync(70_000);
    expect(other.started[0]!.at % 60).not.toBe(started[0]!.at % 60);
  });

  it("runs a due one-off at once and a later one at its start; a resent or already held one never twice", async () => {
    const { s, started } = schedule();
    s.accept(assignment({ msm_id: 1, interval: null, start_time: T0 - 5 }));
    s.accept(assignment({ msm_id: 1, interval: null, start_time: T0 - 5 }));
    s.accept(assignment({ msm_id: 2, interval: null, start_time: T0 + 30 }));
    s.accept(assignment({ msm_id: 3, interval: null, start_time: T0 }), (msm) => msm === 3);
    expect(s.scheduled()).toEqual([2]);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(started).toEqual([{ msm: 1, at: T0 }, { msm: 2, at: T0 + 30 }]);
  });

  it("cancels a one-off with a later start, and a periodic measurement, when stopped", async () => {
    const { s, started } = schedule();
    s.accept(assignment({ msm_id: 2, interval: null, start_time: T0 + 30 }));
    s.accept(assignment({ msm_id: 4, start_time: T0 + 10 }));
    expect(s.cancel(2)).toBe(true);
    expect(s.cancel(4)).toBe(true);
    expect(s.cancel(5)).toBe(false);
    await vi.advanceTimersByTimeAsync(300_000);
    expect(started).toEqual([]);
  });

  it("queues runs beyond the slots and reports each slot freed", async () => {
    const { s, started, ended } = schedule(2, 10_000);
    for (let i = 1; i <= 5; i++) s.enqueue(assignment({ msm_id: i, interval: null }));
    expect(started.map((r) => r.msm)).toEqual([1, 2]);
    expect(s.free).toBe(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(started.map((r) => r.msm)).toEqual([1, 2, 3, 4]);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(started.map((r) => r.msm)).toEqual([1, 2, 3, 4, 5]);
    expect(ended()).toBe(5);
    expect(s.free).toBe(2);
  });
});
