// Appliances as data sources at the edge: DNS statistics and traffic reports arrive as records in results frames
// (acknowledged only once durable, like results), are refused one by one when they break the schema, and come back
// through /api/v2/dnsstats/ and /api/v2/traffic/ merged over minutes, servers and probes exactly as a brute-force
// sum of what was sent; private ones only for the account that hosts the probe, and never through the generic
// results API, the stream or a bundle.
import { describe, expect, it } from "vitest";
import { Decoder } from "cbor-x";
import { CDNS_PRIVATE, CDNS_PUBLIC, DNSSTATS_PRIVATE, DNSSTATS_PUBLIC, TRAFFIC_PRIVATE, TRAFFIC_PUBLIC } from "../../protocol/index.ts";
import { cdnsHeader } from "../../protocol/cdns-file.ts";
import { CdnsBlock } from "../../probe-agent/dnsstats/cdns.ts";
import { HyperLogLog } from "../../protocol/hll.ts";
import { call, connect, enroll, newKey, subscriber } from "./harness.ts";

type Cell = { val: string; count: number };
type Dataset = { name: string; start_time: number; stop_time: number; dimensions: [string, string]; data: Record<string, string | Cell[]>[] };

const now = Math.floor(Date.now() / 1000);
/** The last whole minute before now, and the ones before it. */
const minuteStart = (back: number) => (Math.floor(now / 60) - back) * 60;

/** A deterministic pseudo-random source per test, so the brute force below has something to add up. */
function rng(seed: number) {
  let x = seed;
  return () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32);
}

/** One server's minute as the agent's collector writes it, with counts drawn from `r`. */
function serverMinute(r: () => number, server: string, start: number, clients: number[]) {
  const hll = new HyperLogLog();
  for (const c of clients) hll.add(c);
  const qtypes = [1, 28, 15, 16, 2].map((t) => ({ val: String(t), count: 1 + Math.floor(r() * 50) }));
  const queries = qtypes.reduce((n, c) => n + c.count, 0);
  const rcodes = [{ val: "0", count: Math.floor(queries * 0.8) }, { val: "3", count: queries - Math.floor(queries * 0.8) }];
  const names = Array.from({ length: 5 }, (_, i) => ({ val: `n${Math.floor(r() * 8)}-${i}.example`, count: 1 + Math.floor(r() * 9) }));
  const dataset = (name: string, dimensions: [string, string], rows: Record<string, Cell[]>): Dataset =>
    ({ name, start_time: start, stop_time: start + 60, dimensions, data: Object.entries(rows).map(([k, cells]) => ({ [dimensions[0]]: k, [dimensions[1]]: cells })) });
  return {
    server, queries, responses: queries, clients: { estimate: hll.estimate(), hll: hll.serialize() },
    datasets: [
      dataset("qtype", ["All", "Qtype"], { ALL: qtypes }),
      dataset("rcode", ["All", "Rcode"], { ALL: rcodes }),
      dataset("qname", ["All", "Qname"], { ALL: [...names, { val: "-:SKIPPED:-", count: 2 }, { val: "-:SKIPPED_SUM:-", count: 5 }] }),
      dataset("transport_vs_qtype", ["Transport", "Qtype"], { udp: qtypes.slice(0, 3), tcp: qtypes.slice(3) }),
    ],
  };
}

function record(msm: number, probeId: number, timestamp: number, minutes: unknown[]) {
  return { fw: 5020, mver: "1.0.0", lts: 1, msm_id: msm, prb_id: probeId, timestamp, from: "", type: "dnsstats", source: "eth1", minutes };
}
const minute = (start: number, servers: unknown[]) => ({ start_time: start, stop_time: start + 60, capture: { packets: 10, not_dns: 0, fragments: 0, tcp_partial: 0, malformed: 0, messages: 10 }, servers });

/** The brute force: every cell of every dataset of the given server-minutes added up, and the sketches' union. */
function bruteForce(serverMinutes: ReturnType<typeof serverMinute>[]) {
  const sums = new Map<string, number>();
  const hll = new HyperLogLog();
  let queries = 0;
  for (const s of serverMinutes) {
    queries += s.queries;
    hll.merge(HyperLogLog.parse(s.clients.hll));
    for (const d of s.datasets) for (const row of d.data) for (const c of row[d.dimensions[1]] as Cell[]) {
      const k = `${d.name}|${row[d.dimensions[0]]}|${c.val}`;
      sums.set(k, (sums.get(k) ?? 0) + c.count);
    }
  }
  return { sums, queries, clients: hll.estimate() };
}
function cellsOf(datasets: Dataset[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const d of datasets) for (const row of d.data) for (const c of row[d.dimensions[1]] as Cell[]) m.set(`${d.name}|${row[d.dimensions[0]]}|${c.val}`, c.count);
  return m;
}
const sorted = (m: Map<string, number>) => [...m].sort((a, b) => (a[0] < b[0] ? -1 : 1));

describe("DNS statistics from appliances", () => {
  it("are stored once acknowledged and merged over minutes, servers and probes exactly as their sum", async () => {
    const r = rng(7);
    const a = await enroll({ country_code: "NL" }), b = await enroll({ country_code: "DE" });
    const sa = (await connect(a)).socket, sb = (await connect(b)).socket;
    const made = {
      a1: serverMinute(r, "192.0.2.53", minuteStart(3), [0x0a000001, 0x0a000002]),
      a2: serverMinute(r, "2001:db8::53", minuteStart(3), [0x0a000003]),
      a3: serverMinute(r, "192.0.2.53", minuteStart(2), [0x0a000001, 0x0a000009]),
      b1: serverMinute(r, "192.0.2.53", minuteStart(3), [0x0b000001]),
      b2: serverMinute(r, "192.0.2.53", minuteStart(1), [0x0b000002, 0x0a000001]),
    };
    sa.send({ type: "results", results: [
      { seq: 1, result: record(DNSSTATS_PUBLIC, a.id, minuteStart(2) + 5, [minute(minuteStart(3), [made.a1, made.a2])]) },
      { seq: 2, result: record(DNSSTATS_PUBLIC, a.id, minuteStart(1) + 5, [minute(minuteStart(2), [made.a3])]) },
    ] });
    expect((await sa.next("ack")).upto).toBe(2);
    sb.send({ type: "results", results: [{ seq: 1, result: record(DNSSTATS_PUBLIC, b.id, minuteStart(0) + 5, [minute(minuteStart(3), [made.b1]), minute(minuteStart(1), [made.b2])]) }] });
    expect((await sb.next("ack")).upto).toBe(1);

    const get = async (query: string) => (await call(`/api/v2/dnsstats/?${query}`)).json() as Promise<{ queries: number; probes: number[]; servers: string[]; probe_minutes: number; clients: { estimate: number }; datasets: Dataset[] }>;
    const range = `start=${minuteStart(3)}&stop=${minuteStart(0)}&probe=${a.id},${b.id}`;
    const all = await get(range);
    const want = bruteForce(Object.values(made));
    expect(sorted(cellsOf(all.datasets))).toEqual(sorted(want.sums));
    expect(all.queries).toBe(want.queries);
    expect(all.clients.estimate).toBe(want.clients);
    expect(all.clients.estimate).toBe(6); // 10.0.0.1, .2, .3, .9, 11.0.0.1, 11.0.0.2: linear counting is exact here
    expect(all.probes).toEqual([a.id, b.id].sort((x, y) => x - y));
    expect(all.probe_minutes).toBe(4);
    // One server, one probe, one minute, some datasets: each the sum of just those parts.
    const one = await get(`start=${minuteStart(3)}&stop=${minuteStart(2)}&probe=${a.id}&server=192.0.2.53&dataset=qtype,rcode`);
    const wantOne = bruteForce([made.a1]);
    expect(sorted(cellsOf(one.datasets))).toEqual(sorted(wantOne.sums).filter(([k]) => /^(qtype|rcode)\|/.test(k)));
    expect(one.datasets.map((d) => d.name)).toEqual(["qtype", "rcode"]);
    const ipv6 = await get(`${range}&server=2001:db8::53`);
    expect(ipv6.queries).toBe(made.a2.queries);
    // Minutes only partly inside the range are left out, not cut.
    expect((await get(`start=${minuteStart(3) + 1}&stop=${minuteStart(0)}&probe=${a.id},${b.id}`)).queries).toBe(made.a3.queries + made.b2.queries);
    // The same minutes through the generic results API (public records), as a bundle or parser would read them.
    const raw = (await (await call(`/api/v2/measurements/${DNSSTATS_PUBLIC}/results/?start=${minuteStart(3)}&probe_ids=${a.id}`)).json()) as { minutes: unknown[] }[];
    expect(raw.flatMap((x) => x.minutes)).toHaveLength(2);
    sa.ws.close();
    sb.ws.close();
  });

  it("refuses a record that breaks the schema, by itself, and stores the rest of its frame", async () => {
    const r = rng(11);
    const p = await enroll({ country_code: "FR" });
    const { socket } = await connect(p);
    const good = serverMinute(r, "192.0.2.53", minuteStart(2), [1]);
    const withClients = { ...good, datasets: [...good.datasets, { name: "client", start_time: minuteStart(2), stop_time: minuteStart(2) + 60, dimensions: ["All", "ClientAddr"], data: [{ All: "ALL", ClientAddr: [{ val: "198.51.100.7", count: 3 }] }] }] };
    socket.send({ type: "results", results: [
      { seq: 1, result: record(DNSSTATS_PUBLIC, p.id, minuteStart(1), [minute(minuteStart(2), [withClients])]) },
      { seq: 2, result: record(DNSSTATS_PUBLIC, p.id, minuteStart(1) + 10, [minute(minuteStart(2), [good])]) },
      { seq: 3, result: record(DNSSTATS_PUBLIC, p.id, minuteStart(1) + 20, []) },
    ] });
    const rejects = [await socket.next("reject"), await socket.next("reject")];
    expect(rejects.map((x) => x.seq)).toEqual([1, 3]);
    // Full client addresses never reach the edge: a dataset of them is not one the edge takes.
    expect(rejects[0]!.reason).toMatch(/invalid result at \/minutes\/0\/servers\/0\/datasets\/4\/name/);
    expect(rejects[1]!.reason).toMatch(/invalid result at \/minutes/);
    expect((await socket.next("ack")).upto).toBe(3);
    const got = (await (await call(`/api/v2/dnsstats/?start=${minuteStart(2)}&stop=${minuteStart(1)}&probe=${p.id}`)).json()) as { queries: number };
    expect(got.queries).toBe(good.queries);
    socket.ws.close();
  });

  it("keeps a host's private statistics to the account that hosts the probe", async () => {
    const r = rng(13);
    const hostKey = await newKey("host");
    const account = ((await (await call("/api/v2/credits/", { headers: { Authorization: `Key ${hostKey}` } })).json()) as { account: string }).account;
    const stranger = await newKey("stranger");
    const p = await enroll({ country_code: "SE", owner: account });
    const { socket } = await connect(p);
    const byProbe = await subscriber(), direct = await subscriber(), open = await subscriber();
    byProbe.send(["atlas_subscribe", { streamType: "result", prb: p.id }]);
    open.send(["atlas_subscribe", { streamType: "result", msm: DNSSTATS_PUBLIC }]);
    await byProbe.next("atlas_subscribed");
    await open.next("atlas_subscribed");
    direct.send(["atlas_subscribe", { streamType: "result", msm: DNSSTATS_PRIVATE }]);
    expect(await direct.next("atlas_error")).toContain("not public");
    const m = serverMinute(r, "192.0.2.1", minuteStart(2), [5, 6, 7]);
    socket.send({ type: "results", results: [
      { seq: 1, result: record(DNSSTATS_PRIVATE, p.id, minuteStart(1), [minute(minuteStart(2), [m])]) },
      { seq: 2, result: record(DNSSTATS_PUBLIC, p.id, minuteStart(1) + 30, [minute(minuteStart(1), [m])]) },
    ] });
    expect((await socket.next("ack")).upto).toBe(2);
    // The stream carries the public record and never the private one.
    const streamed = (await byProbe.drain("atlas_result", 500)) as { msm_id: number }[];
    expect(streamed.map((x) => x.msm_id)).toEqual([DNSSTATS_PUBLIC]);
    expect(((await open.next("atlas_result")) as { msm_id: number; prb_id: number })).toMatchObject({ msm_id: DNSSTATS_PUBLIC, prb_id: p.id });
    const q = `/api/v2/dnsstats/?start=${minuteStart(2)}&stop=${minuteStart(1)}&probe=${p.id}`;
    const as = async (key: string | null) => ((await (await call(q, key ? { headers: { Authorization: `Key ${key}` } } : {})).json()) as { queries: number }).queries;
    expect(await as(hostKey)).toBe(m.queries);
    expect(await as(stranger)).toBe(0);
    expect(await as(null)).toBe(0);
    // Not through the generic results API either, whoever asks.
    const generic = await call(`/api/v2/measurements/${DNSSTATS_PRIVATE}/results/?probe_ids=${p.id}`, { headers: { Authorization: `Key ${hostKey}` } });
    expect(generic.status).toBe(403);
    expect(((await generic.json()) as { error: { detail: string } }).error.detail).toMatch(/private records.*\/api\/v2\/dnsstats\//);
    socket.ws.close();
  });

  it("says what is wrong with a request", async () => {
    const bad = async (query: string) => {
      const res = await call(`/api/v2/dnsstats/?${query}`);
      return { status: res.status, body: ((await res.json()) as { error: { detail: string } }).error.detail };
    };
    expect(await bad(`stop=${now}`)).toMatchObject({ status: 400, body: expect.stringMatching(/start/) });
    expect(await bad(`start=${now}&stop=${now - 60}`)).toMatchObject({ status: 400, body: expect.stringMatching(/stop is before start/) });
    expect(await bad(`start=${now - 3 * 86_400}&stop=${now}`)).toMatchObject({ status: 400, body: expect.stringMatching(/at most 86400 seconds/) });
    expect(await bad(`start=${now - 60}&stop=${now}&dataset=qtype,clients`)).toMatchObject({ status: 400, body: expect.stringMatching(/"clients" is not a dataset/) });
  });
});

describe("traffic reports from appliances", () => {
  it("are summed per application over intervals and probes, private ones for their host only", async () => {
    const hostKey = await newKey("traffic-host");
    const account = ((await (await call("/api/v2/credits/", { headers: { Authorization: `Key ${hostKey}` } })).json()) as { account: string }).account;
    const a = await enroll({ country_code: "NL" }), b = await enroll({ country_code: "NL", owner: account });
    const sa = (await connect(a)).socket, sb = (await connect(b)).socket;
    const t0 = minuteStart(10);
    const app = (label: string, n: number) => ({ label, flows: n, packets_up: 10 * n, bytes_up: 1000 * n, packets_down: 20 * n, bytes_down: 5000 * n });
    const traffic = (msm: number, probeId: number, timestamp: number, intervals: unknown[]) => ({ fw: 5020, mver: "1.0.0", lts: 1, msm_id: msm, prb_id: probeId, timestamp, from: "", type: "traffic", source: "eth0", intervals });
    sa.send({ type: "results", results: [{ seq: 1, result: traffic(TRAFFIC_PUBLIC, a.id, t0 + 600, [
      { start: t0, end: t0 + 300, apps: [app("DNS", 3), app("TLS", 5)] }, { start: t0 + 300, end: t0 + 600, apps: [app("TLS", 2)] }]) }] });
    sb.send({ type: "results", results: [{ seq: 1, result: traffic(TRAFFIC_PRIVATE, b.id, t0 + 600, [{ start: t0, end: t0 + 300, apps: [app("TLS", 1), app("QUIC", 4)] }]) }] });
    expect((await sa.next("ack")).upto).toBe(1);
    expect((await sb.next("ack")).upto).toBe(1);
    const q = `/api/v2/traffic/?start=${t0}&stop=${t0 + 600}&probe=${a.id},${b.id}`;
    type Apps = { intervals: number; apps: ReturnType<typeof app>[] };
    const host = (await (await call(q, { headers: { Authorization: `Key ${hostKey}` } })).json()) as Apps;
    expect(host.intervals).toBe(3);
    expect(host.apps).toEqual([app("TLS", 8), app("QUIC", 4), app("DNS", 3)]);
    const anyone = (await (await call(q)).json()) as Apps;
    expect(anyone.apps).toEqual([app("TLS", 7), app("DNS", 3)]);
    sa.ws.close();
    sb.ws.close();
  });
});

describe("sampled query/response pairs (C-DNS) from appliances", () => {
  /** A block of `n` pairs as the agent's CdnsBlock writes it, gzipped and in base64 as the agent uploads it. */
  async function block(n: number, t0: number): Promise<{ pairs: number; gz: string; raw: Uint8Array }> {
    const b = new CdnsBlock({ sampleRate: 0.01, queryTimeoutMs: 5000, generator: "test", clientPrefixV4: 24, clientPrefixV6: 96 });
    for (let i = 0; i < n; i++) {
      b.add({ tsUs: (t0 + i) * 1e6, v6: false, tcp: false, client: 0x0a000001 + i, clientPort: 40000 + i, server: 0xc0000235, serverPort: 53, hopLimit: 64, id: i,
        qname: `n${i}.example.test`, qtype: 1, qclass: 1,
        query: { size: 40, flags: 0x100, opcode: 0, rcode: 0, qdcount: 1, ancount: 0, nscount: 0, arcount: 0, ednsVersion: -1, udpSize: 0, do: false },
        response: { size: 80, flags: 0x8580, rcode: 0, delayUs: 150, qdcount: 1 } });
    }
    const raw = b.take()!;
    const gz = new Uint8Array(await new Response(new Blob([raw]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer());
    return { pairs: n, gz: btoa(String.fromCharCode(...gz)), raw };
  }
  const sample = (msm: number, probeId: number, timestamp: number, hour: string, blocks: { pairs: number; gz: string }[]) => ({
    fw: 5020, mver: "1.0.0", lts: 1, msm_id: msm, prb_id: probeId, timestamp, from: "", type: "cdns", source: "eth1", hour,
    parameters: { sample_rate: 0.01, query_timeout_ms: 5000, client_prefix_v4: 24, client_prefix_v6: 96 }, blocks: blocks.map(({ pairs, gz }) => ({ pairs, gz })),
  });
  const hourName = (t: number) => new Date(t * 1000).toISOString().replace(/^(\d{4})-(\d{2})-(\d{2})T(\d{2}).*$/, "$1$2$3-$4");

  it("are served per probe and hour as one C-DNS file of the blocks uploaded, in order; private ones to the host only", async () => {
    const hostKey = await newKey("sample-host");
    const account = ((await (await call("/api/v2/credits/", { headers: { Authorization: `Key ${hostKey}` } })).json()) as { account: string }).account;
    const p = await enroll({ country_code: "CZ", owner: account });
    const { socket } = await connect(p);
    const t0 = Math.floor(now / 3600) * 3600 - 3600; // the previous hour
    const [b1, b2, b3] = [await block(3, t0 + 10), await block(2, t0 + 600), await block(4, t0 + 1200)];
    socket.send({ type: "results", results: [
      { seq: 1, result: sample(CDNS_PRIVATE, p.id, t0 + 700, hourName(t0), [b1, b2]) },
      { seq: 2, result: sample(CDNS_PRIVATE, p.id, t0 + 1300, hourName(t0), [b3]) },
    ] });
    expect((await socket.next("ack")).upto).toBe(2);
    const list = async (key: string | null) => ((await (await call(`/api/v2/dnsstats/samples/?start=${t0}&stop=${t0 + 3600}&probe=${p.id}`, key ? { headers: { Authorization: `Key ${key}` } } : {})).json()) as { results: { hour: string; pairs: number; blocks: number; url: string }[] }).results;
    const mine = await list(hostKey);
    expect(mine).toEqual([expect.objectContaining({ probe: p.id, hour: hourName(t0), part: 1, pairs: 9, blocks: 3 })]);
    expect(await list(null)).toEqual([]);
    const res = await call(new URL(mine[0]!.url).pathname, { headers: { Authorization: `Key ${hostKey}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Disposition")).toContain(`probe-${p.id}-${hourName(t0)}.cdns.gz`);
    const file = new Uint8Array(await new Response(res.body!.pipeThrough(new DecompressionStream("gzip"))).arrayBuffer());
    // The file is the opening for these parameters, the three blocks byte for byte in upload order, and the end.
    const header = cdnsHeader({ sampleRate: 0.01, queryTimeoutMs: 5000, generator: "vantage edge", clientPrefixV4: 24, clientPrefixV6: 96, interfaces: ["eth1"] });
    const expected = new Uint8Array([...header, ...b1.raw, ...b2.raw, ...b3.raw, 0xff]);
    expect(file).toEqual(expected);
    const decoded = new Decoder({ mapsAsObjects: false }).decode(file) as [string, Map<number, unknown>, Map<number, unknown>[]];
    expect(decoded[0]).toBe("C-DNS");
    expect(decoded[2].map((b) => (b.get(3) as unknown[]).length)).toEqual([3, 2, 4]);
    // A stranger neither lists it nor reads it; a bad hour is a 400 naming it.
    expect((await call(new URL(mine[0]!.url).pathname)).status).toBe(404);
    expect((await call(`/api/v2/dnsstats/samples/${p.id}/2026-12-07T10/`)).status).toBe(400);
    socket.ws.close();
  });

  it("refuses a record whose blocks are not base64 or too many, by itself", async () => {
    const p = await enroll({ country_code: "CZ" });
    const { socket } = await connect(p);
    const t0 = Math.floor(now / 3600) * 3600;
    const b = await block(1, t0);
    socket.send({ type: "results", results: [
      { seq: 1, result: sample(CDNS_PUBLIC, p.id, now - 30, hourName(t0), [{ pairs: 1, gz: "not base64!" }]) },
      { seq: 2, result: sample(CDNS_PUBLIC, p.id, now - 20, hourName(t0), Array.from({ length: 17 }, () => b)) },
      { seq: 3, result: sample(CDNS_PUBLIC, p.id, now - 10, hourName(t0), [b]) },
    ] });
    expect(((await socket.next("reject")) as { seq: number }).seq).toBe(1);
    expect(((await socket.next("reject")) as { seq: number }).seq).toBe(2);
    expect((await socket.next("ack")).upto).toBe(3);
    const listed = ((await (await call(`/api/v2/dnsstats/samples/?start=${t0}&stop=${now}&probe=${p.id}`)).json()) as { results: { pairs: number }[] }).results;
    expect(listed.map((x) => x.pairs)).toEqual([1]);
    socket.ws.close();
  });
});
