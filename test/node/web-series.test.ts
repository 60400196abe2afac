// The console's numbers (web/src/series.ts), apart from the browser: what its charts and their CSV downloads show.
import { describe, expect, it } from "vitest";
import {
  balanceSeries, countryMedians, distanceDensity, distanceKm, fibreFloorMs, gridOf, groupSeries, type JournalItem, latencySeries, lossColour,
  type ProbeFacts, rttColour, rttFrames, sampleOf,
} from "../../web/src/series.ts";

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

describe("the DNSMON grid", () => {
  const dns = (prb_id: number, timestamp: number, rt: number | null) =>
    rt === null ? { prb_id, timestamp, type: "dns", error: { timeout: 5000 } } : { prb_id, timestamp, type: "dns", result: { rt, size: 45 } };

  it("reads a DNS answer's time, a lost query, a ping's loss, and the first resolver's answer", () => {
    expect(sampleOf(dns(1, 0, 12.5))).toEqual({ rtt: 12.5, lost: 0 });
    expect(sampleOf(dns(1, 0, null))).toEqual({ rtt: null, lost: 1 });
    expect(sampleOf(ping(1, 0, 5, 6, 7, 2))).toEqual({ rtt: 6, lost: expect.closeTo(1 / 3) });
    expect(sampleOf({ type: "dns", timestamp: 0, resultset: [{ result: { rt: 3 } }, { error: {} }] })).toEqual({ rtt: 3, lost: 0 });
    expect(sampleOf({ type: "traceroute", timestamp: 0 })).toBeNull();
  });

  it("bins each row's results in equal time columns: median RTT, share lost, count; empty cells null", () => {
    const results = [dns(7, 0, 10), dns(7, 10, 30), dns(7, 20, null), dns(9, 65, 100), dns(9, 119, 300), dns(9, 120, 5), dns(8, 5, 1)];
    // Rows 7 and 9 only (8 is not asked for); two columns of 60 s over [0, 120): t = 120 is outside.
    const g = gridOf(results, [7, 9], (r) => r.prb_id, 0, 120, 2);
    expect(g).toEqual([
      [{ rtt: 20, lost: 1 / 3, n: 3 }, null],
      [null, { rtt: 200, lost: 0, n: 2 }],
    ]);
  });

  it("colours as DNSMON: green to 60 ms, red from 250 ms, dark when nothing answered, grey without results", () => {
    const cell = (rtt: number | null, lost = 0) => ({ rtt, lost, n: 1 });
    expect(rttColour(cell(10))).toBe(rttColour(cell(60)));
    expect(rttColour(cell(250))).toBe(rttColour(cell(900)));
    expect(rttColour(cell(60))).not.toBe(rttColour(cell(155)));
    expect(rttColour(cell(null, 1))).toBe("#3b0d0c");
    expect(rttColour(null)).toBe("#e6e9ed");
    expect(lossColour(cell(5, 0))).toBe(rttColour(cell(5)));
    expect(lossColour(cell(null, 1))).toBe(rttColour(cell(900)));
  });
});

describe("a measurement's charts by place and network", () => {
  const facts = (id: number, country_code: string, asn_v4: number, lon: number, lat: number): [number, ProbeFacts] =>
    [id, { id, country_code, asn_v4, geometry: { coordinates: [lon, lat] } }];
  // Amsterdam, Rotterdam (same country, two networks) and Tokyo.
  const probes = new Map([facts(1, "NL", 1136, 4.9, 52.37), facts(2, "NL", 3333, 4.48, 51.92), facts(3, "JP", 2497, 139.7, 35.7)]);
  const results = [ping(1, 0, 9, 10, 11), ping(2, 10, 19, 20, 21), ping(3, 20, 239, 250, 260), ping(1, 60, 11, 12, 13), ping(2, 70, 29, 30, 31), ping(3, 80, 0, 0, 0, 0)];

  it("groups by country or network (LatencyMON), absolute or relative to each group's lowest", () => {
    expect(groupSeries(results, probes, "country", 60, false)).toEqual({ t: [0, 60], groups: [{ label: "NL", values: [15, 21] }, { label: "JP", values: [250, null] }] });
    expect(groupSeries(results, probes, "country", 60, true).groups[0]).toEqual({ label: "NL", values: [0, 6] });
    expect(groupSeries(results, probes, "asn", 60, false).groups.map((g) => g.label)).toEqual(["AS1136", "AS3333", "AS2497"]);
    expect(groupSeries(results, probes, "probe", 60, false, 1).groups).toEqual([{ label: "probe 1", values: [10, 12] }]);
  });

  it("gives the RTT map each probe's RTT per frame, lost as null", () => {
    const frames = rttFrames(results, 60);
    expect(frames.map((f) => f.t)).toEqual([0, 60]);
    expect([...frames[1]!.rtts]).toEqual([[1, 12], [2, 30], [3, null]]);
  });

  it("takes each country's median of its probes' medians", () => {
    expect(countryMedians(results, probes)).toEqual([{ country: "NL", probes: 2, median: 18 }, { country: "JP", probes: 1, median: 250 }]);
  });

  it("places results by distance from the target, or from the fastest probe when the target's place is unknown", () => {
    expect(distanceKm([4.9, 52.37], [139.7, 35.7])).toBeCloseTo(9290, -2);  // Amsterdam–Tokyo
    expect(fibreFloorMs(9290)).toBeCloseTo(92.9);
    const d = distanceDensity(results, probes);
    expect(d.origin).toEqual({ probe: 1, rtt: 9 });
    expect(d.points.map((p) => Math.round(p.km / 10) * 10)).toEqual([0, 60, 9290, 0, 60].map((k) => (k === 9290 ? Math.round(distanceKm([4.9, 52.37], [139.7, 35.7]) / 10) * 10 : k)));
    // Every answered result is in one 100 km × 3 ms bin; none was faster than light in fibre from the fastest probe.
    expect([...d.bins.values()].reduce((a, b) => a + b, 0)).toBe(5);
    for (const p of d.points) expect(p.rtt).toBeGreaterThanOrEqual(fibreFloorMs(p.km));
    expect(distanceDensity(results, probes, [139.7, 35.7]).origin).toBeNull();
  });
});
