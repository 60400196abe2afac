// End to end on the real local system: wrangler dev (workerd, SQLite DOs, the R2 simulation) with its HTTPS front,
// three real agent processes enrolled in three countries, and a user who speaks only the Atlas API.
import https from "node:https";
import net from "node:net";
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { HttpResult, type PingResult, SslcertResult, TracerouteResult } from "../../protocol/index.ts";
import { makeTestPki } from "./pki.ts";
import { LOCAL_SITES } from "../../scripts/local.ts";
import { icmpUnavailable, listeningSockets, until, useLocalSystem } from "./system.ts";

const noIcmp = icmpUnavailable();
if (noIcmp) console.warn(`skipping the end-to-end ping test: ${noIcmp}`);

/** GET/POST over HTTPS to the self-signed local front, as an Atlas client with verify=False would. */
function httpsJson(url: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, {
      method: init.method ?? "GET", rejectUnauthorized: false,
      headers: { Accept: "application/json", ...(init.body ? { "Content-Type": "application/json" } : {}), ...init.headers },
    }, (res) => {
      let data = "";
      res.on("data", (d) => (data += d));
      res.on("end", () => resolve({ status: res.statusCode!, body: data ? JSON.parse(data) : null }));
    });
    req.on("error", reject);
    req.end(init.body ? JSON.stringify(init.body) : undefined);
  });
}

describe.skipIf(noIcmp !== null)("a one-off ping from three probes, through the public API", () => {
  const local = useLocalSystem("e2e");

  it("creates the measurement over HTTPS and reads back Atlas ping results from all three probes", async () => {
    const { edge, front, probes, key } = local();
    const created = await httpsJson(`${front.url}/api/v2/measurements/?key=${key}`, {
      method: "POST",
      body: {
        definitions: [{ type: "ping", af: 4, target: "127.0.0.1", description: "e2e", packets: 3, size: 64, packet_interval: 200 }],
        probes: [{ type: "area", value: "WW", requested: 3 }],
        is_oneoff: true,
      },
    });
    expect(created.status).toBe(201);
    const id = (created.body as { measurements: number[] }).measurements[0]!;

    const results = await until("three results", async () => {
      const res = await httpsJson(`${front.url}/api/v2/measurements/${id}/results`);
      const list = res.body as PingResult[];
      return list.length === 3 ? list : null;
    }, 60_000, 500);

    expect(results.map((r) => r.prb_id).sort()).toEqual(probes.map((p) => p.id).sort());
    const now = Date.now() / 1000;
    for (const r of results) {
      // Every field of an Atlas ping result (reference/atlas.md §2), with values a parser relies on.
      expect(Object.keys(r).sort()).toEqual([
        "af", "avg", "dst_addr", "dst_name", "dup", "from", "fw", "lts", "max", "min", "msm_id", "msm_name", "mver", "prb_id",
        "proto", "rcvd", "result", "sent", "size", "src_addr", "step", "stored_timestamp", "timestamp", "ttl", "type",
      ]);
      expect(r).toMatchObject({
        fw: 5020, mver: "1.0.0", type: "ping", msm_name: "Ping", msm_id: id, af: 4, proto: "ICMP", from: "127.0.0.1",
        src_addr: "127.0.0.1", dst_addr: "127.0.0.1", dst_name: "127.0.0.1", size: 64, ttl: 64, sent: 3, rcvd: 3, dup: 0, step: null,
      });
      expect(r.lts).toBeGreaterThanOrEqual(0);
      expect(r.lts).toBeLessThan(60);
      expect(Math.abs(r.timestamp - now)).toBeLessThan(60);
      expect(r.stored_timestamp! - r.timestamp).toBeGreaterThanOrEqual(0);
      expect(r.result).toHaveLength(3);
      const rtts = r.result.map((x) => (x as { rtt: number }).rtt);
      for (const rtt of rtts) expect(rtt).toBeGreaterThan(0);
      expect(r.min).toBe(Math.min(...rtts));
      expect(r.max).toBe(Math.max(...rtts));
      expect(r.avg).toBeCloseTo(rtts.reduce((a, b) => a + b) / 3, 2);
    }

    // The same results over plain HTTP, as text, per probe, and as "latest".
    const txt = await (await fetch(`${edge.url}/api/v2/measurements/${id}/results/?format=txt&probe_ids=${probes[0]!.id}`)).text();
    expect(txt.trim().split("\n").map((l) => (JSON.parse(l) as PingResult).prb_id)).toEqual([probes[0]!.id]);
    // "latest" is Atlas's: one array, each probe's newest result, probes in id order.
    const latest = (await (await fetch(`${edge.url}/api/v2/measurements/${id}/latest`)).json()) as PingResult[];
    expect(latest.map((r) => r.prb_id)).toEqual(probes.map((p) => p.id).sort((a, b) => a - b));

    const m = (await httpsJson(`${front.url}/api/v2/measurements/${id}/`)).body as { probes_scheduled: number; status: { name: string } };
    expect(m.probes_scheduled).toBe(3);
    expect(["Ongoing", "Stopped"]).toContain(m.status.name);
  });

  it("lists the three probes with their countries and ASNs as connected", async () => {
    const { front } = local();
    const res = await httpsJson(`${front.url}/api/v2/probes/?status=1`);
    const list = (res.body as { results: { country_code: string; asn_v4: number; status: { name: string } }[] }).results;
    expect(list.map((p) => `${p.country_code}:${p.asn_v4}`).sort()).toEqual(LOCAL_SITES.map((s) => `${s.country_code}:${s.asn_v4}`).sort());
    expect(list.every((p) => p.status.name === "Connected")).toBe(true);
  });

  it("streams every result of a measurement to a subscriber over wss://, once, as the probes deliver them", async () => {
    const { front, key, probes } = local();
    const ws = new WebSocket(`${front.url.replace(/^https/, "wss")}/stream/`, { rejectUnauthorized: false });
    const frames: [string, unknown][] = [];
    ws.on("message", (d) => frames.push(JSON.parse(String(d)) as [string, unknown]));
    await new Promise((r, j) => { ws.once("open", r); ws.once("error", j); });
    const created = await httpsJson(`${front.url}/api/v2/measurements/?key=${key}`, {
      method: "POST",
      body: { definitions: [{ type: "ping", af: 4, target: "127.0.0.1", description: "streamed", packets: 2, packet_interval: 100 }],
        probes: [{ type: "area", value: "WW", requested: 3 }], is_oneoff: true },
    });
    const id = (created.body as { measurements: number[] }).measurements[0]!;
    // Subscribed after creation: the backlog covers results stored before the subscription took effect.
    ws.send(JSON.stringify(["atlas_subscribe", { streamType: "result", msm: id, sendBacklog: true }]));
    const results = await until("three streamed results", async () => {
      const got = frames.filter((f) => f[0] === "atlas_result").map((f) => f[1] as PingResult);
      return got.length >= 3 ? got : null;
    }, 60_000, 100);
    await new Promise((r) => setTimeout(r, 1500));  // nothing more may come
    const all = frames.filter((f) => f[0] === "atlas_result").map((f) => f[1] as PingResult);
    expect(frames[0]).toEqual(["atlas_subscribed", { streamType: "result", msm: id, sendBacklog: true }]);
    expect(all).toHaveLength(3);
    expect(results.map((r) => r.prb_id).sort()).toEqual(probes.map((p) => p.id).sort());
    expect(results.every((r) => r.msm_id === id && r.type === "ping" && r.rcvd === 2)).toBe(true);
    ws.close();
  });

  it("has agents that listen on no port", async () => {
    const { agents } = local();
    // The check itself sees a listener when there is one (this test process, for a moment).
    const server = net.createServer().listen(0, "127.0.0.1");
    await new Promise((r) => server.once("listening", r));
    expect(listeningSockets(process.pid).some((s) => s.startsWith("tcp "))).toBe(true);
    server.close();
    for (const agent of agents) {
      expect(agent.process.exitCode).toBeNull();
      expect(listeningSockets(agent.process.pid!)).toEqual([]);
    }
  });

  it("runs traceroute, http and sslcert through the same path and stores Atlas results", async () => {
    const { edge, key, probes } = local();
    const pki = makeTestPki("IP:127.0.0.1,DNS:localhost");
    const server = https.createServer({ key: pki.key, cert: `${pki.leaf}\n${pki.intermediate}\n` }, (_req, res) => res.end("ok\n"));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const res = await fetch(`${edge.url}/api/v2/measurements/`, {
        method: "POST", headers: { "Content-Type": "application/json", Authorization: `Key ${key}` },
        body: JSON.stringify({
          definitions: [
            { type: "traceroute", af: 4, target: "127.0.0.1", description: "t", protocol: "UDP", packets: 1, response_timeout: 1000 },
            { type: "http", af: 4, target: "127.0.0.1", description: "h", https: true, port, extended_timing: true },
            { type: "sslcert", af: 4, target: "127.0.0.1", description: "s", port, hostname: "localhost" },
          ],
          probes: [{ type: "probes", value: String(probes[0]!.id), requested: 1 }],
          is_oneoff: true,
        }),
      });
      expect(res.status).toBe(201);
      const [trace, web, cert] = ((await res.json()) as { measurements: number[] }).measurements as [number, number, number];
      const one = (id: number) => until(`a result of ${id}`, async () => {
        const list = (await (await fetch(`${edge.url}/api/v2/measurements/${id}/results/`)).json()) as Record<string, unknown>[];
        return list[0] ?? null;
      }, 60_000, 500);
      expect(TracerouteResult.parse(await one(trace))).toMatchObject({ prb_id: probes[0]!.id, dst_addr: "127.0.0.1", result: [{ hop: 1 }] });
      expect(HttpResult.parse(await one(web)).result[0]).toMatchObject({ res: 200, bsize: 3 });
      expect(SslcertResult.parse(await one(cert))).toMatchObject({ ver: "1.3", cert: [pki.leaf, pki.intermediate] });
    } finally {
      server.close();
    }
  });
});
