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
  /** With the `features` option: the statistical plug-in's inputs — IP protocol number, the signed IP sizes of the
   * first 6 packets carrying payload (+ up, − down; 0 where there were fewer), then the ms before each of them. */
  features?: number[];
};

/** Decision times of the flows one plug-in decided (with `timing`): plug-ins and combiner, in µs of CPU work. */
export type DecisionTiming = { decisions: number; median_us: number; p90_us: number; mean_us: number };

export type ClassifyStats = {
  packets: number; decoded: number; truncated: number; malformed: number; not_ip: number; fragments: number;
  flows: number; evicted: number; warnings: string[];
  /** With `timing`: by the plug-in that decided ("Unknown": none did; "port (sure)": a sure answer, asked first). */
  timing?: Record<string, DecisionTiming>;
};

/** Traffic of one application: flows, and packets and IP bytes in each direction. */
export type AppTraffic = { label: string; flows: number; packets_up: number; bytes_up: number; packets_down: number; bytes_down: number };

/** Traffic per application in one interval of capture time (cyclic mode). */
export type IntervalReport = { start: number; end: number; apps: AppTraffic[] };

/** What a run returns: every flow (unless `flows: false`), decoding counters, and traffic per application. */
export type Classified = { flows: FlowRecord[]; stats: ClassifyStats; apps: AppTraffic[] };

/** Pushed while the captures are read: a flow decided (realtime) or an interval closed (cyclic). */
export type ClassifyEvent = { type: "decision"; flow: FlowRecord } | ({ type: "interval" } & IntervalReport);

export type ClassifyOptions = {
  /** Plug-ins in order (cheap first). Available: port, signature, ndpi, statistical. */
  plugins?: string[];
  /** A BPF filter expression applied while reading. */
  bpf?: string;
  /** Flows held at once; when full the least recently seen flow is ended and reported. */
  maxFlows?: number;
  /** Seconds after which a long session is reported and its next packet starts a new one (default 0: never). */
  activeTimeout?: number;
  /** Cyclic mode: report traffic per application every `interval` seconds of capture time. */
  interval?: number;
  /**
   * priority (default): the first plug-in in order that answers, once those before it have answered or given up;
   * majority: most answers; weighted: answers weigh their plug-in's learned precision per label (data/weights.tsv,
   * made by `npm run train:classifier`), and a sure answer decides at once.
   */
  combiner?: "priority" | "majority" | "weighted";
  /** The weighted combiner's model file, instead of data/weights.tsv. */
  weights?: string;
  /** false: return no per-flow records, only the traffic per application (a summary, as `ndpiReader -q`). */
  flows?: boolean;
  /** Measure each flow's decision time (plug-ins and combiner), reported per deciding plug-in in stats.timing. */
  timing?: boolean;
  /** Add each record's statistical features (for training). */
  features?: boolean;
  /**
   * bidirectional (default): 5-tuple + VLAN flows, both directions one session; unidirectional: each direction its
   * own session; host-pair: all traffic between two addresses (+ VLAN), whatever the protocol and ports.
   */
  sessions?: "bidirectional" | "unidirectional" | "host-pair";
  /** Where the plug-ins' data are (services.tsv, signatures.tsv, statistical.tsv, weights.tsv); default data/. */
  dataDir?: string;
};

const ADDON = join(import.meta.dirname, "build", "Release", "vantage_classifier.node");
export const DATA_DIR = join(import.meta.dirname, "data");

type Addon = {
  classify(files: string[], options: Record<string, unknown>, onEvent?: (e: ClassifyEvent) => void): Promise<Classified>;
};

export function classifierBuilt(): boolean {
  return existsSync(ADDON);
}

let addon: Addon | null = null;
function load(): Addon {
  if (!classifierBuilt()) throw new Error("the classifier addon is not built: run `npm run build:classifier` (needs libpcap-dev)");
  addon ??= createRequire(import.meta.url)(ADDON) as Addon;
  return addon;
}

/**
 * Reads the captures (pcap or pcapng) in order and returns every flow, classified, with decoding counters. With
 * `onEvent`, each decision is pushed the moment it is made (realtime), and with `interval` each closed interval's
 * traffic per application (cyclic).
 */
export function classifyFiles(files: string[], o: ClassifyOptions = {}, onEvent?: (e: ClassifyEvent) => void): Promise<Classified> {
  if (o.interval !== undefined && !(o.interval > 0)) return Promise.reject(new Error("interval must be a positive number of seconds"));
  return load().classify(files, addonOptions(o), onEvent);
}

function addonOptions(o: ClassifyOptions): Record<string, unknown> {
  return {
    data_dir: o.dataDir ?? DATA_DIR, plugins: o.plugins ?? ["port"], bpf: o.bpf, max_flows: o.maxFlows, active_timeout: o.activeTimeout, interval: o.interval,
    sessions: o.sessions, combiner: o.combiner, weights: o.weights, flows: o.flows, timing: o.timing, features: o.features,
  };
}

/**
 * Live capture on a network interface for `seconds` (needs CAP_NET_RAW): the same pipeline, decisions pushed as
 * they are made (realtime) or per `interval` (cyclic); every flow at the end.
 */
export function classifyLive(iface: string, seconds: number, o: ClassifyOptions = {}, onEvent?: (e: ClassifyEvent) => void): Promise<Classified> {
  if (!/^[\w.:-]{1,64}$/.test(iface)) return Promise.reject(new Error(`not an interface name: "${iface}"`));
  if (!(seconds > 0)) return Promise.reject(new Error("seconds must be positive"));
  return load().classify([], { ...addonOptions(o), interface: iface, duration: seconds }, onEvent);
}

/** Realtime mode as an async iterator: decisions (and interval reports) as they are made. */
export async function* classifyEvents(files: string[], o: ClassifyOptions = {}): AsyncGenerator<ClassifyEvent> {
  const queue: ClassifyEvent[] = [];
  let wake: (() => void) | null = null;
  let finished = false;
  let failure: unknown = null;
  classifyFiles(files, o, (e) => { queue.push(e); wake?.(); })
    .catch((e: unknown) => { failure = e; })
    .finally(() => { finished = true; wake?.(); });
  for (;;) {
    if (queue.length) { yield queue.shift()!; continue; }
    if (failure) throw failure;
    if (finished) return;
    await new Promise<void>((r) => { wake = r; });
    wake = null;
  }
}

/** A TIE-like text line: the flow, its counters, and the decision. */
export function textLine(r: FlowRecord): string {
  return [r.proto, r.src, r.sport, r.dst, r.dport, r.first_ts.toFixed(6), r.last_ts.toFixed(6),
    r.packets_up, r.bytes_up, r.packets_down, r.bytes_down, r.label, r.confidence, r.plugin ?? "-", r.packets_to_decision].join("\t");
}
