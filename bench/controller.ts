// `npm run bench:controller`: 10,000 simulated probes (real keys, real registration and protocol) on one controller,
// through wrangler dev: registration with connection, workerd memory per probe, fan-out of a 1,000-probe
// measurement, ingestion with them all connected, then a reconnect storm — the edge killed as a deploy kills it
// (every socket dropped) and started again, every probe reconnecting at once with the resume token its controller
// gave it, as the agent does (falling back to registration if it is refused; retrying with the agent's backoff).
// `BENCH_CONTROLLER_PROBES` and `BENCH_CONTROLLER_SITES` (1: one controller) change the size. Probes reach the
// Worker's own workerd, as they reach the edge in production; `BENCH_CONTROLLER_VIA_PROXY=1` sends them through
// wrangler dev's proxy instead, which runs out of descriptors past ~4,500 probes (sim.ts directEdge).
// Not a test: numbers depend on the machine (state it when you record them in docs/benchmarks.md).
import WebSocket from "ws";
import { backoffDelay } from "../probe-agent/agent.ts";
import { controllers, directEdge, enrollProbes, fanOut, ingestFrames, joinProbes, openSocket, quantile, registerProbes, type SimProbe, SITES, withBenchEdge, workerdRssMiB } from "./sim.ts";

const PROBES = Number(process.env.BENCH_CONTROLLER_PROBES ?? 10_000);
const SITE_COUNT = Number(process.env.BENCH_CONTROLLER_SITES ?? 1);
const VIA_PROXY = process.env.BENCH_CONTROLLER_VIA_PROXY === "1";
/** The agent's defaults (probe-agent/config.ts backoff_ms). */
const BACKOFF = { base: 1000, cap: 60_000 };
/** The agent's default heartbeat (probe-agent/config.ts heartbeat_s). */
const HEARTBEAT_S = 30;

async function main(): Promise<void> {
  // The ingestion step fabricates a day-old history: the bench widens clock skew and extra runs (as bench/edge.ts).
  const vars = {
    FLUSH_INTERVAL_MS: "5000", QUOTA_RESULTS_PER_DAY: "100000000", QUOTA_CREDITS_PER_DAY: "1000000000",
    RESULT_CLOCK_SKEW_S: String(2 * 86_400), RESULT_EXTRA_RUNS: "1000000",
  };
  await withBenchEdge("bench-controller", vars, async (b) => {
    const sites = SITES.slice(0, SITE_COUNT);
    let edge = VIA_PROXY ? b.edge : await directEdge(b.edge);
    console.log(`probes: ${PROBES} simulated over ${sites.length} site(s), ${VIA_PROXY ? "through wrangler dev's proxy" : "straight to the Worker's workerd"} (${edge.url})\n`);
    const phase = (what: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${what}`);
    phase("enrolling");
    const probes = await enrollProbes(edge, PROBES, sites);
    phase("registering and connecting");

    // Register and connect, as probes do: each right after its registration.
    const rssBefore = workerdRssMiB(b.edge);
    const t0 = performance.now();
    await joinProbes(edge, probes, 64, 64, HEARTBEAT_S);
    const joinSeconds = (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 3000));
    const rssAfter = workerdRssMiB(b.edge);
    const shards = new Map<string, number>();
    for (const p of probes) shards.set(p.shard!, (shards.get(p.shard!) ?? 0) + 1);

    // Fan-out of a 1,000-probe measurement, then ingestion on the busiest shard with every probe connected.
    phase("fan-out");
    const { msm, arrivals, postMs, given } = await fanOut(edge, b.key, probes, Math.min(PROBES, 1000));
    phase(`fan-out reached ${arrivals.length} probes; ingestion`);
    const [busiest] = [...shards.entries()].sort((x, y) => y[1] - x[1])[0]!;
    // Probes that were given the measurement (any other would have every result refused).
    const ingestors = given.filter((p) => p.shard === busiest).slice(0, 100);
    const ingestSeconds = await ingestFrames(ingestors, msm, 20, 100, Math.floor(Date.now() / 1000) - 86_400);
    const ingestRate = (ingestors.length * 20 * 100) / ingestSeconds;

    // The storm: every socket dropped, the edge back, every probe reconnecting at once.
    phase("storm");
    const backAt: number[] = [];
    let resumed = 0, registered = 0, refused = 0, busy = 0, retries = 0;
    const failures = new Map<string, number>();
    const killedAt = performance.now();
    let upAt = 0;
    const reconnect = async (p: SimProbe) => {
      for (let attempt = 0; ; attempt++) {
        try {
          const resume = p.resume && p.resume.expires > Date.now() / 1000 + 30 ? p.resume : undefined;
          p.inbox.length = 0;
          // The edge's address stays what it was (anycast in production); only the local port may have changed.
          if (resume) await openSocket(p, { token: resume.token, websocket_url: new URL(new URL(p.url!).pathname, edge.url.replace(/^http/, "ws")).href, shard: p.shard! }, 64, HEARTBEAT_S);
          else await openSocket(p, (await registerProbes(edge, [p])).get(p.id)!, 64, HEARTBEAT_S);
          if (resume) resumed++; else registered++;
          backAt.push(performance.now());
          return;
        } catch (e) {
          // As the agent does: a busy controller (503, Retry-After) is asked again with the same token after the time
          // it says; any other refusal spends the resume token, and the next try registers.
          const { status, retryAfter } = e as { status?: number; retryAfter?: number };
          if (retryAfter) busy++;
          else if (status) { refused++; p.resume = undefined; }
          retries++;
          const why = `${upAt ? "after" : "before"} the edge answered: ${(e as { code?: string }).code ?? (e as Error).message}`;
          failures.set(why, (failures.get(why) ?? 0) + 1);
          await new Promise((r) => setTimeout(r, Math.max(backoffDelay(attempt, BACKOFF.base, BACKOFF.cap), (retryAfter ?? 0) * 1000)));
        }
      }
    };
    const restarted = b.restart().then(async (e) => {
      edge = VIA_PROXY ? e : await directEdge(e);
      upAt = performance.now();
    });
    // Probes start reconnecting at once, as agents do when their socket drops (backing off while the edge is down).
    const storm = Promise.all(probes.map((p) => reconnect(p)));
    await restarted;
    await storm;
    // From the first probe back (the edge answering again: under the storm the bench's own poll for it lags), and
    // from the kill (which includes restarting wrangler and workerd on this machine).
    const firstBack = Math.min(...backAt);
    const back = backAt.map((t) => t - firstBack);
    const restartSeconds = (upAt - killedAt) / 1000;
    const load = await controllers(edge);

    const row = (name: string, value: string, target: string, ok: boolean | null) =>
      console.log(`${name.padEnd(50)} ${value.padStart(12)}   target ${target.padEnd(10)} ${ok === null ? "" : ok ? "met" : "NOT met"}`);
    console.log(`controller shards in use: ${[...shards.entries()].map(([s, n]) => `${s}=${n}`).join(" ")}\n`);
    const p95 = quantile(arrivals, 0.95), storm95 = quantile(back, 0.95), stormMax = Math.max(...back);
    row("probes registered and connected per second", (PROBES / joinSeconds).toFixed(0), "—", null);
    row("workerd memory per connected probe (KiB)", (((rssAfter - rssBefore) * 1024) / PROBES).toFixed(1), "—", null);
    row(`fan-out to ${arrivals.length} probes: POST answered (ms)`, postMs.toFixed(0), "—", null);
    row("fan-out p50 (ms)", quantile(arrivals, 0.5).toFixed(1), "—", null);
    row("fan-out p95 (ms)", p95.toFixed(1), "≤ 250", p95 <= 250);
    row(`results ingested/s on ${busiest} (100 probes, all connected)`, ingestRate.toFixed(0), "≥ 5000", ingestRate >= 5000);
    row("storm: edge killed → first probe back (s)", ((firstBack - killedAt) / 1000).toFixed(1), "—", null);
    row("storm: edge killed → the bench saw it answer (s)", restartSeconds.toFixed(1), "—", null);
    row("storm: probes back, p50 after the first (s)", (quantile(back, 0.5) / 1000).toFixed(1), "—", null);
    row("storm: probes back, p95 after the first (s)", (storm95 / 1000).toFixed(1), "—", null);
    row("storm: all probes back after the first (s)", (stormMax / 1000).toFixed(1), "≤ 60", stormMax <= 60_000 && back.length === PROBES);
    console.log(`  resumed with their token: ${resumed}, registered again: ${registered}, refused tokens: ${refused}, turned away busy (503): ${busy}, network retries: ${retries - refused - busy}`);
    console.log(`  failed attempts: ${[...failures.entries()].sort((x, y) => y[1] - x[1]).map(([w, n]) => `${w} ×${n}`).join("; ") || "none"}`);
    console.log(`  connected after the storm: ${load.map((c) => `${c.shard}=${c.connected}`).filter((x) => !x.endsWith("=0")).join(" ")}; sockets closed by the edge since: ${probes.filter((p) => p.ws?.readyState === WebSocket.CLOSED).length}`);
    console.log(`\nratios to target: fan-out p95 ${(p95 / 250).toFixed(2)}× the budget, ingestion ${(ingestRate / 5000).toFixed(2)}× the floor, storm ${(stormMax / 60_000).toFixed(2)}× the budget`);
    for (const p of probes) p.ws?.terminate();
  });
}

main().then(() => process.exit(0), (e: unknown) => { console.error(e); process.exit(1); });
