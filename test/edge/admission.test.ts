// The pure rules of what a controller accepts from a probe (durable-objects/admission.ts), at their edges: the
// attack suite (test/edge/attacks/probes.test.ts) drives the same rules through real sockets.
import { describe, expect, it } from "vitest";
import { admit, type Held, limitsOf, refuseAssigned, refuseBuiltin } from "../../durable-objects/admission.ts";
import type { Assignment } from "../../protocol/index.ts";

const limits = limitsOf({});
const T0 = 1_800_000_000;
const ping = { type: "ping" as const, af: 4 as const, target: "193.0.14.129", resolve_on_probe: false, packets: 3, size: 48, packet_interval: 1000 };
const held = (o: Partial<Held> & { interval?: number | null } = {}): Held => {
  const assignment: Assignment = { msm_id: 10_000_001, spec: ping, interval: o.interval === undefined ? 60 : o.interval, spread: 0, start_time: T0, stop_time: null };
  return { assignment, periodic: assignment.interval !== null, done: false, stopped: false, results: 0, stop_time: null, ...o };
};
const result = (timestamp: number, type = "ping") => ({ msm_id: 10_000_001, type, timestamp });

describe("what a controller accepts from a probe", () => {
  it("takes the defaults a deployment keeps, and the operator's numbers", () => {
    expect(limits).toEqual({ skew: 300, extraRuns: 2, resultsPerMinute: 6000, bytesPerMinute: 16 * 1024 * 1024 });
    expect(limitsOf({ RESULT_CLOCK_SKEW_S: "60", PROBE_RESULTS_PER_MINUTE: "-5" })).toMatchObject({ skew: 60, resultsPerMinute: 6000 });
  });

  it("bounds a periodic measurement's results by the runs its interval allows since its start", () => {
    // 10 minutes in, every 60 s: runs at 0, 60, …, 600 (+ the skew's 300 s = 5 more) + 2 extra = 18.
    const now = T0 + 600;
    expect(refuseAssigned(held({ results: 17 }), result(now), now, limits)).toBeNull();
    expect(refuseAssigned(held({ results: 18 }), result(now), now, limits)).toMatch(/at most 18 results/);
    // A stop bounds the window.
    expect(refuseAssigned(held({ results: 3, stop_time: T0 + 60, stopped: true }), result(T0 + 50), now, limits)).toBeNull();
    expect(refuseAssigned(held({ stop_time: T0 + 60, stopped: true }), result(T0 + 60 + 301), now, limits)).toMatch(/was stopped/);
  });

  it("takes a one-off's first result only, inside the window in which it can have run", () => {
    const h = held({ interval: null });
    expect(refuseAssigned(h, result(T0 + 10), T0 + 20, limits)).toBeNull();
    expect(refuseAssigned({ ...h, done: true }, result(T0 + 10), T0 + 20, limits)).toMatch(/already in/);
    // Re-sent for an hour after its start (a probe that reconnects), plus its run time and the skew.
    expect(refuseAssigned(h, result(T0 + 3600 + 4 + 300), T0 + 3600 + 4 + 300, limits)).toBeNull();
    expect(refuseAssigned(h, result(T0 + 3600 + 4 + 301), T0 + 3600 + 4 + 301, limits)).toMatch(/could have run/);
  });

  it("refuses timestamps outside the clock-skew window, and other types", () => {
    expect(refuseAssigned(held(), result(T0 - 301), T0 + 10, limits)).toMatch(/before measurement/);
    expect(refuseAssigned(held(), result(T0 - 300), T0 + 10, limits)).toBeNull();
    expect(refuseAssigned(held(), result(T0 + 10 + 301), T0 + 10, limits)).toMatch(/in the future/);
    expect(refuseAssigned(held(), result(T0 + 10, "dns"), T0 + 10, limits)).toMatch(/is a ping, not a dns/);
  });

  it("bounds built-ins: their type, not in the future nor older than a week, one per id every 5 s", () => {
    const now = T0;
    expect(refuseBuiltin({ msm_id: 1001, type: "ping", timestamp: now }, undefined, now, limits)).toBeNull();
    // Every 5 s at most, with a second's room for timestamps rounded to whole seconds.
    expect(refuseBuiltin({ msm_id: 1001, type: "ping", timestamp: now + 3 }, now, now, limits)).toMatch(/at most every 5 s/);
    expect(refuseBuiltin({ msm_id: 1001, type: "ping", timestamp: now + 4 }, now, now, limits)).toBeNull();
    expect(refuseBuiltin({ msm_id: 5001, type: "ping", timestamp: now }, undefined, now, limits)).toMatch(/is a traceroute/);
    expect(refuseBuiltin({ msm_id: 3000, type: "ping", timestamp: now }, undefined, now, limits)).toMatch(/not given/);
    expect(refuseBuiltin({ msm_id: 1, type: "ping", timestamp: now + 301 }, undefined, now, limits)).toMatch(/in the future/);
    // A probe back after ten minutes (or days) offline sends what it measured meanwhile.
    expect(refuseBuiltin({ msm_id: 1, type: "ping", timestamp: now - 600 }, undefined, now, limits)).toBeNull();
    expect(refuseBuiltin({ msm_id: 1, type: "ping", timestamp: now - 6 * 86_400 }, undefined, now, limits)).toBeNull();
    expect(refuseBuiltin({ msm_id: 1, type: "ping", timestamp: now - 7 * 86_400 - 1 }, undefined, now, limits)).toMatch(/more than 604800 s old/);
  });

  it("admits results and bytes up to the minute's allowance, and says when the next minute starts", () => {
    const l = { ...limits, resultsPerMinute: 10, bytesPerMinute: 1000 };
    const at = 60_000 * 100 + 15_000;  // 15 s into a minute
    const first = admit(undefined, 6, 100, at, l);
    expect(first).toEqual({ allowance: { minute: 100, results: 6, bytes: 100 }, fits: 6, retryAfter: 45 });
    const second = admit(first.allowance, 6, 100, at + 1000, l);
    expect(second).toMatchObject({ fits: 4, allowance: { results: 10, bytes: 200 }, retryAfter: 44 });
    expect(admit(second.allowance, 1, 10, at + 2000, l).fits).toBe(0);
    expect(admit(second.allowance, 1, 10, at + 45_000, l)).toMatchObject({ fits: 1, allowance: { minute: 101, results: 1 } });
    expect(admit(undefined, 1, 1001, at, l).fits).toBe(0);  // a frame past the byte allowance
  });
});
