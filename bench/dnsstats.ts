// `npm run bench:dnsstats`: the DNS statistics collector beside the references in the same run, on one capture of
// dnsperf traffic against NSD in a network namespace (test/node/dnsstats/traffic.ts, the truth test's mix at a
// higher rate). Prints
//   - size: the pcap, the pcap compressed (gzip -9, xz -6 as RFC 8618 App. C compresses), and what the collector
//     keeps (a minute's statistics as uploaded, gzipped, plus the hour's C-DNS sample, gzipped), with ratios;
//   - speed on one core (taskset): queries/s from the capture, beside dnscap's RSSAC002 counters plug-in (DNS-OARC,
//     the closest DSC-like collector Debian packages) and tshark's DNS statistics over the same file;
//   - memory: the running agent's peak RSS collecting a DNS server's dnstap, beside the same agent with the
//     statistics off (and the file run's, for the record).
// Needs root (a namespace), nsd, knot (+ knot-module-dnstap), dnsperf, tcpdump, tshark, dnscap, xz and GNU time. BENCH_DNS_SECONDS and
// BENCH_DNS_QPS scale the traffic.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";
import { AGENT_ENV, BUNDLE, NODE_FLAGS } from "../probe-agent/build.ts";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { capture, dnsperf, queryFile, standardMix } from "../test/node/dnsstats/traffic.ts";
import { Netns } from "../test/node/netns.ts";
import { startKnot, startNsd } from "../test/node/servers.ts";
import { tempDir } from "../test/node/system.ts";

const SECONDS = Number(process.env.BENCH_DNS_SECONDS ?? 10);
const QPS = Number(process.env.BENCH_DNS_QPS ?? 6000);
const work = tempDir("bench-dnsstats");
const pcap = join(work, "traffic.pcap");

function timed(cmd: string, args: string[]): { cpu: number; wall: number; rssMiB: number; stdout: string } {
  const out = join(work, "time.txt");
  const stdout = execFileSync("/usr/bin/time", ["-o", out, "-f", "%U %S %e %M", "taskset", "-c", "0", cmd, ...args], { encoding: "utf8", maxBuffer: 256 << 20 });
  const [u, s, e, m] = readFileSync(out, "utf8").trim().split("\n").pop()!.split(" ").map(Number) as [number, number, number, number];
  return { cpu: u + s, wall: e, rssMiB: m / 1024, stdout };
}
const best = <T extends { cpu: number }>(runs: T[]) => runs.reduce((a, b) => (b.cpu < a.cpu ? b : a));
const mb = (n: number) => (n / 1e6).toFixed(3).padStart(8);

execFileSync(process.execPath, [join(import.meta.dirname, "..", "probe-agent", "build.ts")], { stdio: "inherit" });
const ns = new Netns("bdns");
const nsd = await startNsd(ns, { unlimited: true });
try {
  queryFile(join(work, "queries"), 100_000);
  const cap = await capture(ns, pcap);
  for (const run of standardMix(SECONDS, QPS)) dnsperf(ns, join(work, "queries"), run);
  await cap.stop();
} finally {
  await nsd.stop();
  ns.remove();
}

// The collector as the agent ships it (its bundle re-runs itself without lite mode for a capture file), three times.
const out = (i: number) => join(work, `out${i}`);
const runs = [0, 1, 2].map((i) => timed(BUNDLE, ["dnsstats", "--read", pcap, "--out", out(i)]));
const run = best(runs);
const summary = JSON.parse(run.stdout.trim().split("\n").pop()!) as { messages: number; seconds: number };
const minutes = readdirSync(join(out(0), "minutes")).sort().map((f) => JSON.parse(readFileSync(join(out(0), "minutes", f), "utf8")) as { servers: { queries: number }[] });
const queries = minutes.reduce((n, m) => n + m.servers.reduce((k, s) => k + s.queries, 0), 0);
// In lite mode, as the running agent would collect from an interface.
const liteRun = join(work, "dnsstats-run.mjs");
await build({ entryPoints: [join(import.meta.dirname, "dnsstats-run.ts")], bundle: true, platform: "node", format: "esm", outfile: liteRun, logLevel: "error",
  banner: { js: 'import{createRequire as __benchRequire}from"node:module";const require=__benchRequire(import.meta.url);' } });
const lite = best([0, 1].map((i) => timed(process.execPath, [...NODE_FLAGS, liteRun, pcap, join(work, `lite${i}`)])));
const idle = timed(BUNDLE, ["enroll", "--state", join(work, "idle-state")]);
const dnscapDir = join(work, "dnscap");
execFileSync("mkdir", ["-p", dnscapDir]);
const rssm = readdirSync("/usr/lib").flatMap((d) => { try { return readdirSync(join("/usr/lib", d, "dnscap")).includes("rssm.so") ? [join("/usr/lib", d, "dnscap", "rssm.so")] : []; } catch { return []; } })[0]!;
const dnscap = best([0, 1, 2].map(() => timed("dnscap", ["-r", pcap, "-P", rssm, "-w", join(dnscapDir, "rssm"), "-Y", "-n", "bench", "-D"])));
const tshark = best([0, 1].map(() => timed("tshark", ["-r", pcap, "-q", "-z", "dns,tree"])));

// The running agent's memory: its peak RSS (VmHWM) over AGENT_S seconds of Knot's dnstap at AGENT_QPS, against the
// same agent with DNS statistics off over the same time (no edge: it keeps trying to register, as a probe offline).
const AGENT_S = Number(process.env.BENCH_DNS_AGENT_SECONDS ?? 20), AGENT_QPS = Number(process.env.BENCH_DNS_AGENT_QPS ?? 3000);
async function agentPeak(withStats: boolean): Promise<{ hwmMiB: number; minutes: number }> {
  const dir = join(work, withStats ? "agent-on" : "agent-off");
  mkdirSync(dir, { recursive: true });
  const socket = join(dir, "tap.sock");
  const { publicKey } = await import("node:crypto").then((c) => c.generateKeyPairSync("ed25519"));
  writeFileSync(join(dir, "agent.json"), JSON.stringify({
    probe_id: 1, registration_urls: ["http://127.0.0.1:9/"], edge_public_jwk: publicKey.export({ format: "jwk" }), state_dir: dir,
    builtins: { enabled: false }, ...(withStats ? { dnsstats: { dnstap_socket: socket } } : {}),
  }));
  const child = spawn(process.execPath, [...NODE_FLAGS, BUNDLE, "run", "--config", join(dir, "agent.json")], { stdio: "ignore", env: { ...process.env, ...AGENT_ENV } });
  const hwm = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))![1]) / 1024;
  try {
    const ns = new Netns("bdna");
    try {
      if (withStats) {
        for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 100));
        const knot = await startKnot(ns, `unix:${socket}`);
        queryFile(join(dir, "queries"), 50_000, 9);
        dnsperf(ns, join(dir, "queries"), { server: "127.0.0.1", seconds: AGENT_S, qps: AGENT_QPS });
        await knot.stop();
      } else {
        await new Promise((r) => setTimeout(r, AGENT_S * 1000));
      }
    } finally {
      ns.remove();
    }
    return { hwmMiB: hwm(), minutes: withStats ? readdirSync(join(dir, "dnsstats", "minutes")).length : 0 };
  } finally {
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
  }
}
const agentOff = await agentPeak(false);
const agentOn = await agentPeak(true);

const pcapBytes = statSync(pcap).size;
const gz = execFileSync("gzip", ["-9", "-c", pcap], { maxBuffer: 1 << 30 }).length;
const xz = execFileSync("xz", ["-6", "-T1", "-c", pcap], { maxBuffer: 1 << 30 }).length;
const statsBytes = gzipSync(readdirSync(join(out(0), "minutes")).sort().map((f) => readFileSync(join(out(0), "minutes", f), "utf8")).join("\n"), { level: 9 }).length;
const sampleBytes = readdirSync(join(out(0), "cdns")).reduce((n, f) => n + statSync(join(out(0), "cdns", f)).size, 0);
const kept = statsBytes + sampleBytes;
writeFileSync(join(work, "sizes.json"), JSON.stringify({ pcapBytes, gz, xz, statsBytes, sampleBytes }));

const cpus = execFileSync("sh", ["-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], { encoding: "utf8" }).trim();
console.log(`\nmachine: ${cpus}, ${execFileSync("nproc", { encoding: "utf8" }).trim()} cores; Node ${process.versions.node}`);
console.log(`capture: ${summary.messages.toLocaleString("en")} DNS messages (${queries.toLocaleString("en")} queries) in ${mb(pcapBytes).trim()} MB over ${minutes.length} minutes (dnsperf, ${SECONDS} s per run at up to ${QPS} queries/s)\n`);
console.log("size                                          MB      pcap ÷ this");
console.log(`pcap                                    ${mb(pcapBytes)}        1.0×`);
console.log(`pcap, gzip -9                           ${mb(gz)}   ${(pcapBytes / gz).toFixed(1).padStart(8)}×`);
console.log(`pcap, xz -6 (RFC 8618's baseline)       ${mb(xz)}   ${(pcapBytes / xz).toFixed(1).padStart(8)}×`);
console.log(`statistics (per minute, gzip)           ${mb(statsBytes)}   ${(pcapBytes / statsBytes).toFixed(1).padStart(8)}×`);
console.log(`1 % sample (C-DNS, gzip)                ${mb(sampleBytes)}   ${(pcapBytes / sampleBytes).toFixed(1).padStart(8)}×`);
console.log(`statistics + sample                     ${mb(kept)}   ${(pcapBytes / kept).toFixed(1).padStart(8)}×   (goal ≥ 50×; RFC 8618's C-DNS of every pair + xz: ~37×)`);
console.log("\nspeed, one core                       CPU (s)   queries/s (CPU)   peak RSS (MB)   vs dnscap");
const line = (name: string, t: { cpu: number; rssMiB: number }) =>
  console.log(`${name.padEnd(36)} ${t.cpu.toFixed(2).padStart(8)} ${(queries / t.cpu).toFixed(0).padStart(17)} ${t.rssMiB.toFixed(1).padStart(15)}   ${(dnscap.cpu / t.cpu).toFixed(2)}×`);
line("vantage-probe dnsstats (as shipped)", run);
line("collector in lite mode (live agent)", lite);
line("dnscap -P rssm.so (RSSAC002 counters)", dnscap);
line("tshark -z dns,tree", tshark);
console.log(`(CPU = user + sys of the whole process, start-up included; the collector's own clock: ${(queries / summary.seconds).toFixed(0)} queries/s; goal ≥ 200,000)`);
console.log(`\nmemory: the running agent (lite mode) collecting Knot's dnstap at ${AGENT_QPS} queries/s for ${AGENT_S} s peaks at ${agentOn.hwmMiB.toFixed(1)} MB RSS, the same agent without DNS statistics at ${agentOff.hwmMiB.toFixed(1)} MB: ${(agentOn.hwmMiB - agentOff.hwmMiB).toFixed(1)} MB more (goal ≤ 20 MB)`);
console.log(`(a capture file read by \`vantage-probe dnsstats\` without lite mode peaks at ${run.rssMiB.toFixed(1)} MB, ${idle.rssMiB.toFixed(1)} MB for the bundle doing nothing: a batch job, not the agent)`);
