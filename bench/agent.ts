// `npm run bench:agent`: the probe agent's measurement engine on this machine, next to scamper doing the same work
// in the same run. Prints: CPU and peak RSS per ping result with 100 concurrent measurements; the packet rate one
// agent paces; RTT timestamp precision next to iputils ping. Needs root (or ping_group_range) and GNU time.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../test/node/system.ts";

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

// 1. CPU and memory per result, agent vs scamper, the same pings.
const agent = timed(process.execPath, [join(import.meta.dirname, "agent-load.ts"), String(ROUNDS), String(CONCURRENCY), "10", "100"],
  { UV_THREADPOOL_SIZE: String(CONCURRENCY + 4) });
const a = JSON.parse(agent.stdout) as { results: number; sent: number; received: number; wall: number; rtts: number[] };
// The same process doing no measurement: Node's start-up and module loading, to tell fixed from marginal cost.
const idle = timed(process.execPath, [join(import.meta.dirname, "agent-load.ts"), "0", String(CONCURRENCY), "10", "100"]);
const targets = join(dir, "targets.txt");
writeFileSync(targets, Array.from({ length: ROUNDS }, () => Array.from({ length: CONCURRENCY }, (_, i) => `127.0.0.${i + 1}`).join("\n")).join("\n") + "\n");
const scamperOut = join(dir, "scamper.json");
const sc = timed("scamper", ["-c", "ping -c 10 -i 0.1", "-p", "10000", "-w", String(CONCURRENCY), "-O", "json", "-o", scamperOut, "-f", targets]);
const scamperResults = readFileSync(scamperOut, "utf8").split("\n").filter((l) => l.includes('"type":"ping"')).length;
const perResult = (t: Timed, n: number) => ((t.user + t.sys) * 1000) / n;
const row = (name: string, ours: string, theirs: string, target = "") => console.log(`${name.padEnd(40)} ${ours.padStart(12)} ${theirs.padStart(12)}   ${target}`);
row("", "agent", "scamper");
row("results", String(a.results), String(scamperResults));
row("wall time (s)", agent.wall.toFixed(2), sc.wall.toFixed(2));
row("CPU per ping result (ms)", perResult(agent, a.results).toFixed(3), perResult(sc, scamperResults).toFixed(3), "goal ≤ 0.5 ms");
row("  of which marginal (minus idle start-up)", ((agent.user + agent.sys - idle.user - idle.sys) * 1000 / a.results).toFixed(3), "", "");
row("peak RSS (MB)", (agent.maxrssKiB / 1024).toFixed(1), (sc.maxrssKiB / 1024).toFixed(1), "goal ≤ 60 MB");
row("  idle agent process RSS (MB)", (idle.maxrssKiB / 1024).toFixed(1), "", "");
console.log(`ratio agent/scamper: CPU per result ${(perResult(agent, a.results) / perResult(sc, scamperResults)).toFixed(2)}×, peak RSS ${(agent.maxrssKiB / sc.maxrssKiB).toFixed(2)}×`);

// 2. Pacing: 100 concurrent trains of 16 packets, 2 ms apart.
const pace = JSON.parse(execFileSync(process.execPath, [join(import.meta.dirname, "agent-load.ts"), "3", String(CONCURRENCY), "16", "2"], {
  encoding: "utf8", env: { ...process.env, UV_THREADPOOL_SIZE: String(CONCURRENCY + 4) }, maxBuffer: 64 * 1024 * 1024,
})) as { sent: number; received: number; wall: number };
console.log(`\npacing: ${pace.sent} echo requests in ${pace.wall.toFixed(2)} s = ${(pace.sent / pace.wall).toFixed(0)} packets/s from one agent (${pace.received} replies)`);

// 3. Timestamp precision on loopback: 200 echoes 10 ms apart, agent vs iputils ping.
const ours = JSON.parse(execFileSync(process.execPath, [join(import.meta.dirname, "agent-load.ts"), "13", "1", "16", "10"], { encoding: "utf8" })) as { rtts: number[] };
const iputils = [...execFileSync("ping", ["-n", "-c", "208", "-i", "0.01", "127.0.0.1"], { encoding: "utf8" }).matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
const o = stats(ours.rtts), p = stats(iputils);
console.log(`timestamps (loopback RTT, ms): agent median ${o.median.toFixed(3)} stdev ${o.stdev.toFixed(3)} (n=${ours.rtts.length}); iputils ping median ${p.median.toFixed(3)} stdev ${p.stdev.toFixed(3)} (n=${iputils.length}); median difference ${(o.median - p.median).toFixed(3)} ms`);
