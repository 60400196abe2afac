// An appliance as a data source, end to end with real processes: Knot DNS in a namespace logs its queries and
// responses as dnstap to the agent's socket; the agent (its shipped bundle) keeps DNS statistics per minute, is
// stopped mid-minute and started again, and its records reach the edge exactly once. The agent's minute files must
// count every query the clients saw answered, the edge's merged answer must equal those files added up, and the
// edge's C-DNS file of the hour must hold exactly the sampled pairs of the agent's own files; the classifier's
// reports reach the edge as the agent wrote them.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Edge, LOCAL_SITES, provisionProbe, startEdge, startProbe, type ProbeProcess } from "../../scripts/local.ts";
import type { MinuteRecord } from "../../probe-agent/dnsstats/collector.ts";
import { dnsperf, queryFile } from "./dnsstats/traffic.ts";
import { netnsUnavailable, Netns } from "./netns.ts";
import { missingPrograms, type Server, startKnot } from "./servers.ts";
import { freePort, tempDir, until } from "./system.ts";

const why = netnsUnavailable() ?? missingPrograms("knotd", "knotc", "dnsperf") ??
  (existsSync("/usr/lib/x86_64-linux-gnu/knot/modules-3.2/dnstap.so") || readdirSync("/usr/lib").some((d) => existsSync(join("/usr/lib", d, "knot", "modules-3.2", "dnstap.so"))) ? null : "knot-module-dnstap is missing");
if (why) console.warn(`skipping the data-source end-to-end test: ${why}`);
const noCbor2 = (() => { try { execFileSync("/usr/bin/python3", ["-c", "import cbor2"], { stdio: "ignore" }); return false; } catch { return true; } })();

type Merged = { queries: number; responses: number; probes: number[]; datasets: { name: string; dimensions: [string, string]; data: Record<string, string | { val: string; count: number }[]>[] }[] };

describe.skipIf(why !== null)("DNS statistics from a Knot server's dnstap, through a real agent, to the edge", () => {
  let edge: Edge;
  let agent: ProbeProcess | null = null;
  let ns: Netns;
  let knot: Server | null = null;
  const state = tempDir("datasources");

  beforeAll(async () => {
    edge = await startEdge({ stateDir: join(state, "edge"), port: await freePort(), quiet: true });
    ns = new Netns("dtap");
  }, 120_000);
  afterAll(async () => {
    await agent?.stop();
    await knot?.stop();
    ns?.remove();
    await edge?.stop();
  });

  it("counts every answered query once, across an agent restart, at the agent and at the edge", async () => {
    const socketPath = join(state, "tap.sock");
    const probe = await provisionProbe(edge, join(state, "probe"), LOCAL_SITES[0]!, {
      heartbeat_s: 5, builtins: { enabled: false },
      dnsstats: { dnstap_socket: socketPath, upload: true, public: true, sample_rate: 0.1, sample_public: true },
      // And its classifier on the machine's loopback, where this test talks to the edge: reports every 2 s.
      classifier: { interface: "lo", interval_s: 2, plugins: ["port"], upload: true, public: true },
    });
    agent = startProbe(probe, { quiet: true });
    await until("the agent's dnstap socket", async () => existsSync(socketPath), 30_000, 100);
    queryFile(join(state, "queries"), 5000, 3);
    const started = Math.floor(Date.now() / 1000);
    knot = await startKnot(ns, `unix:${socketPath}`);
    const reports = [dnsperf(ns, join(state, "queries"), { server: "127.0.0.1", seconds: 2, qps: 400 })];
    // The server goes away and the agent is stopped (SIGTERM) mid-minute: the minute so far is written and spooled,
    // and sent after the restart; then the server comes back and more traffic follows.
    await knot.stop();
    await agent.stop();
    agent = startProbe(probe, { quiet: true });
    await until("the dnstap socket again", async () => existsSync(socketPath), 30_000, 100);
    knot = await startKnot(ns, `unix:${socketPath}`);
    reports.push(dnsperf(ns, join(state, "queries"), { server: "127.0.0.1", seconds: 2, qps: 400 }));
    // This time the agent stops while the server is still connected (its dnstap writer flushes within a second):
    // it must not wait for the server to hang up, and exits on its own.
    await new Promise((r) => setTimeout(r, 2000));
    const running = agent.process;
    const exited = new Promise<number | null>((r) => running.once("exit", (code) => r(code)));
    await agent.stop();
    expect(await exited).toBe(0);
    await knot.stop();
    knot = null;
    agent = startProbe(probe, { quiet: true });

    // What the clients saw answered (dnsperf's own report, and one readiness query per server start), and what the
    // agent wrote in its own minute files.
    const field = (report: string, name: string) => Number(report.match(new RegExp(`${name}:\\s+(\\d+)`))![1]);
    for (const r of reports) expect(field(r, "Queries completed")).toBe(field(r, "Queries sent"));
    const answered = reports.reduce((n, r) => n + field(r, "Queries completed"), 0) + 2;
    const dir = join(probe.stateDir, "dnsstats", "minutes");
    const files = readdirSync(dir).map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")) as MinuteRecord);
    const local = files.flatMap((m) => m.servers).reduce((n, s) => n + s.queries, 0);
    // Every query the server answered was logged to the agent and counted, once, across the agent's restart.
    expect(local).toBe(answered);
    const start = Math.floor(started / 60) * 60 - 60, stop = start + 5 * 60;
    const merged = await until("the edge to hold every minute", async () => {
      const res = (await (await fetch(`${edge.url}/api/v2/dnsstats/?start=${start}&stop=${stop}&probe=${probe.id}`)).json()) as Merged;
      return res.queries === local ? res : null;
    }, 60_000, 500);
    expect(merged.responses).toBe(files.flatMap((m) => m.servers).reduce((n, s) => n + s.responses, 0));
    const qtypes = new Map<string, number>();
    for (const s of files.flatMap((m) => m.servers)) {
      for (const c of (s.datasets.find((d) => d.name === "qtype")!.data[0]!["Qtype"] as { val: string; count: number }[])) qtypes.set(c.val, (qtypes.get(c.val) ?? 0) + c.count);
    }
    const qtype = merged.datasets.find((d) => d.name === "qtype")!;
    const edgeQtypes = new Map((qtype.data[0]!["Qtype"] as { val: string; count: number }[]).map((c) => [c.val, c.count]));
    expect([...edgeQtypes].sort()).toEqual([...qtypes].sort());
    // Every record went once: the generic API lists each (probe, timestamp) once and their minutes add up again.
    const raw = (await (await fetch(`${edge.url}/api/v2/measurements/7001/results/?start=${start}&probe_ids=${probe.id}`)).json()) as { minutes: MinuteRecord[] }[];
    expect(raw.flatMap((r) => r.minutes).flatMap((m) => m.servers).reduce((n, s) => n + s.queries, 0)).toBe(local);

    // The classifier's reports arrived too, each as the agent wrote it in its own reports file.
    const written = readFileSync(join(probe.stateDir, "classifier", "reports.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { start: number; end: number; apps: { label: string; flows: number }[] });
    type Traffic = { intervals: number; apps: { label: string; flows: number }[] };
    const traffic = await until("the edge to hold the traffic reports", async () => {
      const res = (await (await fetch(`${edge.url}/api/v2/traffic/?start=${Math.floor(written[0]!.start)}&stop=${Math.ceil(written.at(-1)!.end)}&probe=${probe.id}`)).json()) as Traffic;
      return res.intervals >= written.length ? res : null;
    }, 60_000, 500);
    const flows = new Map<string, number>();
    for (const r of written) for (const a of r.apps) flows.set(a.label, (flows.get(a.label) ?? 0) + a.flows);
    expect(new Map(traffic.apps.map((a) => [a.label, a.flows]))).toEqual(flows);

    // The sample: the edge's C-DNS file of each hour holds exactly the pairs of the agent's own files (both runs),
    // and Python's cbor2 reads it and the RFC's CDDL accepts it.
    if (noCbor2) return;
    const reader = join(import.meta.dirname, "dnsstats", "cdns_read.py");
    const cdnsDir = join(probe.stateDir, "dnsstats", "cdns");
    const pairsOf = (files: string[]) => execFileSync("/usr/bin/python3", [reader, ...files], { encoding: "utf8" }).trim().split("\n").filter(Boolean).sort();
    const localPairs = pairsOf(readdirSync(cdnsDir).filter((f) => f.endsWith(".cdns.gz")).map((f) => join(cdnsDir, f)));
    expect(localPairs.length).toBeGreaterThan(50);
    const listed = await until("the edge to hold the sample", async () => {
      const res = (await (await fetch(`${edge.url}/api/v2/dnsstats/samples/?start=${start}&stop=${stop}&probe=${probe.id}`)).json()) as { results: { pairs: number; url: string }[] };
      return res.results.reduce((n, r) => n + r.pairs, 0) === localPairs.length ? res.results : null;
    }, 60_000, 500);
    const downloaded = await Promise.all(listed.map(async (entry, i) => {
      const path = join(state, `edge-${i}.cdns.gz`);
      writeFileSync(path, Buffer.from(await (await fetch(entry.url)).arrayBuffer()));
      return path;
    }));
    expect(pairsOf(downloaded)).toEqual(localPairs);
  }, 180_000);
});
