// `npm run bench`: the edge under load on this machine, through wrangler dev (workerd, SQLite DOs, R2 simulation),
// driven by simulated probes that speak the real protocol over real WebSockets. Prints each figure next to its
// target. Not a test: numbers depend on the machine (state it when you record them in docs/benchmarks.md).
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { CompactSign } from "jose";
import WebSocket from "ws";
import { type ControllerMessage, SUBPROTOCOL } from "../protocol/index.ts";
import { admin, type Edge, startEdge } from "../scripts/local.ts";
import { freePort, tempDir } from "../test/node/system.ts";

const PROBES = Number(process.env.BENCH_PROBES ?? 1000);
const INGEST_PROBES = Number(process.env.BENCH_INGEST_PROBES ?? 100);
const INGEST_FRAMES = Number(process.env.BENCH_INGEST_FRAMES ?? 20);
const FRAME_RESULTS = Number(process.env.BENCH_FRAME_RESULTS ?? 100);
const CONCURRENCY = 32;
const STREAM_SUBSCRIBERS = 10;
const STREAM_FRAMES = 50;

const SITES = [
  { country_code: "NL", latitude: 52.4, longitude: 4.9 }, { country_code: "US", latitude: 40.7, longitude: -74 },
  { country_code: "US", latitude: 37.8, longitude: -122.4 }, { country_code: "JP", latitude: 35.7, longitude: 139.7 },
  { country_code: "BR", latitude: -23.5, longitude: -46.6 }, { country_code: "AU", latitude: -33.9, longitude: 151.2 },
  { country_code: "ZA", latitude: -26.2, longitude: 28 }, { country_code: "PL", latitude: 52.2, longitude: 21 },
];

type SimProbe = { id: number; key: KeyObject; site: (typeof SITES)[number]; ws?: WebSocket; shard?: string; inbox: ControllerMessage[]; waiters: ((m: ControllerMessage) => void)[] };

async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: n }, async () => { while (i < items.length) await fn(items[i++]!); }));
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

function workerdRssMiB(edge: Edge): number {
  const pids = execFileSync("pgrep", ["-g", String(edge.process.pid)], { encoding: "utf8" }).trim().split("\n");
  let kb = 0;
  for (const pid of pids) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      if (!/^Name:\s+workerd/m.test(status)) continue;
      kb += Number(status.match(/^VmRSS:\s+(\d+)/m)![1]);
    } catch { /* exited */ }
  }
  return kb / 1024;
}

/** Requests, WebSocket messages and SQLite rows written by every Durable Object on the results path, summed. */
async function usageOf(edge: Edge, account: string): Promise<{ requests: number; ws_messages: number; rows_written: number }> {
  type U = { requests: number; ws_messages: number; rows_written: number };
  const u = (await (await fetch(`${edge.url}/admin/usage?account=${account}`, { headers: { Authorization: `Bearer ${edge.secrets.ADMIN_TOKEN}` } })).json()) as
    { controllers: U[]; brain: U; registry: U; ledger: U };
  return [...u.controllers, u.brain, u.registry, u.ledger].reduce((a, x) => ({
    requests: a.requests + x.requests, ws_messages: a.ws_messages + x.ws_messages, rows_written: a.rows_written + x.rows_written,
  }), { requests: 0, ws_messages: 0, rows_written: 0 });
}

async function post(edge: Edge, path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${edge.url}${path}`, { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body: JSON.stringify(body) });
  const json = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

function next(p: SimProbe, type: ControllerMessage["type"]): Promise<ControllerMessage> {
  const i = p.inbox.findIndex((m) => m.type === type);
  if (i >= 0) return Promise.resolve(p.inbox.splice(i, 1)[0]!);
  return new Promise((resolve) => {
    const w = (m: ControllerMessage) => {
      if (m.type !== type) return;
      p.waiters.splice(p.waiters.indexOf(w), 1);
      p.inbox.splice(p.inbox.indexOf(m), 1);
      resolve(m);
    };
    p.waiters.push(w);
  });
}

/** A periodic ping's Atlas result, as an agent sends it. */
function pingResult(msm: number, probeId: number, timestamp: number) {
  return {
    fw: 5020, mver: "1.0.0", lts: 1, msm_id: msm, msm_name: "Ping", prb_id: probeId, timestamp, from: "192.0.2.9",
    src_addr: "192.0.2.9", dst_addr: "192.0.2.1", dst_name: "192.0.2.1", af: 4, type: "ping", proto: "ICMP", size: 48, ttl: 60,
    sent: 3, rcvd: 3, dup: 0, min: 10.1, avg: 10.5, max: 11.2, step: 60, result: [{ rtt: 10.1 }, { rtt: 10.2 }, { rtt: 11.2 }],
  };
}

async function main(): Promise<void> {
  const state = tempDir("bench");
  // The fan-out measurement (1,000 probes every minute) is beyond Atlas's per-account daily quotas: raised here.
  const edge = await startEdge({
    stateDir: state, port: await freePort(), quiet: true,
    // The ingestion step fabricates a day-old history, 2,000 results per probe: a deployed controller refuses those as
    // runs a probe could not have made (durable-objects/admission.ts), so the bench widens clock skew and extra runs.
    vars: { FLUSH_INTERVAL_MS: "5000", QUOTA_RESULTS_PER_DAY: "10000000", QUOTA_CREDITS_PER_DAY: "100000000", RESULT_CLOCK_SKEW_S: String(2 * 86_400), RESULT_EXTRA_RUNS: "1000000" },
  });
  // A bench that fails (or is interrupted) must not leave wrangler and workerd running.
  const stopEdge = () => edge.stop();
  process.once("SIGINT", () => { void stopEdge().finally(() => process.exit(130)); });
  try {
    const adminHeaders = { Authorization: `Bearer ${edge.secrets.ADMIN_TOKEN}` };
    const { key, account } = await admin<{ key: string; account: string }>(edge, "/admin/keys", { label: "bench", credits: 1_000_000_000 });
    console.log(`machine: ${execFileSync("nproc", { encoding: "utf8" }).trim()} cores, ${Math.round(Number(readFileSync("/proc/meminfo", "utf8").match(/MemTotal:\s+(\d+)/)![1]) / 1048576)} GiB, Node ${process.version}`);
    console.log(`probes: ${PROBES} simulated (Ed25519 keys, real protocol), over ${SITES.length} sites\n`);

    // Enrollment (operator path) — not measured.
    const probes: SimProbe[] = [];
    for (let i = 0; i < PROBES; i++) {
      const { privateKey, publicKey } = generateKeyPairSync("ed25519");
      probes.push({ id: 0, key: privateKey, site: SITES[i % SITES.length]!, inbox: [], waiters: [], ...{ pub: (publicKey.export({ format: "jwk" }) as { x: string }).x } } as SimProbe & { pub: string });
    }
    await pool(probes, CONCURRENCY, async (p) => {
      p.id = (await post(edge, "/admin/probes", { public_key: (p as SimProbe & { pub: string }).pub, ...p.site }, adminHeaders)).id as number;
    });

    // 1. Registrations per second: challenge + signed proof + token, end to end.
    const regs = new Map<number, { token: string; websocket_url: string; shard: string }>();
    const t0 = performance.now();
    await pool(probes, CONCURRENCY, async (p) => {
      const { nonce } = (await post(edge, "/probe/v1/challenge", { probe_id: p.id })) as { nonce: string };
      const proof = await new CompactSign(new TextEncoder().encode(JSON.stringify({ probe_id: p.id, nonce }))).setProtectedHeader({ alg: "EdDSA" }).sign(p.key);
      regs.set(p.id, (await post(edge, "/probe/v1/register", { probe_id: p.id, proof })) as { token: string; websocket_url: string; shard: string });
    });
    const regSeconds = (performance.now() - t0) / 1000;

    // Connect every probe (hibernatable WebSockets held by the controllers).
    const rssBefore = workerdRssMiB(edge);
    await pool(probes, CONCURRENCY, async (p) => {
      const reg = regs.get(p.id)!;
      p.shard = reg.shard;
      const ws = new WebSocket(reg.websocket_url, SUBPROTOCOL, { headers: { Authorization: `Bearer ${reg.token}` } });
      p.ws = ws;
      ws.on("message", (d) => {
        const m = JSON.parse(String(d)) as ControllerMessage;
        p.inbox.push(m);
        for (const w of [...p.waiters]) w(m);
      });
      await new Promise<void>((resolve, reject) => { ws.once("open", () => resolve()); ws.once("error", reject); });
      await next(p, "welcome");
      ws.send(JSON.stringify({ type: "hello", agent: "bench", slots: 64, free_slots: 64, running: [] }));
    });
    await new Promise((r) => setTimeout(r, 2000));
    const rssAfter = workerdRssMiB(edge);
    const shards = new Map<string, number>();
    for (const p of probes) shards.set(p.shard!, (shards.get(p.shard!) ?? 0) + 1);

    // 2. Fan-out: POST /measurements → the `measure` command at each of the probes.
    const arrivals: number[] = [];
    const fanStart = performance.now();
    const waits = probes.map((p) => next(p, "measure").then(() => arrivals.push(performance.now() - fanStart)));
    const created = await post(edge, "/api/v2/measurements/", {
      definitions: [{ type: "ping", af: 4, target: "192.0.2.1", description: "fan-out", interval: 60 }],
      probes: [{ type: "area", value: "WW", requested: Math.min(PROBES, 1000) }],
    }, { Authorization: `Key ${key}` });
    const postMs = performance.now() - fanStart;
    await Promise.race([Promise.all(waits), new Promise((r) => setTimeout(r, 60_000))]);
    const msm = (created.measurements as number[])[0]!;

    // 3. Ingestion on one shard: INGEST_PROBES probes each send INGEST_FRAMES frames of FRAME_RESULTS results.
    const [busiest] = [...shards.entries()].sort((a, b) => b[1] - a[1])[0]!;
    const ingestors = probes.filter((p) => p.shard === busiest).slice(0, INGEST_PROBES);
    const before = ((await (await fetch(`${edge.url}/admin/controllers`, { headers: adminHeaders })).json()) as { shard: string; r2_writes: number; results_written: number }[]).find((s) => s.shard === busiest)!;
    const usageBefore = await usageOf(edge, account);
    const base = Math.floor(Date.now() / 1000) - 86_400;
    const ingestStart = performance.now();
    await Promise.all(ingestors.map(async (p) => {
      for (let f = 0; f < INGEST_FRAMES; f++) {
        const results = Array.from({ length: FRAME_RESULTS }, (_, i) => {
          const seq = f * FRAME_RESULTS + i + 1;
          return { seq, result: pingResult(msm, p.id, base + seq) };
        });
        p.ws!.send(JSON.stringify({ type: "results", results }));
        const ack = (await next(p, "ack")) as { upto: number };
        if (ack.upto !== (f + 1) * FRAME_RESULTS) throw new Error(`probe ${p.id}: ack ${ack.upto}`);
      }
    }));
    const ingestSeconds = (performance.now() - ingestStart) / 1000;
    const ingested = ingestors.length * INGEST_FRAMES * FRAME_RESULTS;
    await post(edge, `/admin/controllers/${busiest}/flush`, {}, adminHeaders);
    const after = ((await (await fetch(`${edge.url}/admin/controllers`, { headers: adminHeaders })).json()) as { shard: string; r2_writes: number; results_written: number }[]).find((s) => s.shard === busiest)!;
    const writes = after.r2_writes - before.r2_writes;
    const written = after.results_written - before.results_written;
    const usageAfter = await usageOf(edge, account);
    // Cloudflare's list prices beyond the included usage (reference/cloudflare.md §4): DO requests $0.15/M (incoming
    // WebSocket messages 20:1), SQLite rows written $1/M, R2 class A operations $4.50/M. The explicit flush is a request.
    const requests = usageAfter.requests - usageBefore.requests + (usageAfter.ws_messages - usageBefore.ws_messages) / 20 + 1;
    const rows = usageAfter.rows_written - usageBefore.rows_written;
    const cost = { requests: (requests * 0.15) / 1e6, rows: (rows * 1) / 1e6, r2: (writes * 4.5) / 1e6 };
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
  } finally {
    await stopEdge();
  }
}

main().then(() => process.exit(0), (e: unknown) => { console.error(e); process.exit(1); });
