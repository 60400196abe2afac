// `npm run bench:agent`: the probe agent as it ships (its bundle and flags, connected to the local edge), next to
// scamper doing the same pings in the same run. Prints: CPU and peak RSS per ping result with 100 concurrent
// measurements; the packet rate one agent paces and RTT timestamp precision next to iputils ping (both through the
// measurement engine directly). Needs root (or ping_group_range) and GNU time.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { PingResult } from "../protocol/index.ts";
import { LOCAL_SITES, startLocalSystem } from "../scripts/local.ts";
import { buildProbe } from "../probe-agent/build.ts";
import { freePort, tempDir } from "../test/node/system.ts";

await buildProbe();
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CONCURRENCY = 100;
const dir = tempDir("bench-agent");

type Timed = { user: number; sys: number; maxrssKiB: number; wall: number; stdout: string };
function timed(cmd: string, args: string[], env: Record<string, string> = {}): Timed {
  const out = join(dir, "time.txt");
  const stdout = execFileSync("/usr/bin/time", ["-o", out, "-f", "%U %S %M %e", cmd, ...args], {
    encoding: "utf8", env: { ...process.env, ...env }, maxBuffer: 256 * 1024 * 1024,
  });
  const [user, sys, maxrss, wall] = readFileSync(out, "utf8").trim().split("\n").pop()!.split(" ").map(Number) as [number, number, number, number];
  return { user, sys, maxrssKiB: maxrss, wall, stdout };
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return { median: s[s.length >> 1]!, mean, stdev: Math.sqrt(s.reduce((a, b) => a + (b - mean) ** 2, 0) / s.length) };
};

console.log(`machine: ${execFileSync("nproc", { encoding: "utf8" }).trim()} cores, Node ${process.version}, scamper ${execFileSync("dpkg-query", ["-W", "-f", "${Version}", "scamper"], { encoding: "utf8" })}`);
console.log(`work: ${ROUNDS} rounds × ${CONCURRENCY} concurrent pings (10 packets, 100 ms apart) to 127.0.0.1–${CONCURRENCY}\n`);

// 1. CPU and memory per result: the agent as it ships (its bundle, with its Node flags) connected to the local edge,
// given 100 concurrent one-off pings per round through the API; next to scamper doing the same pings.
const httpsPort = await freePort();
// As in production, the agent registers over HTTPS and holds its controller socket over TLS (wss), through the local
// HTTPS front, whose self-signed certificate it is given to trust.
process.env.NODE_EXTRA_CA_CERTS = join(dir, "tls-cert.pem");
const system = await startLocalSystem({
  stateDir: dir, port: await freePort(), httpsPort, sites: [LOCAL_SITES[0]!],
  probeConfig: { slots: CONCURRENCY, builtins: { enabled: false }, registration_urls: [`https://127.0.0.1:${httpsPort}`] },
  // Rounds of 100 one-offs follow each other faster than one-offs end (60 s of grace): more than Atlas's 100 at once.
  vars: { QUOTA_CONCURRENT: "100000" },
});
const pid = system.agents[0]!.process.pid!;
const probeId = system.probes[0]!.id;
/** CPU seconds (user+sys) and peak RSS (KiB) of the agent process so far, from /proc. */
const usage = () => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  const ticks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }));
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]!;
  return { cpu: (Number(stat[11]) + Number(stat[12])) / ticks, maxrssKiB: Number(hwm), threads: threadCpu() };
};
/** CPU seconds per thread kind (the main thread, libuv's pool, V8's and ours), from /proc/PID/task. */
const threadCpu = () => {
  const ticks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }));
  const byName = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const [name, rest] = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8").split("(")[1]!.split(") ") as [string, string];
    const f = rest.split(" ");
    const kind = tid === String(pid) ? "main" : name.replace(/\d+$/, "");
    byName.set(kind, (byName.get(kind) ?? 0) + (Number(f[11]) + Number(f[12])) / ticks);
  }
  return byName;
};
await new Promise((r) => setTimeout(r, 2000));
const idle = usage();
const api = async (path: string, init: RequestInit = {}) => {
  const res = await fetch(`${system.edge.url}${path}`, { ...init, headers: { "Content-Type": "application/json", Authorization: `Key ${system.key}` } });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.json() as Promise<unknown>;
};
let results = 0;
const t0 = performance.now();
for (let r = 0; r < ROUNDS; r++) {
  const { measurements } = await api("/api/v2/measurements/", { method: "POST", body: JSON.stringify({
    definitions: Array.from({ length: CONCURRENCY }, (_, i) => ({ type: "ping", af: 4, target: `127.0.0.${i + 1}`, packets: 10, packet_interval: 100, description: "bench" })),
    probes: [{ type: "probes", value: String(probeId), requested: 1 }], is_oneoff: true,
  }) }) as { measurements: number[] };
  let pending = measurements;
  while (pending.length) {
    await new Promise((res) => setTimeout(res, 500));
    const counts = await Promise.all(pending.map(async (m) => ((await api(`/api/v2/measurements/${m}/results/`)) as PingResult[]).length));
    results += counts.filter((n) => n > 0).length;
    pending = pending.filter((_, i) => counts[i] === 0);
  }
}
const wall = (performance.now() - t0) / 1000;
const loaded = usage();
await system.stop();

const targets = join(dir, "targets.txt");
writeFileSync(targets, Array.from({ length: ROUNDS }, () => Array.from({ length: CONCURRENCY }, (_, i) => `127.0.0.${i + 1}`).join("\n")).join("\n") + "\n");
const scamperOut = join(dir, "scamper.json");
const sc = timed("scamper", ["-c", "ping -c 10 -i 0.1", "-p", "10000", "-w", String(CONCURRENCY), "-O", "json", "-o", scamperOut, "-f", targets]);
const scamperResults = readFileSync(scamperOut, "utf8").split("\n").filter((l) => l.includes('"type":"ping"')).length;
const scamperPerResult = ((sc.user + sc.sys) * 1000) / scamperResults;
const agentPerResult = ((loaded.cpu - idle.cpu) * 1000) / results;
const row = (name: string, ours: string, theirs: string, target = "") => console.log(`${name.padEnd(44)} ${ours.padStart(12)} ${theirs.padStart(12)}   ${target}`);
row("", "agent", "scamper");
row("results", String(results), String(scamperResults));
row("wall time (s)", wall.toFixed(2), sc.wall.toFixed(2));
row("CPU per ping result (ms)", agentPerResult.toFixed(3), scamperPerResult.toFixed(3), "goal ≤ 0.5 ms");
row("  agent incl. start-up and registration (ms)", (loaded.cpu * 1000 / results).toFixed(3), "", "");
row("peak RSS (MB)", (loaded.maxrssKiB / 1024).toFixed(1), (sc.maxrssKiB / 1024).toFixed(1), "goal ≤ 60 MB");
row("  agent connected, before any measurement (MB)", (idle.maxrssKiB / 1024).toFixed(1), "", "");
console.log(`  agent CPU per result by thread (ms): ${[...loaded.threads].map(([k, v]) => `${k} ${(((v - (idle.threads.get(k) ?? 0)) * 1000) / results).toFixed(3)}`).join(", ")}`);
console.log(`ratio agent/scamper: CPU per result ${(agentPerResult / scamperPerResult).toFixed(2)}×, peak RSS ${(loaded.maxrssKiB / sc.maxrssKiB).toFixed(2)}×`);

// 2. Pacing: 100 concurrent trains of 16 packets, 2 ms apart.
const pace = JSON.parse(execFileSync(process.execPath, [join(import.meta.dirname, "agent-load.ts"), "3", String(CONCURRENCY), "16", "2"], {
  encoding: "utf8", maxBuffer: 64 * 1024 * 1024,
})) as { sent: number; received: number; wall: number };
console.log(`\npacing: ${pace.sent} echo requests in ${pace.wall.toFixed(2)} s = ${(pace.sent / pace.wall).toFixed(0)} packets/s from one agent (${pace.received} replies)`);

// 3. Timestamp precision on loopback: 200 echoes 10 ms apart, agent vs iputils ping.
const ours = JSON.parse(execFileSync(process.execPath, [join(import.meta.dirname, "agent-load.ts"), "13", "1", "16", "10"], { encoding: "utf8" })) as { rtts: number[] };
const iputils = [...execFileSync("ping", ["-n", "-c", "208", "-i", "0.01", "127.0.0.1"], { encoding: "utf8" }).matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
const o = stats(ours.rtts), p = stats(iputils);
console.log(`timestamps (loopback RTT, ms): agent median ${o.median.toFixed(3)} stdev ${o.stdev.toFixed(3)} (n=${ours.rtts.length}); iputils ping median ${p.median.toFixed(3)} stdev ${p.stdev.toFixed(3)} (n=${iputils.length}); median difference ${(o.median - p.median).toFixed(3)} ms`);
