// Faults with real processes: the edge (wrangler + workerd) killed with SIGKILL while a probe's results are
// arriving, a one-off with a future start stopped before it starts, a result refused among valid ones, and the probe's
// link cut for a minute and for ten. Counted against the probe's own journal:
// 0 lost, 0 stored twice, 0 charged twice.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { type AddressInfo, connect as connectTcp, createServer, type Socket } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { PingResult } from "../../protocol/index.ts";
import { Spool } from "../../probe-agent/spool.ts";
import { admin, type Edge, killEdge, LOCAL_SITES, provisionProbe, startEdge, startProbe, type ProbeProcess } from "../../scripts/local.ts";
import { freePort, spooledBacklog, tempDir, until } from "./system.ts";

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
    const { id, first } = await spooledBacklog({ edge, key, probe, agent, count: BACKLOG, packets: 1, description: "killed" });

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

describe("a frame with one result the controller refuses among valid ones", () => {
  it("stores the valid ones; the agent drops the refused one from its journal but logs it and keeps it with the reason", async () => {
    const state = tempDir("refused");
    const vars = { RESULT_CLOCK_SKEW_S: String(2 * 86_400), RESULT_EXTRA_RUNS: "1000000" };
    edge = await startEdge({ stateDir: state, port: await freePort(), quiet: true, vars });
    const key = (await admin<{ key: string }>(edge, "/admin/keys", { label: "refused", credits: 100_000 })).key;
    const probe = await provisionProbe(edge, join(state, "probe"), LOCAL_SITES[0]!, { builtins: { enabled: false } });
    agent = startProbe(probe, { quiet: true });
    await until("the probe to connect", async () => ((await (await fetch(`${edge!.url}/api/v2/probes/${probe.id}/`)).json()) as { status: { id: number } }).status.id === 1);
    // Ten valid results in the journal; then one for a measurement this probe was never given (a journal from an
    // earlier enrolment, say); then ten more valid ones. They go in one frame.
    const { id, first } = await spooledBacklog({ edge, key, probe, agent, count: 10, packets: 1 });
    const spool = new Spool(probe.stateDir);
    const template = Spool.unacknowledged(probe.stateDir)[0]!.result as PingResult;
    const valid = (ts: number) => ({ ...template, timestamp: ts });
    const stranger = await spool.add({ ...valid(first + 10), msm_id: 99_999_999 });
    for (let i = 11; i <= 20; i++) await spool.add(valid(first + i));
    await spool.close();
    agent = startProbe(probe, { quiet: true });
    await until("the journal to drain", async () => Spool.unacknowledged(probe.stateDir).length === 0, 60_000, 200);

    const stored = (await (await fetch(`${edge.url}/api/v2/measurements/${id}/results/?start=${first}`)).json()) as PingResult[];
    expect(stored.map((r) => r.timestamp - first)).toEqual([...Array.from({ length: 10 }, (_, i) => i), ...Array.from({ length: 10 }, (_, i) => 11 + i)]);
    // The refused one: in the agent's log, and kept with the controller's reason and the result itself.
    expect(agent.output()).toMatch(new RegExp(`controller refused result ${stranger.seq}: measurement 99999999 was not given to this probe`));
    const kept = readFileSync(join(probe.stateDir, "refused.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { seq: number; reason: string; result: PingResult });
    expect(kept).toEqual([expect.objectContaining({ seq: stranger.seq, reason: "measurement 99999999 was not given to this probe", result: expect.objectContaining({ msm_id: 99_999_999, timestamp: first + 10 }) })]);
  }, 120_000);
});

describe("the probe's link to the edge cut", () => {
  it("for a minute: goes on measuring into its journal, finds the dead link, and delivers every result once when it is back", () => linkCut(60), 240_000);
  // Long past the controller's silence limit (95 s), with ten minutes of results in the journal: still every one once.
  it("for ten minutes: the same", () => linkCut(600), 900_000);
});

/** Cuts the probe's link to the edge for `seconds`, then counts what the edge stored against the probe's journal. */
async function linkCut(seconds: number): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("this test cuts a link with nftables: it needs root (CI runs as root)");
  const state = tempDir("link-cut");
  edge = await startEdge({ stateDir: state, port: await freePort(), quiet: true });
  // The probe reaches the edge through a TCP relay of this test's; the cut drops that relay's packets in the
  // kernel (nftables on loopback): no RST, no FIN, the link just goes silent, as a cable pulled upstream.
  const upstream = new URL(edge.url);
  const open = new Set<Socket>();
  const relay = createServer((client) => {
    const up = connectTcp(Number(upstream.port), upstream.hostname);
    for (const s of [client, up]) { open.add(s); s.on("close", () => open.delete(s)); }
    client.pipe(up).pipe(client);
    client.on("error", () => up.destroy());
    up.on("error", () => client.destroy());
  });
  await new Promise<void>((r) => relay.listen(0, "127.0.0.1", () => r()));
  const relayPort = (relay.address() as AddressInfo).port;
  const probe = await provisionProbe(edge, join(state, "probe"), LOCAL_SITES[0]!, {
    registration_urls: [`http://127.0.0.1:${relayPort}`], heartbeat_s: 2, backoff_ms: { base: 500, cap: 3000 },
    builtins: { enabled: true, anchors: ["127.0.0.1"], ping_interval_s: 5, traceroute_interval_s: 86_400 },
  });
  agent = startProbe(probe, { quiet: true });
  await until("the probe to connect", async () => ((await (await fetch(`${edge!.url}/api/v2/probes/${probe.id}/`)).json()) as { status: { id: number } }).status.id === 1);
  // Connected is reported on the hello; the resume token follows it. Cut only once the probe holds one.
  await until("the probe to hold a resume token", async () => /holding a resume token/.test(agent!.output()), 30_000, 100);
  const table = `vantage_cut_${relayPort}`;
  try {
    execFileSync("nft", ["-f", "-"], { input: `table inet ${table} {\n chain input { type filter hook input priority -10; tcp dport ${relayPort} drop; tcp sport ${relayPort} drop; }\n}\n` });
    await new Promise((r) => setTimeout(r, seconds * 1000));
  } finally {
    execFileSync("nft", ["delete", "table", "inet", table]);
  }
  const connects = () => agent!.output().match(/connected to controller/g)?.length ?? 0;
  await until("the probe to reconnect", async () => connects() >= 2, 60_000, 200).catch((e: unknown) => { throw new Error(`${String(e)}\n${agent!.output().slice(-3000)}`); });
  // Results made during the cut are journalled; now every one reaches the edge.
  await until("the journal to drain", async () => Spool.unacknowledged(probe.stateDir).length === 0, 60_000, 200).catch((e: unknown) => { throw new Error(`${String(e)}\n${agent!.output().slice(-3000)}`); });
  await agent.stop();
  const made = Number(readFileSync(join(probe.stateDir, "spool", "acked"), "utf8"));
  expect(made).toBeGreaterThanOrEqual(seconds / 5);  // a built-in ping every 5 s through the whole cut
  await admin(edge, "/admin/controllers/weur-0/flush", {});
  const shard = (await (await fetch(`${edge.url}/admin/controllers`, { headers: { Authorization: `Bearer ${edge.secrets.ADMIN_TOKEN}` } })).json() as Shard[]).find((s) => s.shard === "weur-0")!;
  // Every acknowledged result stored once; a built-in made in the last instant before the agent stopped may be
  // stored and not yet acknowledged, never more than the journal still holds.
  const stored = shard.results_written + shard.pending_results;
  expect(stored).toBeGreaterThanOrEqual(made);
  expect(stored).toBeLessThanOrEqual(made + Spool.unacknowledged(probe.stateDir).length);
  expect(agent.output()).toMatch(/controller connection closed/);
  // Back with the resume token its controller gave it, not through registration.
  expect(agent.output()).toMatch(/connected to controller weur-0 \(resumed, without registering\)/);
  expect(agent.output()).not.toMatch(/refused result/);
  for (const s of open) s.destroy();
  await new Promise<void>((r) => relay.close(() => r()));
}
