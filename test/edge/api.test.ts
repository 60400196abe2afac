// The public API as an Atlas client meets it: bad input always answers 4xx with Atlas's error body naming the
// field, keys in both Atlas forms, paths with and without the trailing slash, Atlas pagination and filters.
import { describe, expect, it } from "vitest";
import { CreateMeasurements } from "../../protocol/index.ts";
import { checkTargets } from "../../workers/api/measurements.ts";
import { call, connect, createPing, enroll, errorOf, newKey, post } from "./harness.ts";

const key = await newKey();
const auth = { Authorization: `Key ${key}` };
const ping = (over: Record<string, unknown> = {}) => ({ type: "ping", af: 4, target: "127.0.0.1", description: "t", ...over });
const body = (def: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  ({ definitions: [def], probes: [{ type: "area", value: "WW", requested: 1 }], is_oneoff: true, ...extra });

async function rejected(res: Response, status: number, pointer?: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get("Content-Type")).toContain("application/json");
  const e = await errorOf(res);
  expect(e.status).toBe(status);
  if (pointer !== undefined) expect(e.errors.map((x) => x.source.pointer)).toContain(pointer);
  return e;
}

describe("creating measurements: bad input", () => {
  it("malformed JSON", async () => {
    const res = await call("/api/v2/measurements/", { method: "POST", headers: { ...auth, "Content-Type": "application/json" }, body: '{"definitions": [' });
    expect((await rejected(res, 400)).detail).toMatch(/^JSON parse error/);
  });

  it("wrong content type", async () => {
    const res = await call("/api/v2/measurements/", { method: "POST", headers: { ...auth, "Content-Type": "text/plain" }, body: "{}" });
    expect((await rejected(res, 415)).detail).toContain("application/json");
  });

  it("oversized body", async () => {
    const big = body(ping({ description: "x".repeat(300_000) }));
    await rejected(await post("/api/v2/measurements/", big, auth), 413);
  });

  it("not an object", async () => {
    await rejected(await post("/api/v2/measurements/", [1, 2], auth), 400, "");
  });

  it.each([
    ["unknown type", { type: "telepathy" }, "/definitions/0/type"],
    ["absurd packets", { packets: 1_000_000 }, "/definitions/0/packets"],
    ["negative interval", { interval: -60 }, "/definitions/0/interval"],
    ["bad af", { af: 5 }, "/definitions/0/af"],
    ["target neither name nor address", { target: "not a host!" }, "/definitions/0/target"],
    ["target a bare number", { target: "1234" }, "/definitions/0/target"],
    ["missing target", { target: undefined }, "/definitions/0/target"],
    ["missing description", { description: undefined }, "/definitions/0/description"],
    ["size too large", { size: 4096 }, "/definitions/0/size"],
    ["packet interval too short", { packet_interval: 1 }, "/definitions/0/packet_interval"],
  ])("%s", async (_name, over, pointer) => {
    const e = await rejected(await post("/api/v2/measurements/", body(ping(over), "interval" in over ? { is_oneoff: false } : {}), auth), 400, pointer);
    expect(e.errors.find((x) => x.source.pointer === pointer)!.detail.length).toBeGreaterThan(5);
  });

  it("missing probes and definitions", async () => {
    const e = await rejected(await post("/api/v2/measurements/", {}, auth), 400);
    expect(e.errors.map((x) => x.source.pointer).sort()).toEqual(["/definitions", "/probes"]);
    expect(e.errors[0]!.detail).toBe("This field is required.");
  });

  it("bad probe sources", async () => {
    await rejected(await post("/api/v2/measurements/", { ...body(ping()), probes: [{ type: "planet", value: "Mars", requested: 1 }] }, auth), 400, "/probes/0/type");
    await rejected(await post("/api/v2/measurements/", { ...body(ping()), probes: [{ type: "area", value: "Atlantis", requested: 1 }] }, auth), 400, "/probes/0/value");
    await rejected(await post("/api/v2/measurements/", { ...body(ping()), probes: [{ type: "country", value: "NL", requested: 0 }] }, auth), 400, "/probes/0/requested");
  });

  it("a one-off with a stop_time, and a stop before the start", async () => {
    await rejected(await post("/api/v2/measurements/", body(ping(), { stop_time: 2_000_000_000 }), auth), 400, "/stop_time");
    const now = Math.floor(Date.now() / 1000);
    await rejected(await post("/api/v2/measurements/", body(ping({ interval: 60 }), { is_oneoff: false, start_time: now + 100, stop_time: now + 50 }), auth), 400, "/stop_time");
  });

  it("a family that does not match the target", async () => {
    await rejected(await post("/api/v2/measurements/", body(ping({ af: 6 })), auth), 400, "/definitions/0/af");
  });

  it("private and loopback targets outside local mode", () => {
    const deployed = { ALLOW_PRIVATE_TARGETS: "false" };
    const req = (target: string, af: 4 | 6 = 4) => CreateMeasurements.parse(body(ping({ target, af })));
    for (const [target, af] of [["127.0.0.1", 4], ["10.1.2.3", 4], ["192.168.1.1", 4], ["169.254.0.1", 4], ["100.64.0.1", 4],
      ["::1", 6], ["fe80::1", 6], ["fd00::1", 6], ["localhost", 4], ["printer.local", 4]] as const) {
      expect(() => checkTargets(req(target, af), deployed), target).toThrowError(/not allowed/);
    }
    for (const [target, af] of [["193.0.14.129", 4], ["2001:7fd::1", 6], ["k.root-servers.net", 4]] as const) {
      expect(() => checkTargets(req(target, af), deployed), target).not.toThrow();
    }
    expect(() => checkTargets(req("127.0.0.1"), { ALLOW_PRIVATE_TARGETS: "true" })).not.toThrow();
  });
});

describe("traceroute, dns, ntp, http and sslcert definitions", () => {
  const dnsDef = (over: Record<string, unknown> = {}) =>
    ({ type: "dns", af: 4, target: "127.0.0.1", description: "d", query_type: "A", query_argument: "example.net", ...over });

  it.each([
    ["dns without a target or the probe's resolver", dnsDef({ target: undefined }), "/definitions/0/target"],
    ["dns with an unknown query type", dnsDef({ query_type: "BOGUS" }), "/definitions/0/query_type"],
    ["dns without a query argument", dnsDef({ query_argument: undefined }), "/definitions/0/query_argument"],
    ["dns with an absurd retry", dnsDef({ retry: 1000 }), "/definitions/0/retry"],
    ["dns with a tiny payload size", dnsDef({ udp_payload_size: 100 }), "/definitions/0/udp_payload_size"],
    ["dns over carrier pigeon", dnsDef({ protocol: "IPoAC" }), "/definitions/0/protocol"],
    ["ntp with too many packets", { type: "ntp", af: 4, target: "127.0.0.1", description: "n", packets: 17 }, "/definitions/0/packets"],
    ["http with a path that is not a path", { type: "http", af: 4, target: "127.0.0.1", description: "h", path: "index.html" }, "/definitions/0/path"],
    ["http/2", { type: "http", af: 4, target: "127.0.0.1", description: "h", version: "2" }, "/definitions/0/version"],
    ["http with header_bytes too large", { type: "http", af: 4, target: "127.0.0.1", description: "h", header_bytes: 4096 }, "/definitions/0/header_bytes"],
    ["traceroute with an IPv4 target for af 6", { type: "traceroute", af: 6, target: "127.0.0.1", description: "t" }, "/definitions/0/af"],
    ["traceroute starting past its last hop", { type: "traceroute", af: 4, target: "127.0.0.1", description: "t", first_hop: 9, max_hops: 5 }, "/definitions/0/first_hop"],
    ["traceroute with paris 65", { type: "traceroute", af: 4, target: "127.0.0.1", description: "t", paris: 65 }, "/definitions/0/paris"],
    ["sslcert on port 0", { type: "sslcert", af: 4, target: "127.0.0.1", description: "s", port: 0 }, "/definitions/0/port"],
  ])("%s → 400 naming the field", async (_name, def, pointer) => {
    await rejected(await post("/api/v2/measurements/", body(def), auth), 400, pointer);
  });

  it("accepts them, prices them as Atlas does, and hands probes only the measurement fields", async () => {
    const p = await enroll({ country_code: "EE" });
    const { socket } = await connect(p, { slots: 10 });
    const sources = [{ type: "probes", value: String(p.id), requested: 1 }];
    const created = async (def: Record<string, unknown>) => {
      const res = await post("/api/v2/measurements/", { definitions: [def], probes: sources, is_oneoff: true }, auth);
      expect(res.status).toBe(201);
      return ((await res.json()) as { measurements: number[] }).measurements[0]!;
    };
    const udp = await created(dnsDef({ use_probe_resolver: true, target: undefined }));
    const tcp = await created(dnsDef({ protocol: "TCP", set_rd_bit: true }));
    const ntp = await created({ type: "ntp", af: 4, target: "127.0.0.1", description: "n" });
    const object = async (id: number) => (await (await call(`/api/v2/measurements/${id}/`)).json()) as Record<string, unknown>;
    expect(await object(udp)).toMatchObject({ type: "dns", credits_per_result: 20, use_probe_resolver: true, query_type: "A", target: null });
    expect(await object(tcp)).toMatchObject({ credits_per_result: 40, protocol: "TCP", set_rd_bit: true, retry: 0, timeout: 5000 });
    expect(await object(ntp)).toMatchObject({ type: "ntp", credits_per_result: 6, packets: 3, timeout: 4000 });
    const trace = await created({ type: "traceroute", af: 4, target: "127.0.0.1", description: "t", protocol: "TCP" });
    // Atlas: traceroute 10 × packets × (⌊size/1500⌋ + 1) = 30, doubled for a one-off.
    expect(await object(trace)).toMatchObject({ type: "traceroute", credits_per_result: 60, protocol: "TCP", paris: 16, max_hops: 32 });
    const cert = await created({ type: "sslcert", af: 4, target: "127.0.0.1", description: "s", hostname: "www.example.test" });
    const web = await created({ type: "http", af: 4, target: "127.0.0.1", description: "h", path: "/x", extended_timing: true });
    expect(await object(cert)).toMatchObject({ type: "sslcert", credits_per_result: 20, port: 443, hostname: "www.example.test" });
    expect(await object(web)).toMatchObject({ type: "http", credits_per_result: 20, method: "GET", path: "/x", version: "1.1", extended_timing: true });
    const given = [];
    for (let i = 0; i < 6; i++) given.push((await socket.next("measure")).assignment.spec);
    expect(given[3]).toMatchObject({ type: "traceroute", protocol: "TCP", first_hop: 1, response_timeout: 4000 });
    expect(given[4]).toMatchObject({ type: "sslcert", port: 443, hostname: "www.example.test" });
    expect(given[5]).not.toHaveProperty("description");
    expect(given[0]).toEqual({
      type: "dns", af: 4, resolve_on_probe: false, query_class: "IN", query_type: "A", query_argument: "example.net", protocol: "UDP",
      set_rd_bit: false, set_do_bit: false, set_cd_bit: false, set_nsid_bit: false, tls: false, retry: 0, timeout: 5000,
      use_probe_resolver: true, include_qbuf: false, include_abuf: true,
    });
    expect(given[2]).toEqual({ type: "ntp", af: 4, target: "127.0.0.1", resolve_on_probe: false, packets: 3, timeout: 4000 });
    socket.ws.close();
  });
});

describe("bodies as RIPE's clients send them", () => {
  it("takes null as not given, in definitions, probe sources and the body itself (ripe-atlas measure http)", async () => {
    const p = await enroll({ country_code: "EE" });
    const { socket } = await connect(p);
    const res = await post("/api/v2/measurements/", {
      definitions: [{ type: "http", af: 4, target: "127.0.0.1", description: "h", header_bytes: 0, version: "1.1", method: "GET", port: 80, path: "/",
        query_string: null, user_agent: "RIPE Atlas: https://atlas.ripe.net/", max_bytes_read: null, spread: null, tags: null }],
      probes: [{ type: "probes", value: String(p.id), requested: 1, tags: { include: null, exclude: [] } }],
      is_oneoff: true, start_time: null, bill_to: null,
    }, auth);
    expect(res.status).toBe(201);
    const spec = (await socket.next("measure")).assignment.spec;
    expect(spec).toMatchObject({ type: "http", port: 80, user_agent: "RIPE Atlas: https://atlas.ripe.net/" });
    expect(spec).not.toHaveProperty("query_string");
    expect(spec).not.toHaveProperty("max_bytes_read");
    socket.ws.close();
  });

  it("sends DNS over TLS to the probe as TCP with tls, whatever protocol the client sent (ripe-atlas measure dns --tls)", async () => {
    const p = await enroll({ country_code: "EE" });
    const { socket } = await connect(p);
    const res = await post("/api/v2/measurements/", {
      definitions: [{ type: "dns", af: 4, target: "127.0.0.1", description: "d", query_class: "IN", query_type: "A", query_argument: "example.net",
        protocol: "UDP", tls: true, udp_payload_size: null, use_probe_resolver: false, set_rd_bit: true }],
      probes: [{ type: "probes", value: String(p.id), requested: 1 }], is_oneoff: true,
    }, auth);
    expect(res.status).toBe(201);
    const [id] = ((await res.json()) as { measurements: number[] }).measurements;
    expect((await socket.next("measure")).assignment.spec).toMatchObject({ type: "dns", tls: true, protocol: "TCP" });
    expect(await (await call(`/api/v2/measurements/${id}/`)).json()).toMatchObject({ tls: true, protocol: "TCP" });
    socket.ws.close();
  });

  it("maps a traceroute's Atlas timeout to response_timeout and takes option sizes of 0 (ripe-atlas measure traceroute)", async () => {
    const p = await enroll({ country_code: "EE" });
    const { socket } = await connect(p);
    const res = await post("/api/v2/measurements/", {
      definitions: [{ type: "traceroute", af: 4, target: "127.0.0.1", description: "t", destination_option_size: null, hop_by_hop_option_size: 0,
        dont_fragment: false, first_hop: 1, max_hops: 32, packets: 3, paris: 16, port: null, protocol: "ICMP", size: 48, timeout: 2500 }],
      probes: [{ type: "probes", value: String(p.id), requested: 1 }], is_oneoff: true,
    }, auth);
    expect(res.status).toBe(201);
    const spec = (await socket.next("measure")).assignment.spec;
    expect(spec).toMatchObject({ type: "traceroute", response_timeout: 2500 });
    expect(spec).not.toHaveProperty("timeout");
    expect(spec).not.toHaveProperty("hop_by_hop_option_size");
    socket.ws.close();
    const both = body({ type: "traceroute", af: 4, target: "127.0.0.1", description: "t", timeout: 2500, response_timeout: 4000 });
    await rejected(await post("/api/v2/measurements/", both, auth), 400, "/definitions/0/timeout");
  });

  it.each([
    ["a DNS name prefixed with the probe's id", { type: "dns", af: 4, target: "127.0.0.1", description: "d", query_type: "A", query_argument: "example.net", prepend_probe_id: true }, "/definitions/0/prepend_probe_id"],
    ["an IPv6 destination option", { type: "traceroute", af: 4, target: "127.0.0.1", description: "t", destination_option_size: 8 }, "/definitions/0/destination_option_size"],
    ["auto top-up", ping({ interval: 300, auto_topup: true }), "/definitions/0/auto_topup"],
    ["a field Vantage does not know", ping({ skip_dns_check: true }), "/definitions/0/skip_dns_check"],
    ["a typo", ping({ pakcets: 5 }), "/definitions/0/pakcets"],
  ])("refuses %s with a 400 naming the field, and creates nothing", async (_name, def, pointer) => {
    const mine = async () => ((await (await call("/api/v2/measurements/my/", { headers: auth })).json()) as { count: number }).count;
    const before = await mine();
    const e = await rejected(await post("/api/v2/measurements/", body(def, "interval" in def ? { is_oneoff: false } : {}), auth), 400, pointer);
    expect(e.detail).toContain(pointer);
    expect(await mine()).toBe(before);
  });

  it("refuses unknown fields of the body and of a probe source by name", async () => {
    await rejected(await post("/api/v2/measurements/", body(ping(), { is_oneof: true }), auth), 400, "/is_oneof");
    await rejected(await post("/api/v2/measurements/", { ...body(ping()), probes: [{ type: "area", value: "WW", requested: 1, requested_max: 5 }] }, auth), 400, "/probes/0/requested_max");
    await rejected(await post("/api/v2/measurements/", { ...body(ping()), probes: [{ type: "area", value: "WW", requested: 1, tags: { inclde: ["x"] } }] }, auth), 400, "/probes/0/tags/inclde");
  });
});

describe("keys", () => {
  it("missing key on create → 403 naming the problem", async () => {
    const e = await rejected(await post("/api/v2/measurements/", body(ping())), 403);
    expect(e.detail).toBe("Authentication credentials were not provided.");
  });

  it("unknown key → 403, in either form", async () => {
    await rejected(await post("/api/v2/measurements/", body(ping()), { Authorization: "Key 00000000-0000-0000-0000-000000000000" }), 403);
    await rejected(await post("/api/v2/measurements/?key=nope", body(ping())), 403);
  });

  it("several keys → 403", async () => {
    expect((await rejected(await post(`/api/v2/measurements/?key=${key}`, body(ping()), auth), 403)).detail).toContain("Several API keys");
  });

  it("?key= works like the header (cousteau 1.4)", async () => {
    const p = await enroll({ country_code: "GR" });
    const { socket } = await connect(p);
    const res = await post(`/api/v2/measurements?key=${key}`, { ...body(ping()), probes: [{ type: "probes", value: String(p.id), requested: 1 }] });
    expect(res.status).toBe(201);
    // An empty ?key= is no key (cousteau 1.4 sends one when reading a measurement or probe without a key).
    const id = ((await res.json()) as { measurements: number[] }).measurements[0]!;
    expect((await call(`/api/v2/measurements/${id}/?key=`)).status).toBe(200);
    expect((await call(`/api/v2/probes/${p.id}/?key=`)).status).toBe(200);
    await rejected(await post("/api/v2/measurements/?key=", body(ping())), 403);
    socket.ws.close();
  });
});

describe("reading", () => {
  it("serves paths with and without the trailing slash, without redirects", async () => {
    const p = await enroll({ country_code: "IT" });
    for (const path of [`/api/v2/probes/${p.id}`, `/api/v2/probes/${p.id}/`, "/api/v2/probes", "/api/v2/probes/"]) {
      const res = await call(path, { redirect: "manual" });
      expect(res.status, path).toBe(200);
    }
  });

  it("returns the Atlas probe object", async () => {
    const p = await enroll({ country_code: "PL", asn_v4: 64510, prefix_v4: "192.0.2.0/24", latitude: 52.2297, longitude: 21.0122 });
    const probe = (await (await call(`/api/v2/probes/${p.id}/`)).json()) as Record<string, unknown>;
    expect(probe).toMatchObject({
      id: p.id, type: "Probe", asn_v4: 64510, asn_v6: null, country_code: "PL", prefix_v4: "192.0.2.0/24", is_anchor: false,
      is_public: true, status: { id: 0, name: "Never Connected" }, geometry: { type: "Point", coordinates: [21.01, 52.23] }, tags: [],
    });
    expect(Object.keys(probe).sort()).toEqual([
      "address_v4", "address_v6", "asn_v4", "asn_v6", "country_code", "description", "firmware_version", "first_connected",
      "geometry", "id", "is_anchor", "is_public", "last_connected", "prefix_v4", "prefix_v6", "status", "status_since", "tags",
      "total_uptime", "type",
    ]);
  });

  it("filters and paginates probes the Atlas way", async () => {
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await enroll({ country_code: "HU", asn_v4: 64511 })).id);
    const page1 = (await (await call("/api/v2/probes/?country_code=HU&page_size=2")).json()) as { count: number; next: string; previous: null; results: { id: number }[] };
    expect(page1.count).toBe(5);
    expect(page1.results.map((r) => r.id)).toEqual(ids.slice(0, 2));
    expect(page1.previous).toBeNull();
    const page2 = (await (await call(new URL(page1.next).pathname + new URL(page1.next).search)).json()) as { results: { id: number }[]; previous: string };
    expect(page2.results.map((r) => r.id)).toEqual(ids.slice(2, 4));
    expect(page2.previous).toContain("page=1");
    const byIds = (await (await call(`/api/v2/probes?id__in=${ids[0]},${ids[4]}&asn_v4=64511`)).json()) as { results: { id: number }[] };
    expect(byIds.results.map((r) => r.id)).toEqual([ids[0], ids[4]]);
    expect((await (await call("/api/v2/probes/?country_code=HU&status=1")).json() as { count: number }).count).toBe(0);
    await rejected(await call("/api/v2/probes/?page_size=abc"), 400);
    await rejected(await call("/api/v2/probes/?country_code=Hungary"), 400);
  });

  it("lists measurements with filters and answers 404 for unknown ones", async () => {
    const id = ((await (await createPing(key, [{ type: "country", value: "AQ", requested: 1 }])).json()) as { measurements: number[] }).measurements[0]!;
    const list = (await (await call(`/api/v2/measurements/?status=6&type=ping&page_size=500`)).json()) as { results: { id: number; status: { id: number } }[] };
    expect(list.results.some((m) => m.id === id)).toBe(true);
    expect(list.results.every((m) => m.status.id === 6)).toBe(true);
    const mine = (await (await call("/api/v2/measurements/my/", { headers: auth })).json()) as { results: { id: number }[] };
    expect(mine.results.some((m) => m.id === id)).toBe(true);
    await rejected(await call("/api/v2/measurements/my/"), 403);
    await rejected(await call("/api/v2/measurements/999999999/"), 404);
    await rejected(await call("/api/v2/measurements/abc/results/"), 404);
    await rejected(await call("/api/v2/measurements/999999999/results/"), 404);
    await rejected(await call(`/api/v2/measurements/${id}/results/?format=xml`), 400);
    await rejected(await call(`/api/v2/measurements/${id}/results/?probe_ids=a,b`), 400);
    await rejected(await call("/api/v2/nothing-here/"), 404);
  });

  it("returns the Atlas measurement object with credits and status", async () => {
    const p = await enroll({ country_code: "CZ" });
    const { socket } = await connect(p);
    const res = await createPing(key, [{ type: "probes", value: String(p.id), requested: 1 }], { packets: 5, size: 1600 });
    const id = ((await res.json()) as { measurements: number[] }).measurements[0]!;
    const m = (await (await call(`/api/v2/measurements/${id}`)).json()) as Record<string, unknown>;
    expect(m).toMatchObject({
      id, type: "ping", af: 4, target: "127.0.0.1", target_ip: "127.0.0.1", is_oneoff: true, packets: 5, size: 1600,
      // Atlas: packets × (⌊size/1500⌋ + 1), doubled for a one-off.
      credits_per_result: 20, probes_requested: 1, probes_scheduled: 1, status: { id: 2, name: "Ongoing" },
      result: `http://edge.test/api/v2/measurements/${id}/results/`,
    });
    socket.ws.close();
  });
});
