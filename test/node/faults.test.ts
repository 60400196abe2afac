// Faults with real processes: the edge (wrangler + workerd) killed with SIGKILL while a probe's results are
// arriving, and a one-off with a future start stopped before it starts. Counted against the probe's own journal:
// 0 lost, 0 stored twice, 0 charged twice.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { PingResult } from "../../protocol/index.ts";
import { Spool } from "../../probe-agent/spool.ts";
import { admin, type Edge, killEdge, LOCAL_SITES, provisionProbe, startEdge, startProbe, type ProbeProcess } from "../../scripts/local.ts";
import { freePort, tempDir, until } from "./system.ts";

let edge: Edge | undefined;
let agent: ProbeProcess | undefined;
afterEach(async () => {
  await agent?.stop();
  await edge?.stop();
  agent = edge = undefined;
});

type Shard = { shard: string; results_written: number; pending_results: number };

describe("the edge killed while results arrive", () => {
  it("stores and charges every result of the probe's journal exactly once after it restarts", async () => {
    const BACKLOG = 10_000;
    const state = tempDir("kill-ingest");
    const port = await freePort();
    // The backlog is fabricated (runs of an hourly measurement from the last hours): the edge's admission
    // tolerances are wide, as this is about durability, not admission (test/edge/attacks/ has those).
    const vars = { RESULT_CLOCK_SKEW_S: String(2 * 86_400), RESULT_EXTRA_RUNS: "1000000" };
    edge = await startEdge({ stateDir: state, port, quiet: true, vars });
    const key = (await admin<{ key: string }>(edge, "/admin/keys", { label: "faults", credits: 1_000_000 })).key;
    const probe = await provisionProbe(edge, join(state, "probe"), LOCAL_SITES[0]!, { heartbeat_s: 2, backoff_ms: { base: 200, cap: 2000 }, builtins: { enabled: false } });
    agent = startProbe(probe, { quiet: true });
    await until("the probe to connect", async () => ((await (await fetch(`${edge!.url}/api/v2/probes/${probe.id}/`)).json()) as { status: { id: number } }).status.id === 1);
    const res = await fetch(`${edge.url}/api/v2/measurements/`, {
      method: "POST", headers: { "Content-Type": "application/json", Authorization: `Key ${key}` },
      body: JSON.stringify({
        definitions: [{ type: "ping", af: 4, target: "127.0.0.1", description: "killed", interval: 3600, packets: 1 }],
        probes: [{ type: "probes", value: String(probe.id), requested: 1 }], start_time: Math.floor(Date.now() / 1000) + 86_400,
      }),
    });
    const id = ((await res.json()) as { measurements: number[] }).measurements[0]!;
    await until("the probe to be given it", async () => ((await (await fetch(`${edge!.url}/api/v2/measurements/${id}/`)).json()) as { probes_scheduled: number }).probes_scheduled === 1);
    await agent.stop();
    const spool = new Spool(probe.stateDir);
    const first = Math.floor(Date.now() / 1000) - 7_200;
    await Promise.all(Array.from({ length: BACKLOG }, (_, i): Promise<unknown> => spool.add({
      fw: 5020, mver: "1.0.0", lts: -1, msm_id: id, msm_name: "Ping", prb_id: probe.id, timestamp: first + i, from: "127.0.0.1",
      src_addr: "127.0.0.1", dst_addr: "127.0.0.1", dst_name: "127.0.0.1", af: 4, type: "ping", proto: "ICMP", size: 48, sent: 1,
      rcvd: 1, dup: 0, min: 0.05, avg: 0.05, max: 0.05, step: 3600, ttl: 64, result: [{ rtt: 0.05 }],
    } satisfies PingResult)));
    await spool.close();

    // The backlog starts flowing; the edge dies (SIGKILL: no shutdown, every socket dropped) once part of it is in.
    agent = startProbe(probe, { quiet: true });
    const shardOf = async (e: Edge) => (await (await fetch(`${e.url}/admin/controllers`, { headers: { Authorization: `Bearer ${e.secrets.ADMIN_TOKEN}` } })).json() as Shard[]).find((s) => s.shard === "weur-0")!;
    await until("part of the backlog to be stored", async () => (await shardOf(edge!)).pending_results > 0, 60_000, 10);
    await killEdge(edge);
    const held = Spool.unacknowledged(probe.stateDir).length;
    expect(held).toBeGreaterThan(0);

    edge = await startEdge({ stateDir: state, port, quiet: true, vars });
    await until("the journal to drain", async () => Spool.unacknowledged(probe.stateDir).length === 0, 120_000, 200);
    await admin(edge, "/admin/controllers/weur-0/flush", {});
    const shard = await shardOf(edge);
    // Stored once each: the count R2 was written with is the journal's, and every timestamp is there.
    expect(shard.results_written + shard.pending_results).toBe(BACKLOG);
    const stored = (await (await fetch(`${edge.url}/api/v2/measurements/${id}/results/?start=${first}`)).json()) as PingResult[];
    expect(stored.map((r) => r.timestamp).sort((a, b) => a - b)).toEqual(Array.from({ length: BACKLOG }, (_, i) => first + i));
    // Charged once each: 1 credit per result of a 1-packet periodic ping.
    const items = (await (await fetch(`${edge.url}/api/v2/credits/expense-items/?page_size=1000`, { headers: { Authorization: `Key ${key}` } })).json()) as { results: { measurement: number; amount: number }[] };
    expect(items.results.filter((i) => i.measurement === id).reduce((n, i) => n + i.amount, 0)).toBe(BACKLOG);
    expect(agent.output()).not.toMatch(/refused result/);
  }, 300_000);
});

describe("a one-off with a future start, stopped before it starts", () => {
  it("never runs", async () => {
    const state = tempDir("stop-early");
    edge = await startEdge({ stateDir: state, port: await freePort(), quiet: true });
    const key = (await admin<{ key: string }>(edge, "/admin/keys", { label: "early", credits: 10_000 })).key;
    const probe = await provisionProbe(edge, join(state, "probe"), LOCAL_SITES[0]!, { builtins: { enabled: false } });
    agent = startProbe(probe, { quiet: true });
    await until("the probe to connect", async () => ((await (await fetch(`${edge!.url}/api/v2/probes/${probe.id}/`)).json()) as { status: { id: number } }).status.id === 1);
    const start = Math.floor(Date.now() / 1000) + 6;
    const res = await fetch(`${edge.url}/api/v2/measurements/`, {
      method: "POST", headers: { "Content-Type": "application/json", Authorization: `Key ${key}` },
      body: JSON.stringify({
        definitions: [{ type: "ping", af: 4, target: "127.0.0.1", description: "never", packets: 1 }],
        probes: [{ type: "probes", value: String(probe.id), requested: 1 }], is_oneoff: true, start_time: start,
      }),
    });
    const id = ((await res.json()) as { measurements: number[] }).measurements[0]!;
    await until("the probe to be given it", async () => ((await (await fetch(`${edge!.url}/api/v2/measurements/${id}/`)).json()) as { probes_scheduled: number }).probes_scheduled === 1);
    expect((await fetch(`${edge.url}/api/v2/measurements/${id}/`, { method: "DELETE", headers: { Authorization: `Key ${key}` } })).status).toBe(204);
    await until("the probe to be told", async () => agent!.output().includes(`measurement ${id} stopped`), 30_000, 100);
    // Past its start, and then some: nothing ran, nothing was sent.
    await new Promise((r) => setTimeout(r, (start + 3) * 1000 - Date.now()));
    expect(Spool.unacknowledged(probe.stateDir)).toEqual([]);
    expect(agent.output()).not.toMatch(new RegExp(`refused result|measurement ${id} failed`));
    expect(await (await fetch(`${edge.url}/api/v2/measurements/${id}/results/`)).json()).toEqual([]);
  }, 120_000);
});
