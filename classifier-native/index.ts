// TypeScript facade of the classifier addon (src/): classify capture files offline into one record per flow.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

export type FlowRecord = {
  proto: string;
  src: string;
  sport: number;
  dst: string;
  dport: number;
  vlan: number | null;
  first_ts: number;
  last_ts: number;
  packets_up: number;
  bytes_up: number;
  packets_down: number;
  bytes_down: number;
  /** nDPI's application name, or "Unknown". */
  label: string;
  confidence: number;
  /** The plug-in that decided, null when none did. */
  plugin: string | null;
  packets_to_decision: number;
};

export type ClassifyStats = {
  packets: number; decoded: number; truncated: number; malformed: number; not_ip: number; fragments: number;
  flows: number; evicted: number; warnings: string[];
};

export type ClassifyOptions = {
  /** Plug-ins in the order the priority combiner asks them (cheap first). Available: port. */
  plugins?: string[];
  /** A BPF filter expression applied while reading. */
  bpf?: string;
  /** Flows held at once; when full the least recently seen flow is ended and reported. */
  maxFlows?: number;
};

const ADDON = join(import.meta.dirname, "build", "Release", "vantage_classifier.node");
export const DATA_DIR = join(import.meta.dirname, "data");

type Addon = { classify(files: string[], options: Record<string, unknown>): Promise<{ flows: FlowRecord[]; stats: ClassifyStats }> };

export function classifierBuilt(): boolean {
  return existsSync(ADDON);
}

let addon: Addon | null = null;
function load(): Addon {
  if (!classifierBuilt()) throw new Error("the classifier addon is not built: run `npm run build:classifier` (needs libpcap-dev)");
  addon ??= createRequire(import.meta.url)(ADDON) as Addon;
  return addon;
}

/** Reads the captures (pcap or pcapng) in order and returns every flow, classified, with decoding counters. */
export function classifyFiles(files: string[], o: ClassifyOptions = {}): Promise<{ flows: FlowRecord[]; stats: ClassifyStats }> {
  return load().classify(files, { data_dir: DATA_DIR, plugins: o.plugins ?? ["port"], bpf: o.bpf, max_flows: o.maxFlows });
}

/** A TIE-like text line: the flow, its counters, and the decision. */
export function textLine(r: FlowRecord): string {
  return [r.proto, r.src, r.sport, r.dst, r.dport, r.first_ts.toFixed(6), r.last_ts.toFixed(6),
    r.packets_up, r.bytes_up, r.packets_down, r.bytes_down, r.label, r.confidence, r.plugin ?? "-", r.packets_to_decision].join("\t");
}
