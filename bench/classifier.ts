// `npm run bench:classifier [-- DIR]`: the classifier beside Debian's ndpiReader 4.2 over the same captures, each
// one process on one core with start-up amortised over several loops of a playlist. Prints packets/s, µs per flow
// and peak memory, with ratios; the bytes of state per flow; PCRE2-JIT against vectorscan for the signatures. Needs
// the shared captures (../shared/datasets/ndpi-pcaps), GNU time, g++ and libpcre2-dev.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../test/node/system.ts";

const dir = process.argv[2] ?? join(import.meta.dirname, "..", "..", "shared", "datasets", "ndpi-pcaps");
if (!existsSync(dir)) { console.error(`no captures in ${dir}`); process.exit(2); }
const LOOPS = Number(process.env.BENCH_LOOPS ?? 5);
const work = tempDir("bench-classifier");
const playlist = join(work, "playlist.txt");
const captures = readdirSync(dir).filter((f) => /\.pcap(ng)?$/.test(f)).sort().map((f) => join(dir, f));
writeFileSync(playlist, captures.join("\n") + "\n");

function timed(cmd: string, args: string[]): { cpu: number; wall: number; rssMiB: number; stdout: string } {
  const out = join(work, "time.txt");
  const stdout = execFileSync("/usr/bin/time", ["-o", out, "-f", "%U %S %e %M", "taskset", "-c", "0", cmd, ...args], { encoding: "utf8", maxBuffer: 64 << 20 });
  const [u, s, e, m] = readFileSync(out, "utf8").trim().split("\n").pop()!.split(" ").map(Number) as [number, number, number, number];
  return { cpu: u + s, wall: e, rssMiB: m / 1024, stdout };
}

console.log(`${captures.length} captures × ${LOOPS} loops, one core each (taskset -c 0)\n`);
const reference = timed("ndpiReader", ["-q", "-n", "1", "-i", playlist, "-l", String(LOOPS)]);
const rows: [string, { cpu: number; wall: number; rssMiB: number }, { packets: number; flows: number }][] = [];
const runs: [string, string, string][] = [
  ["weighted (port, sig, ndpi)", "port,signature,ndpi", "weighted"], ["signature → ndpi → port", "signature,ndpi,port", "priority"],
  ["ndpi alone", "ndpi", "priority"], ["port → ndpi", "port,ndpi", "priority"], ["port alone", "port", "priority"],
];
for (const [name, plugins, combiner] of runs) {
  const t = timed(process.execPath, [join(import.meta.dirname, "classifier-run.ts"), playlist, String(LOOPS), plugins, combiner]);
  rows.push([name, t, JSON.parse(t.stdout) as { packets: number; flows: number }]);
}
const packets = rows[0]![2].packets;
const pps = (cpu: number) => packets / cpu;
console.log("run                               CPU (s)   packets/s (CPU)   µs per flow   peak RSS (MB)   packets/s vs ndpiReader");
console.log(`ndpiReader 4.2                   ${reference.cpu.toFixed(2).padStart(8)} ${pps(reference.cpu).toFixed(0).padStart(17)} ${"".padStart(13)} ${reference.rssMiB.toFixed(1).padStart(15)}   1.00×`);
for (const [name, t, r] of rows) {
  console.log(`${name.padEnd(32)} ${t.cpu.toFixed(2).padStart(8)} ${pps(t.cpu).toFixed(0).padStart(17)} ${((t.cpu * 1e6) / r.flows).toFixed(1).padStart(13)} ${t.rssMiB.toFixed(1).padStart(15)}   ${(reference.cpu / t.cpu).toFixed(2)}×`);
}
console.log(`\n(${packets} packets per run; CPU = user + sys of the whole process, start-up included)`);

// The cheap path: decisions a sure port or signature answer made before nDPI was asked (weighted combiner), timed
// in the addon (plug-ins + combiner per flow), over every capture once.
const { classifyFiles } = await import("../classifier-native/index.ts");
const decisions = (await classifyFiles(captures, { plugins: ["port", "signature", "ndpi"], combiner: "weighted", flows: false, timing: true })).stats.timing ?? {};
const cheap = ["port (sure)", "signature (sure)"].flatMap((p) => decisions[p] ? [`${p}: ${decisions[p].decisions} decisions, median ${decisions[p].median_us.toFixed(2)} µs, p90 ${decisions[p].p90_us.toFixed(2)} µs`] : []);
console.log(`cheap path (weighted combiner) — ${cheap.join("; ")} (goal: median ≤ 2 µs)`);

// Flow state: malloc'd bytes per flow with 1,000,000 concurrent flows in the table (tools/flow_memory.cc).
const native = join(import.meta.dirname, "..", "classifier-native");
const tool = join(work, "flow_memory");
execFileSync("g++", ["-std=c++17", "-O2", `-I${join(native, "src")}`, join(native, "tools", "flow_memory.cc"), join(native, "src", "flow_table.cc"), "-o", tool]);
const memory = JSON.parse(execFileSync(tool, { encoding: "utf8" })) as { flows: number; bytes_per_flow: number; sizeof_flow: number };
console.log(`flow state: ${memory.bytes_per_flow.toFixed(0)} bytes per flow with ${memory.flows.toLocaleString("en")} concurrent flows (goal ≤ 400; sizeof(Flow) ${memory.sizeof_flow}; nDPI's own flow struct not included)`);

// The signature plug-in's engine, chosen by this measurement: PCRE2-JIT one rule at a time against one vectorscan
// database, over the early payload of every flow of the captures (tools/signature_engines.cc; needs libpcre2-dev).
const engines = join(work, "signature_engines");
const sources = ["decode", "flow_table", "port_plugin", "ndpi_plugin", "signature_plugin", "statistical_plugin", "engine"].map((f) => join(native, "src", `${f}.cc`));
execFileSync("g++", ["-std=c++17", "-O2", `-I${join(native, "src")}`, "-I/usr/include/ndpi", join(native, "tools", "signature_engines.cc"), ...sources,
  "-lpcap", "-lndpi", "-lgcrypt", "-lm", "-lpcre2-8", "-lhs", "-o", engines]);
const s = JSON.parse(execFileSync(engines, [join(native, "data"), ...captures], { encoding: "utf8" })) as { rules: number; prefixes: number; matched: number; pcre2_jit_ns: number; vectorscan_ns: number };
console.log(`signatures: ${s.rules} rules over ${s.prefixes} early-payload prefixes (${s.matched} match, same rule in both): PCRE2-JIT ${s.pcre2_jit_ns.toFixed(1)} ns, vectorscan ${s.vectorscan_ns.toFixed(1)} ns per prefix (${(s.pcre2_jit_ns / s.vectorscan_ns).toFixed(1)}×)`);
