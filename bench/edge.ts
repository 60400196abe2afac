// `npm run bench`: the edge under load on this machine, through wrangler dev (workerd, SQLite DOs, R2 simulation),
// driven by simulated probes that speak the real protocol over real WebSockets. Prints each figure next to its
// target. Not a test: numbers depend on the machine (state it when you record them in docs/benchmarks.md).
import WebSocket from "ws";
import { connectProbes, controllers, costOf, enrollProbes, fanOut, ingestFrames, minus, next, pingResult, post, quantile, registerProbes, SITES, usageOf, withBenchEdge, workerdRssMiB } from "./sim.ts";

const PROBES = Number(process.env.BENCH_PROBES ?? 1000);
const INGEST_PROBES = Number(process.env.BENCH_INGEST_PROBES ?? 100);
const INGEST_FRAMES = Number(process.env.BENCH_INGEST_FRAMES ?? 20);
const FRAME_RESULTS = Number(process.env.BENCH_FRAME_RESULTS ?? 100);
const STREAM_SUBSCRIBERS = 10;
const STREAM_FRAMES = 50;

async function main(): Promise<void> {
  // The fan-out measurement (1,000 probes every minute) is beyond Atlas's per-account daily quotas: raised here.
  // The ingestion step fabricates a day-old history, 2,000 results per probe: a deployed controller refuses those as
  // runs a probe could not have made (durable-objects/admission.ts), so the bench widens clock skew and extra runs.
  const vars = { FLUSH_INTERVAL_MS: "5000", QUOTA_RESULTS_PER_DAY: "10000000", QUOTA_CREDITS_PER_DAY: "100000000", RESULT_CLOCK_SKEW_S: String(2 * 86_400), RESULT_EXTRA_RUNS: "1000000" };
  await withBenchEdge("bench", vars, async ({ edge, key, account, adminHeaders }) => {
    console.log(`probes: ${PROBES} simulated (Ed25519 keys, real protocol), over ${SITES.length} sites\n`);

    // Enrollment (operator path) — not measured.
    const probes = await enrollProbes(edge, PROBES);

    // 1. Registrations per second: challenge + signed proof + token, end to end.
    const t0 = performance.now();
    const regs = await registerProbes(edge, probes);
    const regSeconds = (performance.now() - t0) / 1000;

    // Connect every probe (hibernatable WebSockets held by the controllers).
    const rssBefore = workerdRssMiB(edge);
    await connectProbes(probes, regs);
    await new Promise((r) => setTimeout(r, 2000));
    const rssAfter = workerdRssMiB(edge);
    const shards = new Map<string, number>();
    for (const p of probes) shards.set(p.shard!, (shards.get(p.shard!) ?? 0) + 1);

    // 2. Fan-out: POST /measurements → the `measure` command at each of the probes.
    const { msm, arrivals, postMs } = await fanOut(edge, key, probes, Math.min(PROBES, 1000));

    // 3. Ingestion on one shard: INGEST_PROBES probes each send INGEST_FRAMES frames of FRAME_RESULTS results.
    const [busiest] = [...shards.entries()].sort((a, b) => b[1] - a[1])[0]!;
    const ingestors = probes.filter((p) => p.shard === busiest).slice(0, INGEST_PROBES);
    const before = (await controllers(edge)).find((s) => s.shard === busiest)!;
    const usageBefore = await usageOf(edge, account);
    const base = Math.floor(Date.now() / 1000) - 86_400;
    const ingestSeconds = await ingestFrames(ingestors, msm, INGEST_FRAMES, FRAME_RESULTS, base);
    const ingested = ingestors.length * INGEST_FRAMES * FRAME_RESULTS;
    await post(edge, `/admin/controllers/${busiest}/flush`, {}, adminHeaders);
    const after = (await controllers(edge)).find((s) => s.shard === busiest)!;
    const writes = after.r2_writes - before.r2_writes;
    const written = after.results_written - before.results_written;
    // The explicit flush is counted as a request.
    const used = minus(await usageOf(edge, account), usageBefore);
    used.requests++;
    const cost = costOf(used, writes);
    const requests = cost.billedRequests, rows = used.rows_written;
    const perMillion = (x: number) => (x * 1e6) / written;

    // 4. Archive bundles of the ingested hours (built the way the hourly job builds them, through the admin route).
    const hours = [...new Set(Array.from({ length: INGEST_FRAMES * FRAME_RESULTS }, (_, i) => new Date((base + i + 1) * 1000).toISOString().slice(0, 13)))];
    const bundleStart = performance.now();
    let bundled = 0, bundleBytes = 0;
    for (const hour of hours) {
      const m = await post(edge, "/admin/bundles/build", { type: "ping", hour }, adminHeaders) as { count?: number; bytes?: number };
      bundled += m.count ?? 0;
      bundleBytes += m.bytes ?? 0;
    }
    const bundleSeconds = (performance.now() - bundleStart) / 1000;

    // 5. Stream latency: STREAM_SUBSCRIBERS clients subscribed to the measurement on /stream/; one probe sends frames
    // of 10 results one after another; each result's latency is its arrival at a subscriber minus the moment its
    // frame was acknowledged (stored). Each subscriber must get each result exactly once.
    const subscribers = await Promise.all(Array.from({ length: STREAM_SUBSCRIBERS }, async () => {
      const ws = new WebSocket(`${edge.url.replace(/^http/, "ws")}/stream/`);
      const got: { timestamp: number; at: number }[] = [];
      ws.on("message", (d) => {
        const [event, payload] = JSON.parse(String(d)) as [string, { timestamp: number }];
        if (event === "atlas_result") got.push({ timestamp: payload.timestamp, at: performance.now() });
      });
      await new Promise((r, j) => { ws.once("open", r); ws.once("error", j); });
      const subscribed = new Promise((r) => ws.once("message", r));
      ws.send(JSON.stringify(["atlas_subscribe", { streamType: "result", msm }]));
      await subscribed;
      return { ws, got };
    }));
    const streamer = ingestors[0]!;
    const storedAt = new Map<number, number>();
    let seq = INGEST_FRAMES * FRAME_RESULTS;
    for (let f = 0; f < STREAM_FRAMES; f++) {
      const results = Array.from({ length: 10 }, () => {
        seq++;
        return { seq, result: pingResult(msm, streamer.id, base + seq) };
      });
      streamer.ws!.send(JSON.stringify({ type: "results", results }));
      await next(streamer, "ack");
      const at = performance.now();
      for (const r of results) storedAt.set(r.result.timestamp, at);
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 2000));
    const latencies = subscribers.flatMap((s) => s.got.map((g) => g.at - storedAt.get(g.timestamp)!));
    const exactlyOnce = subscribers.every((s) => s.got.length === storedAt.size && new Set(s.got.map((g) => g.timestamp)).size === storedAt.size);
    for (const s of subscribers) s.ws.close();

    for (const p of probes) p.ws?.terminate();

    const row = (name: string, value: string, target: string, ok: boolean | null) =>
      console.log(`${name.padEnd(44)} ${value.padStart(14)}   target ${target.padEnd(12)} ${ok === null ? "" : ok ? "met" : "NOT met"}`);
    const regRate = PROBES / regSeconds;
    const p50 = quantile(arrivals, 0.5), p95 = quantile(arrivals, 0.95), max = Math.max(...arrivals);
    const perShard = ingested / ingestSeconds;
    const writesPerK = (writes / written) * 1000;
    const perProbeKiB = ((rssAfter - rssBefore) * 1024) / PROBES;
    console.log(`controller shards in use: ${[...shards.entries()].map(([s, n]) => `${s}=${n}`).join(" ")}\n`);
    row("registrations/s (challenge+proof+token)", regRate.toFixed(0), "—", null);
    row(`fan-out to ${arrivals.length} probes: POST answered (ms)`, postMs.toFixed(0), "—", null);
    row("fan-out p50 (ms)", p50.toFixed(1), "—", null);
    row("fan-out p95 (ms)", p95.toFixed(1), "≤ 250", p95 <= 250);
    row("fan-out max (ms)", max.toFixed(1), "—", null);
    row(`results ingested/s on ${busiest} (${ingestors.length} probes)`, perShard.toFixed(0), "≥ 5000", perShard >= 5000);
    row("R2 writes per 1,000 results", writesPerK.toFixed(3), "≤ 1", writesPerK <= 1);
    row("workerd memory per connected probe (KiB)", perProbeKiB.toFixed(1), "—", null);
    const total = perMillion(cost.requests + cost.rows + cost.r2);
    row("Cloudflare cost per million results (USD)", total.toFixed(4), "≤ 0.05", total <= 0.05);
    console.log(`  of which DO requests $${perMillion(cost.requests).toFixed(4)} (${(requests * 1e6 / written).toFixed(0)} per million results), SQLite rows $${perMillion(cost.rows).toFixed(4)} (${(rows * 1e6 / written).toFixed(0)} per million), R2 $${perMillion(cost.r2).toFixed(4)}`);
    row("bundles: results built per second", (bundled / bundleSeconds).toFixed(0), "—", null);
    row("bundles: compressed bytes per result", (bundleBytes / bundled).toFixed(1), "—", null);
    const s50 = quantile(latencies, 0.5), s95 = quantile(latencies, 0.95);
    row(`stream: results to ${STREAM_SUBSCRIBERS} subscribers, p50 (ms)`, s50.toFixed(1), "—", null);
    row("stream: p95 after the result is stored (ms)", s95.toFixed(1), "≤ 1000", s95 <= 1000);
    row("stream: every result exactly once to each", exactlyOnce ? "yes" : "NO", "yes", exactlyOnce);
    console.log(`\nratios to target: fan-out p95 ${(p95 / 250).toFixed(2)}× the budget, ingestion ${(perShard / 5000).toFixed(2)}× the floor, stream p95 ${(s95 / 1000).toFixed(3)}× the budget, R2 writes ${(writesPerK / 1).toFixed(3)}× the ceiling`);
    console.log(`(${written} results in ${writes} R2 objects; workerd RSS ${rssBefore.toFixed(0)} → ${rssAfter.toFixed(0)} MiB for ${PROBES} sockets)`);
    if (arrivals.length < Math.min(PROBES, 1000)) console.log(`WARNING: only ${arrivals.length} probes received the command`);
  });
}

main().then(() => process.exit(0), (e: unknown) => { console.error(e); process.exit(1); });
