// Dispatch's choice on its own (durable-objects/dispatch.ts): which connected probes take a measurement.
import { describe, expect, it } from "vitest";
import { type Candidate, choose, type DispatchOrder, matches } from "../../durable-objects/dispatch.ts";

const probe = (id: number, asn: number, cell: string, free = 4, extra: Partial<Candidate> = {}): { a: Candidate } => ({
  a: { probe_id: id, country_code: "NL", asn_v4: asn, prefix_v4: "192.0.2.0/24", tags: [], cell, address: null, free_slots: free, ...extra },
});
const order = (want: number, extra: Partial<DispatchOrder> = {}): DispatchOrder => ({
  assignment: { msm_id: 10_000_001, spec: { type: "ping", af: 4, target: "193.0.14.129", resolve_on_probe: false, packets: 3, size: 48, packet_interval: 1000 }, interval: null, spread: 0, start_time: 0, stop_time: null },
  filter: {}, want, exclude: [], ...extra,
});
const ids = (xs: { a: Candidate }[]) => xs.map((x) => x.a.probe_id);

describe("dispatch's choice", () => {
  it("takes every ASN's first probe before any ASN's second, every city before a second of one, the least loaded first", () => {
    const c = [probe(1, 100, "a", 1), probe(2, 100, "a", 8), probe(3, 100, "b"), probe(4, 200, "c"), probe(5, 200, "c"), probe(6, 300, "d")];
    expect(ids(choose(c, order(6), 100, 100))).toEqual([2, 4, 6, 3, 5, 1]);
    expect(ids(choose(c, order(3), 100, 100))).toEqual([2, 4, 6]);
  });

  it("gives half when busy on the first pass, all on the second, and explicit probe ids always", () => {
    const c = [1, 2, 3, 4].map((i) => probe(i, i, "x"));
    expect(choose(c, order(4), 100, 25)).toHaveLength(2);
    expect(choose(c, order(4, { busyOk: true }), 100, 25)).toHaveLength(4);
    expect(choose(c, order(4, { filter: { probe_ids: [1, 2, 3, 4] } }), 100, 25)).toHaveLength(4);
    expect(choose(c, order(4), 100, 26)).toHaveLength(4);
  });

  it("matches country, ASN, prefix (by address or the probe's prefix) and tags", () => {
    const a = probe(1, 3333, "x", 1, { country_code: "nl", address: "198.51.100.7", tags: ["home", "v6"] }).a;
    expect(matches(a, { country: "NL", asn: 3333 })).toBe(true);
    expect(matches(a, { country: "DE" })).toBe(false);
    expect(matches(a, { prefix: "198.51.100.0/24" })).toBe(true);
    expect(matches(a, { prefix: "192.0.2.0/25" })).toBe(true);
    expect(matches(a, { prefix: "203.0.113.0/24" })).toBe(false);
    expect(matches(a, { tags: { include: ["home"], exclude: ["dc"] } })).toBe(true);
    expect(matches(a, { tags: { exclude: ["v6"] } })).toBe(false);
    expect(matches(a, { probe_ids: [2] })).toBe(false);
  });
});
