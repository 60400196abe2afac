// Built-in measurements every probe runs on its own schedule (protocol/builtins.ts): traceroute and ping to the
// configured anchors, ping to the first and second hop that the first anchor's traceroute revealed, and, when the
// edge names a check name in its welcome, the probe's own resolvers asked for its A and AAAA records (the edge
// judges the answers: Atlas's system-resolves-a-correctly / -aaaa-correctly tags).
// The probe's host can change the anchors and intervals, or switch them off, in its config.
import {
  type Assignment, BUILTIN_ANCHOR_PING, BUILTIN_ANCHOR_TRACEROUTE, BUILTIN_FIRST_HOP_PING, BUILTIN_RESOLVER_A, BUILTIN_RESOLVER_AAAA,
  BUILTIN_SECOND_HOP_PING, type MeasurementSpec, type Result,
} from "../protocol/probe.ts";
import type { AgentConfig } from "./config.ts";

export type RunOptions = { allowPrivate?: boolean; onResult?: (r: Result) => void };
type Submit = (a: Assignment, opts: RunOptions) => void;

const ping = (target: string): MeasurementSpec => ({
  type: "ping", af: 4, target, resolve_on_probe: true, packets: 3, size: 48, packet_interval: 1000,
});
const trace = (target: string): MeasurementSpec => ({
  type: "traceroute", af: 4, target, resolve_on_probe: true, protocol: "ICMP", packets: 3, size: 48, paris: 16,
  first_hop: 1, max_hops: 32, response_timeout: 4000, dont_fragment: false,
});

/** The probe's own resolvers (over IPv4, recursion desired) asked for a name's A or AAAA records. */
const resolverCheck = (name: string, queryType: "A" | "AAAA"): MeasurementSpec => ({
  type: "dns", af: 4, use_probe_resolver: true, resolve_on_probe: false, query_class: "IN", query_type: queryType, query_argument: name,
  protocol: "UDP", tls: false, set_rd_bit: true, set_do_bit: false, set_cd_bit: false, set_nsid_bit: false, retry: 1, timeout: 5000,
  include_qbuf: false, include_abuf: true,
});

/** The first responding address at hops 1 and 2 of a traceroute result, if any. */
export function firstHops(r: Result): [string | null, string | null] {
  if (r.type !== "traceroute") return [null, null];
  const at = (n: number) => {
    const hop = r.result.find((h) => h.hop === n);
    if (!hop || !("result" in hop)) return null;
    const reply = hop.result.find((x): x is { from: string } & typeof x => "from" in x);
    return reply && reply.from !== r.dst_addr ? reply.from : null;
  };
  return [at(1), at(2)];
}

export class Builtins {
  private readonly timers: NodeJS.Timeout[] = [];
  private hops: [string | null, string | null] = [null, null];
  /** The name the edge asks the probe's resolvers for (its welcome's `resolver_check`), if any. */
  private checkName: string | null = null;
  private readonly config: AgentConfig["builtins"];
  private readonly submit: Submit;

  constructor(config: AgentConfig["builtins"], submit: Submit) {
    this.config = config;
    this.submit = submit;
  }

  start(): void {
    if (!this.config.enabled || this.config.anchors.length === 0) return;
    // Start at a random point within the first interval (at most a minute) so probes restarted together spread out.
    const first = (interval: number) => Math.random() * Math.min(interval, 60) * 1000;
    this.every(this.config.traceroute_interval_s, first(this.config.traceroute_interval_s), () => this.traceroutes());
    this.every(this.config.ping_interval_s, first(this.config.ping_interval_s), () => this.pings());
  }

  /** What the edge's welcome said to ask the probe's resolvers for (null: nothing). */
  setResolverCheck(name: string | null): void {
    this.checkName = name;
  }

  stop(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.length = 0;
  }

  private every(intervalS: number, firstMs: number, fn: () => void): void {
    const tick = () => {
      fn();
      this.timers.push(setTimeout(tick, intervalS * 1000));
    };
    this.timers.push(setTimeout(tick, firstMs));
  }

  private assignment(msmId: number, spec: MeasurementSpec, interval: number): Assignment {
    return { msm_id: msmId, spec, interval, spread: 0, start_time: Math.floor(Date.now() / 1000), stop_time: null };
  }

  private traceroutes(): void {
    this.config.anchors.forEach((anchor, i) => {
      this.submit(this.assignment(BUILTIN_ANCHOR_TRACEROUTE + i, trace(anchor), this.config.traceroute_interval_s), {
        allowPrivate: true,
        onResult: i === 0 ? (r) => { this.hops = firstHops(r); } : undefined,
      });
    });
  }

  private pings(): void {
    const interval = this.config.ping_interval_s;
    this.config.anchors.forEach((anchor, i) => this.submit(this.assignment(BUILTIN_ANCHOR_PING + i, ping(anchor), interval), { allowPrivate: true }));
    // Hops are usually private addresses (the home router): that is the point of measuring them.
    const [first, second] = this.hops;
    if (first) this.submit(this.assignment(BUILTIN_FIRST_HOP_PING, ping(first), interval), { allowPrivate: true });
    if (second) this.submit(this.assignment(BUILTIN_SECOND_HOP_PING, ping(second), interval), { allowPrivate: true });
    // A probe's resolvers are usually private addresses too (the home router).
    if (this.checkName) {
      this.submit(this.assignment(BUILTIN_RESOLVER_A, resolverCheck(this.checkName, "A"), interval), { allowPrivate: true });
      this.submit(this.assignment(BUILTIN_RESOLVER_AAAA, resolverCheck(this.checkName, "AAAA"), interval), { allowPrivate: true });
    }
  }
}
