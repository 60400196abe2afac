// `npm run bench:classifier [-- DIR]`: the classifier beside Debian's ndpiReader 4.2 over the same captures, each
// one process on one core with start-up amortised over several loops of a playlist. Prints packets/s, µs per flow
// and peak memory, with ratios. Needs the shared captures (../shared/datasets/ndpi-pcaps) and GNU time.
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
  ["weighted (port, sig, stat, ndpi)", "port,signature,statistical,ndpi", "weighted"], ["signature → ndpi → port", "signature,ndpi,port", "priority"],
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
