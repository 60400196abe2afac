// Atlas's status checks on a ping measurement, as a monitoring system polls them: each probe's latest RTT and loss,
// alerts by loss and by RTT against the median of recent runs, and a global alert past the permitted count.
import { describe, expect, it } from "vitest";
import { call, connect, createPing, enroll, errorOf, newKey, pingResult } from "./harness.ts";

type Check = { global_alert: boolean; total_alerts: number; probes: Record<string, { alert: boolean; alert_reasons?: string[]; last: number | null;
  last_packet_loss: number; source: string; median?: number | null; all?: (number | null)[] }> };

const ping = (msm: number, probe: number, t: number, rtts: (number | null)[]) => {
  const got = rtts.filter((x): x is number => x !== null);
  return { ...pingResult(msm, probe, t), sent: rtts.length, rcvd: got.length, min: got.length ? Math.min(...got) : -1,
    max: got.length ? Math.max(...got) : -1, avg: got.length ? got.reduce((a, b) => a + b, 0) / got.length : -1,
    result: rtts.map((rtt) => (rtt === null ? { x: "*" as const } : { rtt })) };
};

describe("status-check", () => {
  it("answers each probe's latest RTT and loss, and alerts as Atlas's parameters say", async () => {
    const key = await newKey("monitor");
    const [a, b] = [await enroll({ country_code: "GR" }), await enroll({ country_code: "GR" })];
    const sockets = [(await connect(a)).socket, (await connect(b)).socket];
    // One probe named by id, the other chosen by country: each probe's `source` says which brought it.
    const res = await createPing(key, [{ type: "probes", value: String(a.id), requested: 1 }, { type: "country", value: "GR", requested: 1 }], { interval: 300 });
    const msm = ((await res.json()) as { measurements: number[] }).measurements[0]!;
    for (const s of sockets) await s.next("measure");
    const t = Math.floor(Date.now() / 1000) - 900;
    // Probe a: steady ~10 ms, then 40 ms with nothing lost. Probe b: fine, then 2 of 3 lost.
    sockets[0]!.send({ type: "results", results: [10, 11, 10, 40].map((rtt, i) => ({ seq: i + 1, result: ping(msm, a.id, t + i * 300, [rtt, rtt + 1, rtt + 2]) })) });
    sockets[1]!.send({ type: "results", results: [{ seq: 1, result: ping(msm, b.id, t, [5, 5, 5]) }, { seq: 2, result: ping(msm, b.id, t + 300, [6, null, null]) }] });
    for (const s of sockets) await s.next("ack");

    const check = async (query = "") => {
      const r = await call(`/api/v2/measurements/${msm}/status-check/${query}`);
      expect(r.status, await r.clone().text()).toBe(200);
      return (await r.json()) as Check;
    };
    // Defaults: alert on loss over 75 %; b lost 66.67 %, so nothing alerts; `all` only for alerting probes.
    const plain = await check();
    expect(plain).toEqual({
      global_alert: false, total_alerts: 0,
      probes: {
        [a.id]: { alert: false, last: 40, last_packet_loss: 0, source: `Probe: ${a.id}` },
        [b.id]: { alert: false, last: 6, last_packet_loss: 66.67, source: "Country: GR" },
      },
    });
    // Stricter loss: b alerts, shows every packet, and one alert is past the permitted none.
    const strict = await check("?max_packet_loss=50");
    expect(strict.probes[b.id]).toEqual({ alert: true, alert_reasons: ["loss"], last: 6, last_packet_loss: 66.67, source: "Country: GR", all: [6, null, null] });
    expect(strict).toMatchObject({ global_alert: true, total_alerts: 1 });
    expect((await check("?max_packet_loss=50&permitted_total_alerts=1")).global_alert).toBe(false);
    // RTT against the median of the last 4 runs (10, 10, 11, 40 → 10.5): 40 ms is 29.5 over it.
    const rtt = await check("?lookback=4&median_rtt_threshold=20&show_all=true");
    expect(rtt.probes[a.id]).toMatchObject({ alert: true, alert_reasons: ["rtt"], last: 40, median: 10.5, all: [40, 41, 42] });
    expect(rtt.probes[b.id]).toMatchObject({ alert: false, median: 5.5, all: [6, null, null] });
    expect((await check("?lookback=4&median_rtt_threshold=30")).probes[a.id]!.alert).toBe(false);
    expect((await check("?lookback=1&median_rtt_threshold=0")).total_alerts).toBe(0);  // the latest against itself
    for (const s of sockets) s.ws.close();
  });

  it("refuses what it cannot answer, naming it", async () => {
    const key = await newKey("monitor");
    const probe = await enroll({ country_code: "GR" });
    const trace = await call("/api/v2/measurements/", {
      method: "POST", headers: { Authorization: `Key ${key}`, "Content-Type": "application/json" },
      body: JSON.stringify({ definitions: [{ type: "traceroute", af: 4, target: "192.0.2.1", description: "t" }], probes: [{ type: "probes", value: String(probe.id), requested: 1 }], is_oneoff: true }),
    });
    const traceId = ((await trace.json()) as { measurements: number[] }).measurements[0]!;
    const notPing = await call(`/api/v2/measurements/${traceId}/status-check/`);
    expect(notPing.status).toBe(400);
    expect((await errorOf(notPing)).detail).toContain("ping measurements");
    const pingId = ((await (await createPing(key, [{ type: "probes", value: String(probe.id), requested: 1 }])).json()) as { measurements: number[] }).measurements[0]!;
    for (const [query, parameter] of [["?max_packet_loss=101", "max_packet_loss"], ["?lookback=0", "lookback"], ["?median_rtt_threshold=-1", "median_rtt_threshold"], ["?treshold=5", "treshold"]]) {
      const r = await call(`/api/v2/measurements/${pingId}/status-check/${query}`);
      expect(r.status, query).toBe(400);
      expect((await errorOf(r)).errors[0]!.source.parameter).toBe(parameter);
    }
    expect((await call("/api/v2/measurements/99999999/status-check/")).status).toBe(404);
  });
});
