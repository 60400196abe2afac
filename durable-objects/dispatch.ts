// Dispatch's choice: which of a controller's connected probes take a measurement. Pure (tested on its own in
// test/edge/dispatch.test.ts); the controller gathers the candidates from its sockets and writes what was chosen.
import { type Assignment, inCidr } from "../protocol/index.ts";
import { groupBy } from "./group-by.ts";

/** What a probe is, for choosing it: the part of its socket's attachment dispatch reads. */
export type Candidate = {
  probe_id: number; country_code: string | null; asn_v4: number | null; prefix_v4: string | null; tags?: string[];
  /** Atlas system tags (system-tags.ts), matched like the operator's tags. */
  system_tags?: string[];
  cell?: string | null; address: string | null; free_slots: number;
};

export type ProbeFilter = { country?: string; asn?: number; prefix?: string; probe_ids?: number[]; tags?: { include?: string[]; exclude?: string[] } };

/** `busyOk` false: a busy controller (BUSY_FREE_SHARE of its probes' slots free, or less) gives at most half of `want`. */
export type DispatchOrder = { assignment: Assignment; filter: ProbeFilter; want: number; exclude: number[]; busyOk?: boolean };

/** A controller whose connected probes have at most this share of their slots free is busy. */
export const BUSY_FREE_SHARE = 0.25;

/**
 * Up to `order.want` of the candidates (probes with a free slot that match the order), diversity first: round-robin
 * over ASNs (the i-th probe of every ASN before the (i+1)-th of any), each ASN's probes in turn round-robin over
 * cities, and among a city's probes the least loaded (most free slots) first. Load-aware: a busy shard (`free` of
 * its `slots` at most BUSY_FREE_SHARE) gives at most half on the brain's first pass; explicit probe ids are always given.
 */
export function choose<T extends { a: Candidate }>(candidates: T[], order: DispatchOrder, slots: number, free: number): T[] {
  const byLoad = (xs: T[]) => [...xs].sort((x, y) => y.a.free_slots - x.a.free_slots);
  const queues = [...groupBy(candidates, (c) => c.a.asn_v4).values()].map((asn) => interleave([...groupBy(asn, (c) => c.a.cell ?? null).values()].map(byLoad)));
  const busy = !order.busyOk && !order.filter.probe_ids && slots > 0 && free / slots <= BUSY_FREE_SHARE;
  return interleave(queues).slice(0, busy ? Math.ceil(order.want / 2) : order.want);
}

/** The first of each list, then the second of each, and so on. */
function interleave<T>(lists: T[][]): T[] {
  const out: T[] = [];
  for (let i = 0; out.length < lists.reduce((n, l) => n + l.length, 0); i++) for (const l of lists) if (i < l.length) out.push(l[i]!);
  return out;
}

export function matches(a: Candidate, f: ProbeFilter): boolean {
  if (f.probe_ids && !f.probe_ids.includes(a.probe_id)) return false;
  if (f.country && a.country_code?.toUpperCase() !== f.country.toUpperCase()) return false;
  if (f.asn !== undefined && a.asn_v4 !== f.asn) return false;
  if (f.prefix && !inPrefix(a, f.prefix)) return false;
  if (f.tags) {
    const has = (t: string) => (a.tags ?? []).includes(t) || (a.system_tags ?? []).includes(t);
    if (f.tags.include?.some((t) => !has(t))) return false;
    if (f.tags.exclude?.some((t) => has(t))) return false;
  }
  return true;
}

function inPrefix(a: Candidate, prefix: string): boolean {
  if (a.prefix_v4 === prefix) return true;
  return [a.address, a.prefix_v4?.split("/")[0]].some((ip) => !!ip && inCidr(ip, prefix));
}
