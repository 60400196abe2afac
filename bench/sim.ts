// Simulated probes for the edge benchmarks (bench/edge.ts, bench/fleet.ts): real Ed25519 keys, the real registration
// (challenge, signed proof, token) and the real WebSocket protocol, without an agent process per probe.
import { execFileSync } from "node:child_process";
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { CompactSign } from "jose";
import WebSocket from "ws";
import { type ControllerMessage, SUBPROTOCOL } from "../protocol/index.ts";
import { admin, type Edge, killEdge, startEdge } from "../scripts/local.ts";
import { freePort, tempDir } from "../test/node/system.ts";

export const SITES = [
  { country_code: "NL", latitude: 52.4, longitude: 4.9 }, { country_code: "US", latitude: 40.7, longitude: -74 },
  { country_code: "US", latitude: 37.8, longitude: -122.4 }, { country_code: "JP", latitude: 35.7, longitude: 139.7 },
  { country_code: "BR", latitude: -23.5, longitude: -46.6 }, { country_code: "AU", latitude: -33.9, longitude: 151.2 },
  { country_code: "ZA", latitude: -26.2, longitude: 28 }, { country_code: "PL", latitude: 52.2, longitude: 21 },
];
export type Site = (typeof SITES)[number];

export type SimProbe = {
  id: number; key: KeyObject; pub: string; site: Site; ws?: WebSocket; shard?: string;
  inbox: ControllerMessage[]; waiters: ((m: ControllerMessage) => void)[];
  /** Called with every message from the controller, before the inbox (a benchmark that counts acks). */
  onMessage?: (m: ControllerMessage) => void;
  /** Its controller's WebSocket URL, and the resume token it was last given there. */
  url?: string;
  resume?: { token: string; expires: number };
  /** The close code of its last socket, once closed. */
  closedWith?: number;
};
export type Registration = { token: string; websocket_url: string; shard: string };

const CONCURRENCY = 32;

/** Runs `fn` over `items`, `n` at a time. */
export async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: n }, async () => { while (i < items.length) await fn(items[i++]!); }));
}

export function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

/** The machine, as benchmarks print it first. */
export function machine(): string {
  const gib = Math.round(Number(readFileSync("/proc/meminfo", "utf8").match(/MemTotal:\s+(\d+)/)![1]) / 1048576);
  return `${execFileSync("nproc", { encoding: "utf8" }).trim()} cores, ${gib} GiB, Node ${process.version}`;
}

/** Resident memory of the edge's workerd processes (MiB). */
export function workerdRssMiB(edge: Edge): number {
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

/**
 * The edge as its Worker's own workerd serves it, without wrangler dev's proxy in front. That proxy (a second
 * workerd, which production does not have) holds ~4 descriptors per WebSocket, so past ~4,500 probes it exhausts
 * this machine's open-file limit (20,000, not raisable here) long before the controller is the limit. Miniflare
 * starts the Worker's workerd on `--socket-addr=entry=127.0.0.1:0` and does not say the port: it is found among that
 * process's listening sockets (`ss`) as the one that answers the edge's key.
 */
export async function directEdge(edge: Edge): Promise<Edge> {
  const pids = execFileSync("pgrep", ["-g", String(edge.process.pid)], { encoding: "utf8" }).trim().split("\n");
  const worker = pids.find((pid) => {
    try { return /entry=127\.0\.0\.1:0\b/.test(readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ")); } catch { return false; }
  });
  if (!worker) throw new Error("the Worker's workerd process was not found under wrangler dev");
  const ports = [...execFileSync("ss", ["-Hltnp"], { encoding: "utf8" }).matchAll(/127\.0\.0\.1:(\d+)\s.*pid=(\d+),/g)]
    .filter((m) => m[2] === worker).map((m) => m[1]!);
  for (const port of ports) {
    const url = `http://127.0.0.1:${port}`;
    try {
      const res = await fetch(`${url}/probe/v1/edge-key`, { signal: AbortSignal.timeout(2000) });
      if (res.ok && (await res.json() as { kty?: string }).kty === "OKP") return { ...edge, url };
    } catch { /* the inspector or another socket */ }
  }
  throw new Error(`none of the Worker's sockets (${ports.join(", ")}) answered as the edge`);
}

export type Usage = { requests: number; ws_messages: number; rows_written: number };

/** Requests, WebSocket messages and SQLite rows written by every Durable Object on the results path, summed. */
export async function usageOf(edge: Edge, account: string): Promise<Usage> {
  const u = (await (await fetch(`${edge.url}/admin/usage?account=${account}`, { headers: { Authorization: `Bearer ${edge.secrets.ADMIN_TOKEN}` } })).json()) as
    { controllers: Usage[]; brain: Usage; registry: Usage; ledger: Usage };
  return [...u.controllers, u.brain, u.registry, u.ledger].reduce((a, x) => ({
    requests: a.requests + x.requests, ws_messages: a.ws_messages + x.ws_messages, rows_written: a.rows_written + x.rows_written,
  }), { requests: 0, ws_messages: 0, rows_written: 0 });
}

/**
 * What `used` costs at Cloudflare's list prices beyond the included usage (reference/cloudflare.md §4): DO requests
 * $0.15/M (incoming WebSocket messages 20:1), SQLite rows written $1/M, R2 class A operations $4.50/M.
 */
export function costOf(used: Usage, r2Writes: number): { requests: number; rows: number; r2: number; billedRequests: number } {
  const billedRequests = used.requests + used.ws_messages / 20;
  return { requests: (billedRequests * 0.15) / 1e6, rows: used.rows_written / 1e6, r2: (r2Writes * 4.5) / 1e6, billedRequests };
}

export function minus(a: Usage, b: Usage): Usage {
  return { requests: a.requests - b.requests, ws_messages: a.ws_messages - b.ws_messages, rows_written: a.rows_written - b.rows_written };
}

export type ControllerLoad = { shard: string; connected: number; pending_results: number; r2_writes: number; results_written: number };

export async function controllers(edge: Edge): Promise<ControllerLoad[]> {
  return (await (await fetch(`${edge.url}/admin/controllers`, { headers: { Authorization: `Bearer ${edge.secrets.ADMIN_TOKEN}` } })).json()) as ControllerLoad[];
}

export async function post(edge: Edge, path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${edge.url}${path}`, { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body: JSON.stringify(body) });
  const json = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** The next message of `type` the probe gets (earlier ones of other types stay in its inbox). */
export function next(p: SimProbe, type: ControllerMessage["type"]): Promise<ControllerMessage> {
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

/** `n` probes with fresh keys, spread over `sites`, enrolled by the operator. */
export async function enrollProbes(edge: Edge, n: number, sites: Site[] = SITES): Promise<SimProbe[]> {
  const adminHeaders = { Authorization: `Bearer ${edge.secrets.ADMIN_TOKEN}` };
  const probes: SimProbe[] = Array.from({ length: n }, (_, i) => {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    return { id: 0, key: privateKey, pub: (publicKey.export({ format: "jwk" }) as { x: string }).x, site: sites[i % sites.length]!, inbox: [], waiters: [] };
  });
  await pool(probes, CONCURRENCY, async (p) => {
    p.id = (await post(edge, "/admin/probes", { public_key: p.pub, ...p.site }, adminHeaders)).id as number;
  });
  return probes;
}

/** Registers each probe (challenge + signed proof → assignment token). */
export async function registerProbes(edge: Edge, probes: SimProbe[]): Promise<Map<number, Registration>> {
  const regs = new Map<number, Registration>();
  await pool(probes, CONCURRENCY, async (p) => {
    const { nonce } = (await post(edge, "/probe/v1/challenge", { probe_id: p.id })) as { nonce: string };
    const proof = await new CompactSign(new TextEncoder().encode(JSON.stringify({ probe_id: p.id, nonce }))).setProtectedHeader({ alg: "EdDSA" }).sign(p.key);
    regs.set(p.id, (await post(edge, "/probe/v1/register", { probe_id: p.id, proof })) as Registration);
  });
  return regs;
}

/** Opens each probe's WebSocket with its token and says hello (`slots` free). */
export async function connectProbes(probes: SimProbe[], regs: Map<number, Registration>, slots = 64): Promise<void> {
  await pool(probes, CONCURRENCY, async (p) => openSocket(p, regs.get(p.id)!, slots));
}

/** Registers each probe and connects it at once, as a probe does (its token is fresh however many go before it). */
export async function joinProbes(edge: Edge, probes: SimProbe[], concurrency = 64, slots = 64, heartbeatS = 0): Promise<void> {
  await pool(probes, concurrency, async (p) => openSocket(p, (await registerProbes(edge, [p])).get(p.id)!, slots, heartbeatS));
}

/**
 * Opens the probe's WebSocket with `reg`'s token, waits for the welcome and says hello. Rejects with the HTTP status
 * when the controller refuses the token. Keeps the resume token the controller sends (`p.resume`).
 */
export async function openSocket(p: SimProbe, reg: Registration, slots = 64, heartbeatS = 0): Promise<void> {
  p.shard = reg.shard;
  p.url = reg.websocket_url;
  // The agent's handshake timeout: an upgrade the edge never answers is given up and retried, not waited on forever.
  // As the agent connects (probe-agent/agent.ts): no permessage-deflate, whose zlib contexts cost the edge ~300 KiB
  // per socket and a memset per connection.
  const ws = new WebSocket(reg.websocket_url, SUBPROTOCOL, { headers: { Authorization: `Bearer ${reg.token}` }, handshakeTimeout: 15_000, perMessageDeflate: false });
  p.ws = ws;
  ws.on("error", () => { /* what counts is the close that follows, or the refusal below */ });
  // A status every `heartbeatS` seconds, as the agent sends one (a probe silent for 95 s is closed by its controller).
  if (heartbeatS > 0) {
    const beat = setInterval(() => { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "status", free_slots: slots })); }, heartbeatS * 1000);
    ws.once("close", () => clearInterval(beat));
  }
  ws.once("close", (code) => { p.closedWith = code; });
  ws.on("message", (d) => {
    const m = JSON.parse(String(d)) as ControllerMessage;
    if (m.type === "resume") p.resume = { token: m.token, expires: m.expires };
    p.onMessage?.(m);
    p.inbox.push(m);
    for (const w of [...p.waiters]) w(m);
  });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("unexpected-response", (_req, res) => {
      res.resume();
      ws.terminate();
      const retryAfter = Number(res.headers["retry-after"]);
      reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode, ...(retryAfter > 0 ? { retryAfter } : {}) }));
    });
    ws.once("error", reject);
  });
  await Promise.race([next(p, "welcome"), new Promise((_, reject) => ws.once("close", (code) => reject(new Error(`closed (${code}) before its welcome`))))]);
  ws.send(JSON.stringify({ type: "hello", agent: "bench", slots, free_slots: slots, running: [] }));
}

/** A ping's Atlas result, as an agent sends it. */
export function pingResult(msm: number, probeId: number, timestamp: number) {
  return {
    fw: 5020, mver: "1.0.0", lts: 1, msm_id: msm, msm_name: "Ping", prb_id: probeId, timestamp, from: "192.0.2.9",
    src_addr: "192.0.2.9", dst_addr: "192.0.2.1", dst_name: "192.0.2.1", af: 4, type: "ping", proto: "ICMP", size: 48, ttl: 60,
    sent: 3, rcvd: 3, dup: 0, min: 10.1, avg: 10.5, max: 11.2, step: 60, result: [{ rtt: 10.1 }, { rtt: 10.2 }, { rtt: 11.2 }],
  };
}

/** A traceroute's Atlas result of three hops, as an agent sends it. */
export function tracerouteResult(msm: number, probeId: number, timestamp: number) {
  const hop = (n: number) => ({ hop: n, result: [1, 2, 3].map(() => ({ from: `198.51.100.${n}`, rtt: 1.5 * n, size: 28, ttl: 256 - n })) });
  return {
    fw: 5020, mver: "1.0.0", lts: 1, msm_id: msm, msm_name: "Traceroute", prb_id: probeId, timestamp, endtime: timestamp + 2, from: "192.0.2.9",
    src_addr: "192.0.2.9", dst_addr: "192.0.2.1", dst_name: "192.0.2.1", af: 4, type: "traceroute", proto: "ICMP", paris_id: 1, size: 48,
    result: [hop(1), hop(2), hop(3)],
  };
}

export type BenchEdge = {
  /** The edge as it runs now (a new one after `restart`). */
  edge: Edge; key: string; account: string; adminHeaders: Record<string, string>;
  /** Kills the edge as a crash or a deploy would (SIGKILL: every socket dropped) and starts it again on its state. */
  restart: () => Promise<Edge>;
};

/**
 * Runs `fn` against a fresh local edge (its own state directory and port, `vars` over wrangler.toml), with an API key
 * of plenty of credits, after printing the machine; the edge is stopped however `fn` ends, or on Ctrl-C or SIGTERM, so a bench
 * that fails leaves no wrangler or workerd behind.
 */
export async function withBenchEdge(name: string, vars: Record<string, string>, fn: (b: BenchEdge) => Promise<void>): Promise<void> {
  // BENCH_EDGE_LOG=1 shows the edge's own log (wrangler and workerd) on stderr.
  const options = { stateDir: tempDir(name), port: await freePort(), quiet: process.env.BENCH_EDGE_LOG !== "1", vars };
  let edge = await startEdge(options);
  const stopEdge = () => edge.stop();
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) process.once(signal, () => { void stopEdge().finally(() => process.exit(code)); });
  try {
    const { key, account } = await admin<{ key: string; account: string }>(edge, "/admin/keys", { label: name, credits: 1_000_000_000 });
    console.log(`machine: ${machine()}`);
    const b: BenchEdge = {
      edge, key, account, adminHeaders: { Authorization: `Bearer ${edge.secrets.ADMIN_TOKEN}` },
      restart: async () => {
        await killEdge(edge);
        edge = b.edge = await startEdge(options);
        return edge;
      },
    };
    await fn(b);
  } finally {
    await stopEdge();
  }
}

/**
 * Creates a periodic ping on `n` of the probes (area WW) and times its `measure` frame's arrival at each, from the
 * POST: what the brain and the controllers take to reach a measurement's probes.
 */
export async function fanOut(edge: Edge, key: string, probes: SimProbe[], n: number): Promise<{ msm: number; arrivals: number[]; postMs: number; given: SimProbe[] }> {
  const arrivals: number[] = [];
  const given: SimProbe[] = [];
  const start = performance.now();
  let all: () => void = () => {};
  const reached = new Promise<void>((r) => { all = r; });
  for (const p of probes) void next(p, "measure").then(() => { given.push(p); if (arrivals.push(performance.now() - start) >= n) all(); });
  const created = await post(edge, "/api/v2/measurements/", {
    definitions: [{ type: "ping", af: 4, target: "192.0.2.1", description: "fan-out", interval: 60 }],
    probes: [{ type: "area", value: "WW", requested: n }],
  }, { Authorization: `Key ${key}` });
  const postMs = performance.now() - start;
  await Promise.race([reached, new Promise((r) => setTimeout(r, 60_000))]);
  return { msm: (created.measurements as number[])[0]!, arrivals, postMs, given };
}

/**
 * Each probe sends `frames` frames of `perFrame` results of `msm` (timestamps from `base`), each after the last one's
 * ack, all probes at once; seconds taken.
 */
export async function ingestFrames(probes: SimProbe[], msm: number, frames: number, perFrame: number, base: number): Promise<number> {
  const start = performance.now();
  await Promise.all(probes.map(async (p) => {
    for (let f = 0; f < frames; f++) {
      const results = Array.from({ length: perFrame }, (_, i) => {
        const seq = f * perFrame + i + 1;
        return { seq, result: pingResult(msm, p.id, base + seq) };
      });
      p.ws!.send(JSON.stringify({ type: "results", results }));
      const ack = (await Promise.race([next(p, "ack"), new Promise<never>((_, j) => setTimeout(() => j(new Error(`probe ${p.id}: no ack of frame ${f} within 60 s; inbox ${JSON.stringify(p.inbox).slice(0, 500)}`)), 60_000))])) as { upto: number };
      if (ack.upto !== (f + 1) * perFrame) throw new Error(`probe ${p.id}: ack ${ack.upto}`);
    }
  }));
  return (performance.now() - start) / 1000;
}
