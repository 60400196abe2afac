// Queries across measurements (GET /api/v2/results/) against brute force: generated results of several probes
// (two countries, two ASNs) and measurements (two targets, one private), partly flushed to R2 and partly still in a
// controller's outbox, filtered by time, type, probe, ASN, country and target prefix, and paginated.
import { describe, expect, it } from "vitest";
import { inCidr } from "../../protocol/index.ts";
import { ADMIN, call, connect, createPing, enroll, errorOf, newKey, pingResult, post } from "./harness.ts";

type R = ReturnType<typeof pingResult>;
const T0 = Date.parse("2026-11-21T00:00:00Z") / 1000;

describe("queries across measurements", () => {
  it("answers every filter exactly as brute force over what was stored, page by page", async () => {
    const key = await newKey("querier");
    const sites = [
      { country_code: "NL", asn_v4: 64496 }, { country_code: "NL", asn_v4: 64497 }, { country_code: "DE", asn_v4: 64497 },
    ];
    const probes = await Promise.all(sites.map((s) => enroll(s)));
    const sockets = await Promise.all(probes.map(async (p) => (await connect(p)).socket));
    const source = [{ type: "probes", value: probes.map((p) => p.id).join(","), requested: probes.length }];
    const create = async (target: string, extra: Record<string, unknown> = {}) => {
      const id = ((await (await createPing(key, source, { interval: 3600, target, ...extra })).json()) as { measurements: number[] }).measurements[0]!;
      for (const s of sockets) await s.next("measure");
      return id;
    };
    const toA = await create("192.0.2.10"), toB = await create("198.51.100.20"), hidden = await create("192.0.2.11", { is_public: false });
    const targets: Record<number, string> = { [toA]: "192.0.2.10", [toB]: "198.51.100.20", [hidden]: "192.0.2.11" };

    // 3 probes × 3 measurements × 12 runs, 10 minutes apart: the first half flushed to R2, the rest in the outbox.
    const stored: R[] = [];
    const seqs = probes.map(() => 0);
    const deliver = async (runs: number[]) => {
      for (const [i, p] of probes.entries()) {
        const results = runs.flatMap((k) => [toA, toB, hidden].map((m) => ({ ...pingResult(m, p.id, T0 + k * 600 + i), dst_addr: targets[m]!, dst_name: targets[m]! })));
        sockets[i]!.send({ type: "results", results: results.map((result) => ({ seq: ++seqs[i]!, result })) });
        await sockets[i]!.next("ack");
        stored.push(...results);
      }
    };
    await deliver([0, 1, 2, 3, 4, 5]);
    for (const shard of ["weur-0", "eeur-0"]) await post(`/admin/controllers/${shard}/flush`, {}, { Authorization: `Bearer ${ADMIN}` });
    await deliver([6, 7, 8, 9, 10, 11]);

    const query = async (q: string) => {
      const all: R[] = [];
      for (let url: string | null = `/api/v2/results/?${q}&page_size=7`; url;) {
        const res = await call(url.replace(/^https?:\/\/[^/]+/, ""));
        expect(res.status).toBe(200);
        const body = (await res.json()) as { count: number; next: string | null; results: R[] };
        all.push(...body.results);
        url = body.next;
      }
      return all.map((r) => `${r.msm_id}:${r.prb_id}:${r.timestamp}`);
    };
    const brute = (keep: (r: R) => boolean) => stored.filter((r) => r.msm_id !== hidden && keep(r))
      .sort((a, b) => a.timestamp - b.timestamp || a.prb_id - b.prb_id || a.msm_id - b.msm_id)
      .map((r) => `${r.msm_id}:${r.prb_id}:${r.timestamp}`);
    const inRange = (lo: number, hi: number) => (r: R) => r.timestamp >= lo && r.timestamp <= hi;
    const country = Object.fromEntries(probes.map((p, i) => [p.id, sites[i]!]));

    const lo = T0 + 1500, hi = T0 + 5400;  // spans the flushed and the unflushed halves
    const range = `start=${lo}&stop=${hi}`;
    expect(await query(range)).toEqual(brute(inRange(lo, hi)));
    expect((await query(range)).length).toBeGreaterThan(20);
    expect(await query(`${range}&type=ping`)).toEqual(brute(inRange(lo, hi)));
    expect(await query(`${range}&type=dns`)).toEqual([]);
    expect(await query(`${range}&probe_ids=${probes[1]!.id}`)).toEqual(brute((r) => inRange(lo, hi)(r) && r.prb_id === probes[1]!.id));
    expect(await query(`${range}&asn=64497`)).toEqual(brute((r) => inRange(lo, hi)(r) && country[r.prb_id]!.asn_v4 === 64497));
    expect(await query(`${range}&country_code=nl&asn=64497`)).toEqual(brute((r) => inRange(lo, hi)(r) && r.prb_id === probes[1]!.id));
    expect(await query(`${range}&target_prefix=198.51.100.0/24`)).toEqual(brute((r) => inRange(lo, hi)(r) && inCidr(r.dst_addr, "198.51.100.0/24")));
    expect(await query(`${range}&country_code=FR`)).toEqual([]);
  });

  it("aggregates ping RTT per probe ASN and target per hour, merged exactly across probes, batches and shards", async () => {
    const key = await newKey("aggregator");
    const sites = [{ country_code: "FR", asn_v4: 64510 }, { country_code: "FR", asn_v4: 64510 }, { country_code: "PL", asn_v4: 64511 }];
    const probes = await Promise.all(sites.map((s) => enroll(s)));
    const sockets = await Promise.all(probes.map(async (p) => (await connect(p)).socket));
    const source = [{ type: "probes", value: probes.map((p) => p.id).join(","), requested: probes.length }];
    const targets = ["192.0.2.30", "192.0.2.31"];
    const ids: number[] = [];
    for (const target of targets) {
      ids.push(((await (await createPing(key, source, { interval: 3600, target })).json()) as { measurements: number[] }).measurements[0]!);
      for (const s of sockets) await s.next("measure");
    }
    // A private measurement's target must not appear in the aggregates.
    const secret = ((await (await createPing(key, source, { interval: 3600, target: "198.51.100.99", is_public: false })).json()) as { measurements: number[] }).measurements[0]!;
    for (const s of sockets) await s.next("measure");
    const T1 = Date.parse("2026-11-22T00:00:00Z") / 1000;
    const stored: { asn: number; target: string; hour: string; avg: number }[] = [];
    let rtt = 7;
    for (const [i, p] of probes.entries()) {
      // Two frames per probe (two batches' worth after two flushes), results over two hours, RTTs all different.
      for (const half of [0, 1]) {
        const hidden = { ...pingResult(secret, p.id, T1 + half * 3600 + 3000 + i), dst_addr: "198.51.100.99", dst_name: "198.51.100.99" };
        const results = [hidden, ...[0, 1, 2, 3, 4, 5].flatMap((k) => ids.map((m, t) => {
          rtt = (rtt * 7919) % 1000;
          const avg = rtt / 10;
          const timestamp = T1 + half * 3600 + k * 500 + i;
          stored.push({ asn: sites[i]!.asn_v4, target: targets[t]!, hour: new Date(timestamp * 1000).toISOString().slice(0, 13), avg });
          return { ...pingResult(m, p.id, timestamp), dst_addr: targets[t]!, dst_name: targets[t]!, avg, min: avg, max: avg };
        }))];
        sockets[i]!.send({ type: "results", results: results.map((result, j) => ({ seq: half * 1000 + j + 1, result })) });
        await sockets[i]!.next("ack");
        for (const shard of ["weur-0", "eeur-0"]) await post(`/admin/controllers/${shard}/flush`, {}, { Authorization: `Bearer ${ADMIN}` });
      }
    }
    const quantile = (xs: number[], q: number) => {
      const s = [...xs].sort((a, b) => a - b), pos = (s.length - 1) * q, lo = Math.floor(pos);
      return Math.round((s[lo]! + (s[Math.min(lo + 1, s.length - 1)]! - s[lo]!) * (pos - lo)) * 1000) / 1000;
    };
    const brute = (keep: (x: (typeof stored)[number]) => boolean) => {
      const groups = new Map<string, number[]>();
      for (const x of stored.filter(keep)) groups.set(`${x.hour}|${x.asn}|${x.target}`, [...(groups.get(`${x.hour}|${x.asn}|${x.target}`) ?? []), x.avg]);
      return [...groups.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, xs]) => {
        const [hour, asn, target] = k.split("|");
        return { hour, asn: Number(asn), target, results: xs.length, median_rtt: quantile(xs, 0.5), p5_rtt: quantile(xs, 0.05), p95_rtt: quantile(xs, 0.95) };
      });
    };
    const aggregates = async (q: string) => ((await (await call(`/api/v2/aggregates/?${q}`)).json()) as { results: unknown[] }).results;
    const day = `start=${T1}&stop=${T1 + 7199}`;
    expect(await aggregates(day)).toEqual(brute(() => true));
    expect(await aggregates(`${day}&asn=64510`)).toEqual(brute((x) => x.asn === 64510));
    expect(await aggregates(`start=${T1 + 3600}&stop=${T1 + 3700}&target=192.0.2.31`)).toEqual(brute((x) => x.hour === "2026-11-22T01" && x.target === "192.0.2.31"));
    expect((await aggregates(day)).length).toBe(8);  // 2 hours × 2 ASNs × 2 targets
  });

  it("gives a private measurement's results and definition to its owner's keys only", async () => {
    const owner = await newKey("private-owner"), stranger = await newKey("stranger");
    const probe = await enroll({ country_code: "AT" });
    const { socket } = await connect(probe);
    const id = ((await (await createPing(owner, [{ type: "probes", value: String(probe.id), requested: 1 }], { interval: 3600, is_public: false, target: "192.0.2.201" })).json()) as { measurements: number[] }).measurements[0]!;
    await socket.next("measure");
    socket.send({ type: "results", results: [{ seq: 1, result: pingResult(id, probe.id, T0 + 5) }] });
    await socket.next("ack");
    for (const path of [`/api/v2/measurements/${id}/results/`, `/api/v2/measurements/${id}/latest/`]) {
      expect((await errorOf(await call(path))).detail).toContain("is not public");
      expect((await call(path, { headers: { Authorization: `Key ${stranger}` } })).status).toBe(403);
      expect((await call(path, { headers: { Authorization: `Key ${owner}` } })).status).toBe(200);
    }
    expect(((await (await call(`/api/v2/measurements/${id}/results/?key=${owner}`)).json()) as unknown[]).length).toBe(1);
    // Its definition (target included) too: shown to its owner, not to others, and listed for its owner only.
    expect((await call(`/api/v2/measurements/${id}/`)).status).toBe(403);
    expect((await call(`/api/v2/measurements/${id}/`, { headers: { Authorization: `Key ${owner}` } })).status).toBe(200);
    const listed = async (headers: Record<string, string>) =>
      ((await (await call(`/api/v2/measurements/?id__in=${id}`, { headers })).json()) as { results: { id: number }[] }).results.map((m) => m.id);
    expect(await listed({})).toEqual([]);
    expect(await listed({ Authorization: `Key ${stranger}` })).toEqual([]);
    expect(await listed({ Authorization: `Key ${owner}` })).toEqual([id]);
  });

  it("refuses a query it cannot answer, naming the parameter", async () => {
    const param = async (q: string) => (await errorOf(await call(`/api/v2/results/?${q}`))).errors[0]!.source;
    expect(await param("stop=10")).toEqual({ parameter: "start" });
    expect(await param(`start=${T0}&stop=${T0 + 90_000}`)).toEqual({ parameter: "stop" });
    expect(await param(`start=${T0}&stop=${T0 + 60}&type=smoke`)).toEqual({ parameter: "type" });
    expect(await param(`start=${T0}&stop=${T0 + 60}&target_prefix=192.0.2.0`)).toEqual({ parameter: "target_prefix" });
  });
});
