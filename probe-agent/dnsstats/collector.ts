// The DNS statistics collector: DNS messages in (from packets or dnstap), per-minute DSC-style datasets per server
// out, plus a deterministic sample of whole query/response pairs. Queries and responses are matched as DSC matches
// them (DNS id, IP version, transport, client address and port, server address and port); a query unanswered
// within `timeoutMs` counts as "unanswered" in the response_time dataset of the minute it was sent.
import type { DscDataset } from "../../protocol/dsc.ts";
import { fmix32, hashString, HyperLogLog } from "../../protocol/hll.ts";
import { Dataset, type DatasetSpec } from "./datasets.ts";
import { type DecodeCounters, DnsHeader, type DnsPacket, readDns } from "./decode.ts";
import { v4Text, v6Text } from "./address.ts";

export type CollectorOptions = {
  /** Share of query/response pairs kept whole (0–1), chosen by a hash of client, port and DNS id. */
  sampleRate: number;
  /** A query without a response after this long is unanswered. */
  timeoutMs: number;
  /** Queries awaiting a response at most; past it the oldest is given up and counted as dropped (DSC: response_time_max_queries). */
  maxPending: number;
  /** Keep full client addresses in the statistics (a `client` dataset). Off by default: only /24 and /96 subnets. */
  clientAddresses: boolean;
  /** Servers with their own statistics per minute; traffic of further servers is counted under "other". */
  maxServers: number;
};

export const DEFAULT_COLLECTOR: CollectorOptions = { sampleRate: 0.01, timeoutMs: 5000, maxPending: 100_000, clientAddresses: false, maxServers: 32 };

/** One sampled query/response pair, as the C-DNS writer stores it. Addresses as DnsPacket holds them. */
export type SampledPair = {
  tsUs: number;
  v6: boolean;
  tcp: boolean;
  client: number | string;
  clientPort: number;
  server: number | string;
  serverPort: number;
  hopLimit: number;
  id: number;
  qname: string;
  qtype: number;
  qclass: number;
  query: null | { size: number; flags: number; opcode: number; rcode: number; qdcount: number; ancount: number; nscount: number; arcount: number; ednsVersion: number; udpSize: number; do: boolean };
  response: null | { size: number; flags: number; rcode: number; delayUs: number; qdcount: number };
};

export type ServerMinute = {
  server: string;
  queries: number;
  responses: number;
  /** Distinct client addresses (estimate) and the sketch that gives it. */
  clients: { estimate: number; hll: ReturnType<HyperLogLog["serialize"]> };
  datasets: DscDataset[];
};

export type MinuteRecord = {
  start_time: number;
  stop_time: number;
  /** What the input held since the previous record: frames, and those not counted (not DNS, fragments, …). */
  capture: DecodeCounters & { messages: number };
  servers: ServerMinute[];
};

const Q = "queries-only", R = "replies-only";
/** The datasets every server gets each minute (DSC's default names where DSC has one). */
export const DATASETS: (DatasetSpec & { messages: typeof Q | typeof R | "pairs" })[] = [
  { name: "qtype", dimensions: ["All", "Qtype"], maxCells: 0, messages: Q },
  { name: "rcode", dimensions: ["All", "Rcode"], maxCells: 0, messages: R },
  { name: "opcode", dimensions: ["All", "Opcode"], maxCells: 0, messages: Q },
  { name: "transport_vs_qtype", dimensions: ["Transport", "Qtype"], maxCells: 0, messages: Q },
  { name: "dns_ip_version", dimensions: ["IPVersion", "Qtype"], maxCells: 0, messages: Q },
  { name: "edns_version", dimensions: ["All", "EDNSVersion"], maxCells: 0, messages: Q },
  { name: "do_bit", dimensions: ["All", "D0"], maxCells: 0, messages: Q },
  { name: "rd_bit", dimensions: ["All", "RD"], maxCells: 0, messages: Q },
  { name: "query_size", dimensions: ["All", "QuerySize"], maxCells: 0, messages: Q },
  { name: "rcode_vs_replylen", dimensions: ["Rcode", "ReplyLen"], maxCells: 0, messages: R },
  { name: "qtype_vs_qnamelen", dimensions: ["Qtype", "QnameLen"], maxCells: 0, messages: Q },
  { name: "qtype_vs_tld", dimensions: ["Qtype", "TLD"], maxCells: 200, messages: Q },
  { name: "qname", dimensions: ["All", "Qname"], maxCells: 100, messages: Q },
  { name: "client_subnet", dimensions: ["All", "ClientSubnet"], maxCells: 200, messages: Q },
  { name: "response_time", dimensions: ["All", "ResponseTime"], maxCells: 0, messages: "pairs" },
];
const CLIENT_DATASET = { name: "client", dimensions: ["All", "ClientAddr"] as [string, string], maxCells: 200, messages: Q };

/** Response-time buckets (µs upper bounds) and their labels. */
const RT_BOUNDS = [1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000, 2_000_000, 5_000_000];
const RT_LABELS = ["<1ms", "1-2ms", "2-5ms", "5-10ms", "10-20ms", "20-50ms", "50-100ms", "100-200ms", "200-500ms", "500-1000ms", "1-2s", "2-5s", ">=5s"];
export const UNANSWERED = "unanswered", MISSING_QUERY = "missing_query", DROPPED = "dropped";


class ServerState {
  queries = 0;
  responses = 0;
  readonly hll = new HyperLogLog();
  readonly d: Dataset[];
  /** Texts of the names counted by hash (qname, TLD) this minute. */
  readonly names = new Map<number, string>();
  readonly server: string;
  constructor(server: string, clientAddresses: boolean) {
    this.server = server;
    this.d = [...DATASETS, ...(clientAddresses ? [CLIENT_DATASET] : [])].map((s) => new Dataset(s));
  }
}
// Indexes into ServerState.d, in DATASETS order.
const QTYPE = 0, RCODE = 1, OPCODE = 2, TRANSPORT = 3, IPVER = 4, EDNS = 5, DO = 6, RD = 7, QSIZE = 8, RLEN = 9, QNLEN = 10, TLD = 11, QNAME = 12, SUBNET = 13, RTIME = 14, CLIENT = 15;

type Pending = { tsUs: number; state: ServerState; sample: SampledPair | null; client: number | string; server: number | string; serverPort: number };

export class DnsStatsCollector {
  private readonly o: CollectorOptions;
  private readonly h = new DnsHeader();
  private readonly pending = new Map<number | string, Pending>();
  /** minute (since the epoch) → server → its counters. */
  private readonly minutes = new Map<number, Map<string, ServerState>>();
  private watermarkUs = 0;
  private nextSweepUs = 0;
  readonly counters: DecodeCounters & { messages: number } = { packets: 0, not_dns: 0, fragments: 0, tcp_partial: 0, malformed: 0, messages: 0 };
  private reported = { ...this.counters };
  private readonly sampleBelow: number;
  private readonly onMinute: (m: MinuteRecord) => void;
  private readonly onSample: (p: SampledPair) => void;

  constructor(options: Partial<CollectorOptions>, onMinute: (m: MinuteRecord) => void, onSample: (p: SampledPair) => void = () => {}) {
    this.onMinute = onMinute;
    this.onSample = onSample;
    this.o = { ...DEFAULT_COLLECTOR, ...options };
    if (!(this.o.sampleRate >= 0 && this.o.sampleRate <= 1)) throw new Error(`sample rate ${this.o.sampleRate} is not between 0 and 1`);
    this.sampleBelow = Math.round(this.o.sampleRate * 1_000_000);
  }

  /** One DNS message of a decoded packet (decode.ts). */
  message(p: DnsPacket): void {
    const h = this.h;
    if (!readDns(p.buf, p.off, p.len, h)) { this.counters.malformed++; return; }
    this.counters.messages++;
    if (p.tsUs > this.watermarkUs) this.advance(p.tsUs);
    if (!h.qr) this.query(p, h);
    else this.response(p, h);
  }

  private lastMinute = -1;
  private lastServer: number | string = -1;
  private lastState: ServerState | null = null;
  private readonly serverNames = new Map<number | string, string>();

  private stateFor(tsUs: number, server: number | string): ServerState {
    const minute = Math.floor(tsUs / 60e6);
    if (minute === this.lastMinute && server === this.lastServer && this.lastState) return this.lastState;
    let servers = this.minutes.get(minute);
    if (!servers) this.minutes.set(minute, (servers = new Map()));
    let name = this.serverNames.get(server);
    if (name === undefined) {
      name = typeof server === "number" ? v4Text(server) : v6Text(server);
      if (this.serverNames.size >= 4096) this.serverNames.clear();
      this.serverNames.set(server, name);
    }
    let s = servers.get(name);
    if (!s) {
      if (servers.size >= this.o.maxServers) {
        name = "other";
        s = servers.get(name);
      }
      if (!s) servers.set(name, (s = new ServerState(name, this.o.clientAddresses)));
    }
    this.lastMinute = minute;
    this.lastServer = server;
    this.lastState = s;
    return s;
  }

  /**
   * Where a query waits for its response. IPv4 flows are keyed by a number (client port, DNS id, transport) and
   * checked against the addresses stored with it: no string per message. A second flow with the same number while
   * the first waits, and IPv6 flows, are keyed by a string of the whole tuple; a response the number does not
   * match looks there too (the first flow may have been answered since).
   */
  private find(client: number | string, clientPort: number, server: number | string, serverPort: number, tcp: boolean, forQuery: boolean): [number | string, Pending | undefined] {
    const id = this.h.id;
    if (typeof client === "number") {
      const n = (clientPort * 65536 + id) * 2 + (tcp ? 1 : 0);
      const q = this.pending.get(n);
      if (q ? q.client === client && q.server === server && q.serverPort === serverPort : forQuery) return [n, q];
    }
    const k = `${client}|${clientPort}|${server}|${serverPort}|${id}|${tcp ? 1 : 0}`;
    return [k, this.pending.get(k)];
  }

  private query(p: DnsPacket, h: DnsHeader): void {
    const s = this.stateFor(p.tsUs, p.dst);
    s.queries++;
    const d = s.d;
    const qtype = h.qtype;
    d[QTYPE]!.add("ALL", qtype);
    d[OPCODE]!.add("ALL", h.opcode);
    d[TRANSPORT]!.add(p.transport, qtype);
    d[IPVER]!.add(p.v6 ? "IPv6" : "IPv4", qtype);
    d[EDNS]!.add("ALL", h.ednsVersion < 0 ? "none" : h.ednsVersion);
    d[DO]!.add("ALL", h.do ? "set" : "clr");
    d[RD]!.add("ALL", h.flags & 0x100 ? "set" : "clr");
    d[QSIZE]!.add("ALL", p.len & ~15);
    d[QNLEN]!.add(qtype, h.qnameLength);
    // Names are counted by hash; their text is made once per minute, when first seen.
    if (d[TLD]!.add(qtype, h.tldHash) && !s.names.has(h.tldHash)) s.names.set(h.tldHash, h.tldText());
    if (d[QNAME]!.add("ALL", h.qnameHash) && !s.names.has(h.qnameHash)) s.names.set(h.qnameHash, h.qnameText() || ".");
    d[SUBNET]!.add("ALL", typeof p.src === "number" ? (p.src & 0xffffff00) >>> 0 : p.src.slice(0, 24));
    if (this.o.clientAddresses) d[CLIENT]!.add("ALL", typeof p.src === "number" ? v4Text(p.src) : v6Text(p.src));
    s.hll.add(p.src);
    const [key, earlier] = this.find(p.src, p.srcPort, p.dst, p.dstPort, p.tcp, true);
    if (earlier) {
      // The same client, port and id again before an answer: the earlier query is given up.
      this.pending.delete(key);
      this.unanswered(earlier);
    } else if (this.pending.size >= this.o.maxPending) {
      const [oldKey, oldest] = this.pending.entries().next().value!;
      this.pending.delete(oldKey);
      oldest.state.d[RTIME]!.add("ALL", DROPPED);
      if (oldest.sample) this.onSample(oldest.sample);
    }
    let sample: SampledPair | null = null;
    if (this.sampled(p.src, p.srcPort, h.id)) {
      sample = this.pair(p, h, p.src, p.srcPort, p.dst, p.dstPort);
      sample.query = { size: p.len, flags: h.flags, opcode: h.opcode, rcode: h.rcode, qdcount: h.qdcount, ancount: h.ancount, nscount: h.nscount, arcount: h.arcount, ednsVersion: h.ednsVersion, udpSize: h.udpSize, do: h.do };
    }
    this.pending.set(key, { tsUs: p.tsUs, state: s, sample, client: p.src, server: p.dst, serverPort: p.dstPort });
  }

  private response(p: DnsPacket, h: DnsHeader): void {
    const s = this.stateFor(p.tsUs, p.src);
    s.responses++;
    s.d[RCODE]!.add("ALL", h.rcode);
    s.d[RLEN]!.add(h.rcode, p.len & ~15);
    const [key, q] = this.find(p.dst, p.dstPort, p.src, p.srcPort, p.tcp, false);
    if (!q) {
      s.d[RTIME]!.add("ALL", MISSING_QUERY);
      if (this.sampled(p.dst, p.dstPort, h.id)) {
        const sample = this.pair(p, h, p.dst, p.dstPort, p.src, p.srcPort);
        sample.response = { size: p.len, flags: h.flags, rcode: h.rcode, delayUs: 0, qdcount: h.qdcount };
        this.onSample(sample);
      }
      return;
    }
    this.pending.delete(key);
    const rt = p.tsUs - q.tsUs;
    let b = 0;
    while (b < RT_BOUNDS.length && rt >= RT_BOUNDS[b]!) b++;
    q.state.d[RTIME]!.add("ALL", RT_LABELS[b]!);
    if (q.sample) {
      q.sample.response = { size: p.len, flags: h.flags, rcode: h.rcode, delayUs: rt, qdcount: h.qdcount };
      this.onSample(q.sample);
    }
  }

  private sampled(client: number | string, port: number, id: number): boolean {
    return this.sampleBelow > 0 && flowHash(client, port, id) % 1_000_000 < this.sampleBelow;
  }

  private pair(p: DnsPacket, h: DnsHeader, client: number | string, clientPort: number, server: number | string, serverPort: number): SampledPair {
    return { tsUs: p.tsUs, v6: p.v6, tcp: p.tcp, client, clientPort, server, serverPort, hopLimit: p.hopLimit, id: h.id, qname: h.qnameText(), qtype: h.qtype, qclass: h.qclass, query: null, response: null };
  }

  private unanswered(q: Pending): void {
    q.state.d[RTIME]!.add("ALL", UNANSWERED);
    if (q.sample) this.onSample(q.sample);
  }

  /** Moves time on (capture time, or the clock when live): gives up old queries and emits minutes nothing can change. */
  advance(nowUs: number): void {
    if (nowUs <= this.watermarkUs) return;
    this.watermarkUs = nowUs;
    // Looked at every 100 ms of time, not every message: a walk of the waiting queries costs an iterator.
    if (nowUs < this.nextSweepUs) return;
    this.nextSweepUs = nowUs + 100_000;
    const timeoutUs = this.o.timeoutMs * 1000;
    for (const [key, q] of this.pending) {
      if (q.tsUs > nowUs - timeoutUs) break; // insertion order is time order (give or take reordering)
      this.pending.delete(key);
      this.unanswered(q);
    }
    for (const minute of [...this.minutes.keys()].sort((a, b) => a - b)) {
      if ((minute + 1) * 60e6 + timeoutUs > nowUs) break;
      this.emit(minute);
    }
  }

  /** End of input: every query still waiting is unanswered, and every minute is emitted. */
  finish(): void {
    for (const q of this.pending.values()) this.unanswered(q);
    this.pending.clear();
    for (const minute of [...this.minutes.keys()].sort((a, b) => a - b)) this.emit(minute);
    if (this.minutes.size === 0 && this.counters.packets > this.reported.packets) this.emitCounters();
  }

  private emit(minute: number): void {
    const servers = this.minutes.get(minute)!;
    this.minutes.delete(minute);
    if (minute === this.lastMinute) this.lastState = null;
    const start = minute * 60, stop = start + 60;
    const record: MinuteRecord = {
      start_time: start, stop_time: stop, capture: this.delta(),
      servers: [...servers.values()].sort((a, b) => (a.server < b.server ? -1 : 1)).map((s) => ({
        server: s.server, queries: s.queries, responses: s.responses,
        clients: { estimate: s.hll.estimate(), hll: s.hll.serialize() },
        datasets: s.d.filter((x) => !x.empty).map((x) => x.toDsc(start, stop, labeller(x.spec.name, s.names))),
      })),
    };
    this.onMinute(record);
  }

  private emitCounters(): void {
    const t = Math.floor(this.watermarkUs / 60e6) * 60;
    this.onMinute({ start_time: t, stop_time: t + 60, capture: this.delta(), servers: [] });
  }

  private delta(): MinuteRecord["capture"] {
    const c = this.counters, r = this.reported;
    const d = { packets: c.packets - r.packets, not_dns: c.not_dns - r.not_dns, fragments: c.fragments - r.fragments, tcp_partial: c.tcp_partial - r.tcp_partial, malformed: c.malformed - r.malformed, messages: c.messages - r.messages };
    this.reported = { ...c };
    return d;
  }
}

/** Output labels of a dataset's keys: names from their hashes, subnets from their numbers or hex digits. */
function labeller(name: string, names: Map<number, string>): (dim: number, v: string | number) => string {
  if (name === "qname" || name === "qtype_vs_tld") return (dim, v) => (dim === 2 && typeof v === "number" ? names.get(v) ?? `#${v}` : String(v));
  // Messages' sizes in 16-byte bins, as RSSAC002 reports them ("48-63"); counted by their lower bound.
  if (name === "query_size" || name === "rcode_vs_replylen") return (dim, v) => (dim === 2 ? `${v}-${Number(v) + 15}` : String(v));
  if (name === "client_subnet") return (dim, v) => (dim === 1 ? String(v) : typeof v === "number" ? `${v4Text(v)}/24` : `${v6Text(v.padEnd(32, "0"))}/96`);
  return (_dim, v) => String(v);
}

/** The sample's choice: a flow (client, port, DNS id) is in or out whatever the packet, query or response. */
export function flowHash(client: number | string, port: number, id: number): number {
  const c = typeof client === "number" ? fmix32(client) : hashString(client);
  return fmix32(c ^ Math.imul(port + 1, 0x9e3779b1) ^ Math.imul(id + 1, 0x85ebca77));
}
