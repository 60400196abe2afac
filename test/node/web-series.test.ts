// The console's numbers (web/src/series.ts), apart from the browser: what its charts and their CSV downloads show.
import { describe, expect, it } from "vitest";
import { balanceSeries, type JournalItem, latencySeries } from "../../web/src/series.ts";

const item = (id: number, amount: number, time: number): JournalItem => ({ id, type: "x", amount, time, measurement: null, detail: "" });
const ping = (prb_id: number, timestamp: number, min: number, avg: number, max: number, rcvd = 3) => ({ prb_id, timestamp, type: "ping", min, avg, max, sent: 3, rcvd });

describe("the balance over time", () => {
  it("walks back from the balance now through income and expense in the journal's order", () => {
    // Granted 1000 (id 1), spent 60 (id 2), earned 15 (id 3), spent 5 (id 4): balance now 950.
    const s = balanceSeries(950, [item(3, 15, 300), item(1, 1000, 100)], [item(4, 5, 400), item(2, 60, 200)], true, true);
    expect(s).toEqual({ t: [100, 200, 300, 400], balance: [1000, 940, 955, 950] });
  });

  it("starts where a list cut short ends, rather than drawing a balance that never was", () => {
    // Only the newest expense is listed (of two): any entry older than it might have an unlisted expense after it.
    const s = balanceSeries(950, [item(3, 15, 300), item(1, 1000, 100)], [item(4, 5, 400)], true, false);
    expect(s).toEqual({ t: [400], balance: [950] });
    // Listed whole, the same journal draws every point.
    expect(balanceSeries(950, [item(3, 15, 300), item(1, 1000, 100)], [item(4, 5, 400), item(2, 60, 200)], true, true).t).toHaveLength(4);
  });
});

describe("RTT across probes", () => {
  it("gives each time bucket the lowest minimum, the median of averages and the highest maximum, and its probes", () => {
    const s = latencySeries([ping(1, 0, 5, 10, 20), ping(2, 30, 1, 30, 90), ping(3, 59, 2, 20, 25), ping(1, 60, 4, 8, 9), ping(2, 61, 3, 6, 7)], 60);
    expect(s).toEqual({ t: [0, 60], min: [1, 3], median: [20, 7], max: [90, 9], probes: [3, 2] });
  });

  it("leaves out results without a reply", () => {
    expect(latencySeries([ping(1, 0, -1, -1, -1, 0), ping(2, 0, 5, 6, 7)], 60)).toMatchObject({ t: [0], median: [6], probes: [1] });
  });
});
