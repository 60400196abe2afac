// `npm run bench:fleet`: a real fleet's traffic, as Atlas's probes send it — each probe's results arriving on their
// own, ~1.2 results per probe per second, most of them built-ins, in frames of 1–3 — against the edge through
// wrangler dev (workerd, SQLite DOs, R2 simulation). Prints what a million results cost, counted from the Durable
// Objects' own usage, the ack latency (a frame sent → its ack), and checks that every result sent is stored once.
// Not a test: numbers depend on the machine (state it when you record them in docs/benchmarks.md).
import { connectProbes, controllers, costOf, enrollProbes, minus, next, pingResult, post, quantile, registerProbes, type SimProbe, SITES, tracerouteResult, usageOf, withBenchEdge } from "./sim.ts";

const PROBES = Number(process.env.BENCH_FLEET_PROBES ?? 2000);
const SECONDS = Number(process.env.BENCH_FLEET_SECONDS ?? 60);
const RATE = Number(process.env.BENCH_FLEET_RATE ?? 1.2);
/** Four sites on four shards: "a few shards", 500 probes each at the default size. */
const FLEET_SITES = [SITES[0]!, SITES[1]!, SITES[3]!, SITES[4]!];
/**
 * Built-ins each probe cycles through (protocol/builtins.ts): first/second hop, 30 anchor pings, 10 anchor
 * traceroutes — enough that one id comes round again only after ~35 s (a controller refuses one within 5 s).
 */
const BUILTINS = [1, 2, ...Array.from({ length: 30 }, (_, i) => 1001 + i), ...Array.from({ length: 10 }, (_, i) => 5001 + i)];
const HEARTBEAT_S = 30;

type Sender = SimProbe & {
  seq: number; nextAt: number; builtin: number; lastUser: number; heartbeatAt: number;
  /** Frames sent and not yet acknowledged: last seq and when it was sent. */
  inFlight: { upto: number; at: number }[];
};

/** An exponential wait with mean `mean` seconds (each probe's frames arrive as a Poisson process). */
const exp = (mean: number) => -Math.log(1 - Math.random()) * mean;

async function main(): Promise<void> {
  const vars = { FLUSH_INTERVAL_MS: "5000", QUOTA_RESULTS_PER_DAY: "100000000", QUOTA_CREDITS_PER_DAY: "1000000000", QUOTA_PROBES_PER_MEASUREMENT: "100000" };
  await withBenchEdge("bench-fleet", vars, async ({ edge, key, account, adminHeaders }) => {
    console.log(`fleet: ${PROBES} simulated probes over ${FLEET_SITES.length} sites, ${RATE} results per probe per second in frames of 1–3, ${SECONDS} s measured\n`);
    const probes = (await enrollProbes(edge, PROBES, FLEET_SITES)) as Sender[];
    await connectProbes(probes, await registerProbes(edge, probes));
    const shards = new Map<string, number>();
    for (const p of probes) shards.set(p.shard!, (shards.get(p.shard!) ?? 0) + 1);
    console.log(`controller shards in use: ${[...shards.entries()].map(([s, n]) => `${s}=${n}`).join(" ")}`);

    // A user's periodic ping on every probe (one result a minute each): the paid part of the traffic.
    const created = await post(edge, "/api/v2/measurements/", {
      definitions: [{ type: "ping", af: 4, target: "192.0.2.1", description: "fleet", interval: 60 }],
      // Sources name at most 1,000 probes each (Atlas's limit): the fleet's ids in slices.
      probes: Array.from({ length: Math.ceil(PROBES / 500) }, (_, i) => probes.slice(i * 500, (i + 1) * 500))
        .map((slice) => ({ type: "probes", value: slice.map((p) => p.id).join(","), requested: slice.length })),
    }, { Authorization: `Key ${key}` });
    const msm = (created.measurements as number[])[0]!;
    let reached = 0;
    const given = await Promise.race([Promise.all(probes.map((p) => next(p, "measure").then(() => reached++))), new Promise<null>((r) => setTimeout(() => r(null), 60_000))]);
    if (!given) throw new Error(`the fleet's measurement reached ${reached} of ${PROBES} probes within 60 s: ${JSON.stringify(created)}`);

    const latencies: number[] = [];
    let refused = 0, measuring = false, sent = 0;
    const start = Date.now();
    for (const p of probes) {
      Object.assign(p, { seq: 0, nextAt: start + exp(2 / RATE) * 1000, builtin: Math.floor(Math.random() * BUILTINS.length), lastUser: start / 1000 - Math.random() * 60, heartbeatAt: start + Math.random() * HEARTBEAT_S * 1000, inFlight: [] });
      p.onMessage = (m) => {
        if (m.type === "ack") {
          const now = performance.now();
          while (p.inFlight.length && p.inFlight[0]!.upto <= m.upto) {
            const f = p.inFlight.shift()!;
            if (measuring) latencies.push(now - f.at);
          }
        } else if (m.type === "reject") {
          refused++;
          if (refused <= 5) console.log(`refused (probe ${p.id}): ${m.reason}`);
        }
      };
    }
    let stop = false;
    /** Sends each probe's frame when its time comes: 1–3 results, a user result once a minute, built-ins otherwise. */
    const tick = () => {
      const now = Date.now();
      for (const p of probes) {
        if (now >= p.heartbeatAt) {
          p.ws!.send(JSON.stringify({ type: "status", free_slots: 63 }));
          p.heartbeatAt = now + HEARTBEAT_S * 1000;
        }
        if (now < p.nextAt) continue;
        const n = 1 + Math.floor(Math.random() * 3);
        p.nextAt = now + exp(n / RATE) * 1000;
        const ts = Math.floor(now / 1000);
        const results = Array.from({ length: n }, () => {
          p.seq++;
          if (ts - p.lastUser >= 60) {
            p.lastUser = ts;
            return { seq: p.seq, result: pingResult(msm, p.id, ts) };
          }
          const id = BUILTINS[p.builtin++ % BUILTINS.length]!;
          return { seq: p.seq, result: id >= 5001 ? tracerouteResult(id, p.id, ts) : pingResult(id, p.id, ts) };
        });
        p.ws!.send(JSON.stringify({ type: "results", results }));
        p.inFlight.push({ upto: p.seq, at: performance.now() });
        if (measuring) sent += n;
      }
      if (!stop) setTimeout(tick, 10);
    };
    tick();

    // Warm up, then measure from a clean slate: everything so far acknowledged and flushed.
    const settle = async () => {
      const deadline = Date.now() + 60_000;
      while (probes.some((p) => p.inFlight.length) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      for (const s of shards.keys()) await post(edge, `/admin/controllers/${s}/flush`, {}, adminHeaders);
    };
    await new Promise((r) => setTimeout(r, 10_000));
    stop = true;
    await new Promise((r) => setTimeout(r, 20));
    await settle();
    const before = await controllers(edge);
    const usageBefore = await usageOf(edge, account);
    const seqsBefore = probes.reduce((n, p) => n + p.seq, 0);
    stop = false;
    measuring = true;
    const t0 = performance.now();
    tick();
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    stop = true;
    await new Promise((r) => setTimeout(r, 20));
    const elapsed = (performance.now() - t0) / 1000;
    const unacked = () => probes.reduce((n, p) => n + p.inFlight.length, 0);
    await settle();
    measuring = false;
    const after = await controllers(edge);
    const used = minus(await usageOf(edge, account), usageBefore);
    const stored = after.reduce((n, c) => n + c.results_written, 0) - before.reduce((n, c) => n + c.results_written, 0);
    const pendingLeft = after.reduce((n, c) => n + c.pending_results, 0);
    const r2 = after.reduce((n, c) => n + c.r2_writes, 0) - before.reduce((n, c) => n + c.r2_writes, 0);
    const cost = costOf(used, r2);
    const perMillion = (x: number) => (x * 1e6) / stored;
    const total = perMillion(cost.requests + cost.rows + cost.r2);
    for (const p of probes) p.ws?.terminate();

    const row = (name: string, value: string, target: string, ok: boolean | null) =>
      console.log(`${name.padEnd(46)} ${value.padStart(12)}   target ${target.padEnd(10)} ${ok === null ? "" : ok ? "met" : "NOT met"}`);
    const a95 = quantile(latencies, 0.95);
    console.log("");
    row("results sent (measured window)", String(sent), "—", null);
    row("results stored once (sent = stored, none left)", String(stored), String(sent), stored === sent && pendingLeft === 0 && unacked() === 0 && refused === 0);
    row("results/s offered across the fleet", (sent / elapsed).toFixed(0), "—", null);
    row("ack latency p50 (ms)", quantile(latencies, 0.5).toFixed(1), "—", null);
    row("ack latency p95 (ms)", a95.toFixed(1), "≤ 2000", a95 <= 2000);
    row("ack latency max (ms)", Math.max(...latencies).toFixed(1), "—", null);
    row("Cloudflare cost per million results (USD)", total.toFixed(4), "≤ 0.05", total <= 0.05);
    console.log(`  of which DO requests $${perMillion(cost.requests).toFixed(4)} (${(cost.billedRequests * 1e6 / stored).toFixed(0)} per million results), SQLite rows $${perMillion(cost.rows).toFixed(4)} (${(used.rows_written * 1e6 / stored).toFixed(0)} per million), R2 $${perMillion(cost.r2).toFixed(4)} (${r2} objects)`);
    console.log(`  refused results: ${refused}; frames not acknowledged: ${unacked()}; results left unflushed: ${pendingLeft}; seqs sent before the window: ${seqsBefore}`);
    console.log(`\nratios to target: cost ${(total / 0.05).toFixed(2)}× the ceiling, ack p95 ${(a95 / 2000).toFixed(3)}× the budget`);
  });
}

main().then(() => process.exit(0), (e: unknown) => { console.error(e); process.exit(1); });
