// The labelled captures of ../shared/datasets/ndpi-pcaps (labels.jsonl: two nDPI versions' output per flow, not
// ground truth), and how our flow records are matched to them. Used by accuracy.ts and train.ts.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { FlowRecord } from "./index.ts";

export type Label = {
  file: string; proto: string; src: string; sport: number; dst: string; dport: number; bytes: number;
  label_upstream: string; label_ndpi42: string; confidence_ndpi42: string;
};

export const DATASET = join(import.meta.dirname, "..", "..", "shared", "datasets", "ndpi-pcaps");

/** The labels of `dir` and the capture files they name that are present; exits with a message when there are none. */
export function loadLabels(dir: string): { labels: Label[]; files: string[] } {
  if (!existsSync(join(dir, "labels.jsonl"))) {
    console.error(`no labelled captures in ${dir} (labels.jsonl): pass the folder of ../shared/datasets/ndpi-pcaps`);
    process.exit(2);
  }
  const labels = readFileSync(join(dir, "labels.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Label);
  return { labels, files: [...new Set(labels.map((l) => l.file))].filter((f) => existsSync(join(dir, f))) };
}

/** Names compare without case or punctuation: "IPsec" = "IPSec", "MsSQL-TDS" = "mssqltds". */
export const norm = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, "");

/** Addresses in one spelling: IPv6 fully expanded (the labels write "::3" where inet_ntop writes ":0:3"). */
function canon(addr: string): string {
  if (!addr.includes(":")) return addr;
  const halves = addr.split("::");
  if (halves.length > 2) return addr;  // not an address (some labels have two "::"): matches nothing
  const head = halves[0] ? halves[0].split(":") : [], tail = halves[1] ? halves[1].split(":") : [];
  const groups = halves.length === 2 ? [...head, ...Array(8 - head.length - tail.length).fill("0"), ...tail] : head;
  return groups.map((g) => parseInt(g, 16).toString(16)).join(":");
}

/** A flow's identity in either direction, within its capture file. */
const key = (file: string, proto: string, a: string, ap: number, b: string, bp: number) =>
  [file, proto.toUpperCase(), ...[`${canon(a)}#${ap}`, `${canon(b)}#${bp}`].sort()].join("|");

/** Our records of one or more files, looked up by a label's flow. */
export class Matcher {
  private readonly byKey = new Map<string, FlowRecord>();
  add(file: string, records: FlowRecord[]): void {
    for (const r of records) this.byKey.set(key(file, r.proto, r.src, r.sport, r.dst, r.dport), r);
  }
  get(l: Label): FlowRecord | undefined {
    return this.byKey.get(key(l.file, l.proto, l.src, l.sport, l.dst, l.dport));
  }
}

/** Scores records against labels: share right by flows and by bytes against upstream, agreement with 4.2's DPI. */
export function score(labels: Label[], m: Matcher) {
  let matched = 0, right = 0, bytes = 0, rightBytes = 0, dpi = 0, agree = 0;
  for (const l of labels) {
    const r = m.get(l);
    if (!r) continue;
    matched++;
    bytes += l.bytes;
    if (norm(r.label) === norm(l.label_upstream)) { right++; rightBytes += l.bytes; }
    if (l.confidence_ndpi42 === "DPI") { dpi++; if (norm(r.label) === norm(l.label_ndpi42)) agree++; }
  }
  return { matched, flows: right / Math.max(1, matched), bytes: rightBytes / Math.max(1, bytes), agreement: agree / Math.max(1, dpi) };
}

export const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
