// `npm run accuracy:classifier [-- DIR]`: scores plug-in configurations against the labelled captures of
// ../shared/datasets/ndpi-pcaps (labels.jsonl: two nDPI versions' output, not ground truth). Prints, per
// configuration, the share of flows (and of bytes) whose label matches upstream nDPI's, and the agreement with
// Debian's nDPI 4.2 on the flows 4.2 decided by DPI.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { classifyFiles, type FlowRecord } from "./index.ts";

type Label = {
  file: string; proto: string; src: string; sport: number; dst: string; dport: number; bytes: number;
  label_upstream: string; label_ndpi42: string; confidence_ndpi42: string;
};

const dir = process.argv[2] ?? join(import.meta.dirname, "..", "..", "shared", "datasets", "ndpi-pcaps");
if (!existsSync(join(dir, "labels.jsonl"))) {
  console.error(`no labelled captures in ${dir} (labels.jsonl): pass the folder of ../shared/datasets/ndpi-pcaps`);
  process.exit(2);
}
const labels = readFileSync(join(dir, "labels.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Label);
const files = [...new Set(labels.map((l) => l.file))].filter((f) => existsSync(join(dir, f)));
/** Names compare without case or punctuation: "IPsec" = "IPSec", "MsSQL-TDS" = "mssqltds". */
const norm = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, "");
/** Addresses in one spelling: IPv6 fully expanded (the labels write "::3" where inet_ntop writes ":0:3"). */
function canon(addr: string): string {
  if (!addr.includes(":")) return addr;
  const halves = addr.split("::");
  if (halves.length > 2) return addr;  // not an address (some labels have two "::"): matches nothing
  const head = halves[0] ? halves[0].split(":") : [], tail = halves[1] ? halves[1].split(":") : [];
  const groups = halves.length === 2 ? [...head, ...Array(8 - head.length - tail.length).fill("0"), ...tail] : head;
  return groups.map((g) => parseInt(g, 16).toString(16)).join(":");
}
const key = (file: string, proto: string, a: string, ap: number, b: string, bp: number) =>
  [file, proto.toUpperCase(), ...[`${canon(a)}#${ap}`, `${canon(b)}#${bp}`].sort()].join("|");

const configs: [string, string[]][] = [["port", ["port"]], ["signature", ["signature"]], ["ndpi", ["ndpi"]], ["ndpi → port", ["ndpi", "port"]], ["port → ndpi", ["port", "ndpi"]], ["ndpi → signature → port", ["ndpi", "signature", "port"]], ["signature → ndpi → port", ["signature", "ndpi", "port"]]];
console.log(`${files.length} captures, ${labels.length} labelled flows\n`);
console.log("configuration      flows matched   upstream (flows)   upstream (bytes)   agrees with 4.2 DPI   µs/flow");
for (const [name, plugins] of configs) {
  const ours = new Map<string, FlowRecord>();
  const started = performance.now();
  let flows = 0;
  for (const file of files) {
    const { flows: records } = await classifyFiles([join(dir, file)], { plugins });
    flows += records.length;
    for (const r of records) ours.set(key(file, r.proto, r.src, r.sport, r.dst, r.dport), r);
  }
  const micros = ((performance.now() - started) * 1000) / Math.max(1, flows);
  let matched = 0, right = 0, bytes = 0, rightBytes = 0, dpi = 0, agree = 0;
  for (const l of labels) {
    const r = ours.get(key(l.file, l.proto, l.src, l.sport, l.dst, l.dport));
    if (!r) continue;
    matched++;
    bytes += l.bytes;
    if (norm(r.label) === norm(l.label_upstream)) { right++; rightBytes += l.bytes; }
    if (l.confidence_ndpi42 === "DPI") { dpi++; if (norm(r.label) === norm(l.label_ndpi42)) agree++; }
  }
  const pct = (a: number, b: number) => `${((100 * a) / Math.max(1, b)).toFixed(1)} %`;
  console.log(`${name.padEnd(18)} ${`${matched}/${labels.length}`.padStart(13)} ${pct(right, matched).padStart(18)} ${pct(rightBytes, bytes).padStart(18)} ${pct(agree, dpi).padStart(21)} ${micros.toFixed(1).padStart(9)}`);
}
