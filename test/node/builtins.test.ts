// Built-in measurements: the schedule (anchor traceroutes reveal the first and second hop, which then get pinged),
// and end to end: a real agent's built-in results reach the edge under the reserved ids and read back as Atlas results.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { Builtins, firstHops } from "../../probe-agent/builtins.ts";
import { type Assignment, MeasurementSpec, PingResult, TracerouteResult } from "../../protocol/index.ts";
import { type Edge, LOCAL_SITES, provisionProbe, type ProbeProcess, startEdge, startProbe } from "../../scripts/local.ts";
import { freePort, icmpUnavailable, tempDir, until } from "./system.ts";

const trace = (hops: string[], dst: string): TracerouteResult => ({
  fw: 5020, mver: "1.0.0", lts: 0, msm_id: 5001, msm_name: "Traceroute", prb_id: 1, timestamp: 1, from: "", src_addr: "10.0.1.2",
  dst_addr: dst, dst_name: dst, af: 4, type: "traceroute", proto: "ICMP", paris_id: 16, size: 48, endtime: 2,
  result: hops.map((h, i) => ({ hop: i + 1, result: h === "*" ? [{ x: "*" as const }] : [{ from: h, rtt: 1, size: 76, ttl: 64 }] })),
});

describe("built-in schedule", () => {
  it("finds the first and second hop, never the anchor itself", () => {
    expect(firstHops(trace(["10.0.1.1", "10.0.2.2", "193.0.14.129"], "193.0.14.129"))).toEqual(["10.0.1.1", "10.0.2.2"]);
    expect(firstHops(trace(["*", "10.0.2.2"], "193.0.14.129"))).toEqual([null, "10.0.2.2"]);
    expect(firstHops(trace(["127.0.0.1"], "127.0.0.1"))).toEqual([null, null]);
  });

  it("traceroutes and pings each anchor under its reserved id, then pings the hops it found", () => {
    vi.useFakeTimers();
    try {
      const runs: { a: Assignment; onResult?: (r: TracerouteResult) => void }[] = [];
      const b = new Builtins({ enabled: true, anchors: ["193.0.14.129", "192.0.2.53"], ping_interval_s: 60, traceroute_interval_s: 120 },
        (a, opts) => runs.push({ a, onResult: opts.onResult as ((r: TracerouteResult) => void) | undefined }));
      b.start();
      vi.advanceTimersByTime(60_000);
      const ids = () => runs.map((r) => r.a.msm_id).sort((x, y) => x - y);
      expect(ids()).toEqual([1001, 1002, 5001, 5002]);
      runs.find((r) => r.a.msm_id === 5001)!.onResult!(trace(["10.0.1.1", "10.0.2.2", "193.0.14.129"], "193.0.14.129"));
      runs.length = 0;
      vi.advanceTimersByTime(60_000);
      expect(runs.map((r) => [r.a.msm_id, (r.a.spec as { target: string }).target])).toEqual(
        [[1001, "193.0.14.129"], [1002, "192.0.2.53"], [1, "10.0.1.1"], [2, "10.0.2.2"]]);
      b.stop();
      runs.length = 0;
      vi.advanceTimersByTime(600_000);
      expect(runs).toHaveLength(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it("asks the probe's own resolvers for the check name the edge gives, A and AAAA, with the pings; never without one", () => {
    vi.useFakeTimers();
    try {
      const runs: { a: Assignment; allowPrivate?: boolean }[] = [];
      const b = new Builtins({ enabled: true, anchors: ["193.0.14.129"], ping_interval_s: 60, traceroute_interval_s: 120 },
        (a, opts) => runs.push({ a, allowPrivate: opts.allowPrivate }));
      b.start();
      vi.advanceTimersByTime(60_000);
      expect(runs.map((r) => r.a.msm_id)).not.toContain(3001);
      b.setResolverCheck("check.vantage.test");
      runs.length = 0;
      vi.advanceTimersByTime(60_000);
      const checks = runs.filter((r) => r.a.msm_id === 3001 || r.a.msm_id === 3002);
      expect(checks.map((r) => [r.a.msm_id, r.a.spec])).toEqual([
        [3001, expect.objectContaining({ type: "dns", use_probe_resolver: true, query_type: "A", query_argument: "check.vantage.test", set_rd_bit: true, include_abuf: true })],
        [3002, expect.objectContaining({ type: "dns", use_probe_resolver: true, query_type: "AAAA", query_argument: "check.vantage.test" })],
      ]);
      // A home probe's resolver is its router, a private address.
      expect(checks.every((r) => r.allowPrivate)).toBe(true);
      // Every spec is complete as the agent's own schema reads it.
      for (const r of checks) expect(MeasurementSpec.parse(r.a.spec)).toEqual(r.a.spec);
      b.setResolverCheck(null);
      runs.length = 0;
      vi.advanceTimersByTime(60_000);
      expect(runs.map((r) => r.a.msm_id)).not.toContain(3001);
      b.stop();
    } finally {
      vi.useRealTimers();
    }
  });

  it("can be switched off", () => {
    vi.useFakeTimers();
    try {
      const runs: unknown[] = [];
      new Builtins({ enabled: false, anchors: ["193.0.14.129"], ping_interval_s: 5, traceroute_interval_s: 5 }, (a) => runs.push(a)).start();
      vi.advanceTimersByTime(60_000);
      expect(runs).toHaveLength(0);
    } finally {
      vi.useRealTimers();
    }
  });
});

const noIcmp = icmpUnavailable();
if (noIcmp) console.warn(`skipping the built-in end-to-end test: ${noIcmp}`);

describe.skipIf(noIcmp !== null)("built-in results through the edge", () => {
  const state = tempDir("builtins");
  let edge: Edge;
  let agent: ProbeProcess;
  let probeId: number;
  beforeAll(async () => {
    edge = await startEdge({ stateDir: state, port: await freePort(), quiet: true });
    const probe = await provisionProbe(edge, join(state, "probe"), LOCAL_SITES[0]!,
      { builtins: { enabled: true, anchors: ["127.0.0.1"], ping_interval_s: 5, traceroute_interval_s: 5 } });
    probeId = probe.id;
    agent = startProbe(probe, { quiet: true });
  });
  afterAll(async () => {
    await agent?.stop();
    await edge?.stop();
  });

  it("stores the probe's built-in ping and traceroute under 1001 and 5001", async () => {
    const read = async (id: number) => (await (await fetch(`${edge.url}/api/v2/measurements/${id}/results/?probe_ids=${probeId}`)).json()) as unknown[];
    const pings = await until("a built-in ping result", async () => { const r = await read(1001); return r.length ? r : null; }, 90_000, 1000);
    const traces = await until("a built-in traceroute result", async () => { const r = await read(5001); return r.length ? r : null; }, 90_000, 1000);
    expect(PingResult.parse(pings[0])).toMatchObject({ msm_id: 1001, prb_id: probeId, dst_addr: "127.0.0.1", rcvd: 3, step: 5 });
    expect(TracerouteResult.parse(traces[0])).toMatchObject({ msm_id: 5001, prb_id: probeId, dst_addr: "127.0.0.1", paris_id: 16 });
    const object = (await (await fetch(`${edge.url}/api/v2/measurements/5001/`)).json()) as Record<string, unknown>;
    expect(object).toMatchObject({ id: 5001, type: "traceroute", is_oneoff: false, tags: ["builtin"], description: "Built-in: traceroute to anchor 1" });
  });
});
