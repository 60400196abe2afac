// Controllers and the brain inside workerd: dispatch to probes with free slots across shards, exactly-once
// ingestion with acks only after durability, refusals of lying or garbled probes, batched R2 writes with a
// per-measurement index, and the measurement lifecycle (one-off, periodic, DELETE).
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ConnectedProbes } from "../../durable-objects/connected.ts";
import { ADMIN, call, connect, createPing, enroll, newKey, pingResult, post, env } from "./harness.ts";

const key = await newKey();

async function measurement(id: number) {
  return (await (await call(`/api/v2/measurements/${id}/`)).json()) as {
    status: { id: number; name: string }; probes_scheduled: number; probes: { id: number }[]; participant_count: number;
  };
}

async function results(id: number, query = "") {
  return (await (await call(`/api/v2/measurements/${id}/results/${query}`)).json()) as ReturnType<typeof pingResult>[];
}

async function created(res: Response): Promise<number> {
  expect(res.status).toBe(201);
  return ((await res.json()) as { measurements: number[] }).measurements[0]!;
}

describe("dispatch", () => {
  it("gives a measurement to probes with free slots, across shards, up to the requested count", async () => {
    const nl = await enroll({ country_code: "NL", asn_v4: 64501 });
    const nl2 = await enroll({ country_code: "NL", asn_v4: 64502 });
    const jp = await enroll({ country_code: "JP", asn_v4: 64503 });
    const busy = await enroll({ country_code: "NL", asn_v4: 64504 });
    const sockets = await Promise.all([connect(nl), connect(nl2), connect(jp), connect(busy, { slots: 1 })]);
    sockets[3]!.socket.send({ type: "status", free_slots: 0 });
    await sockets[3]!.socket.next("status_ack");

    const id = await created(await createPing(key, [{ type: "probes", value: [nl.id, nl2.id, jp.id, busy.id].join(","), requested: 4 }]));
    const m = await measurement(id);
    expect(m.status).toMatchObject({ id: 2, name: "Ongoing" });
    expect(m.probes.map((p) => p.id).sort()).toEqual([nl.id, nl2.id, jp.id].sort());
    for (const s of sockets.slice(0, 3)) {
      const msg = await s.socket.next("measure");
      expect(msg.assignment).toMatchObject({ msm_id: id, interval: null, spec: { type: "ping", af: 4, target: "127.0.0.1", packets: 3, size: 48 } });
    }
    expect(sockets[3]!.socket.has("measure")).toBe(false);
    for (const s of sockets) s.socket.ws.close();
  });

  it("selects by country and ASN, diversifying ASNs first", async () => {
    const a1 = await enroll({ country_code: "SE", asn_v4: 65001 });
    const a2 = await enroll({ country_code: "SE", asn_v4: 65001 });
    const b1 = await enroll({ country_code: "SE", asn_v4: 65002 });
    const socks = await Promise.all([connect(a1), connect(a2), connect(b1)]);
    const two = await measurement(await created(await createPing(key, [{ type: "country", value: "SE", requested: 2 }])));
    const picked = two.probes.map((p) => p.id);
    expect(picked).toContain(b1.id);
    expect(picked.filter((id) => id === a1.id || id === a2.id)).toHaveLength(1);
    const byAsn = await measurement(await created(await createPing(key, [{ type: "asn", value: "65001", requested: 5 }])));
    expect(byAsn.probes.map((p) => p.id).sort()).toEqual([a1.id, a2.id].sort());
    expect(byAsn.probes_scheduled).toBe(2);
    for (const s of socks) s.socket.ws.close();
  });

  it("within an ASN, spreads over cities first, and prefers the probe with the most free slots", async () => {
    const asn = 65010;
    // Two probes in Gothenburg (6 and 8 free slots), one in Malmö (2): two probes go to both cities, Gothenburg's
    // being its least loaded — not to the two least loaded probes, both in Gothenburg (one 0.1° cell: 57.7,12.0).
    const gbg = [await enroll({ country_code: "SE", asn_v4: asn, latitude: 57.71, longitude: 11.97 }), await enroll({ country_code: "SE", asn_v4: asn, latitude: 57.69, longitude: 11.99 })];
    const mmo = await enroll({ country_code: "SE", asn_v4: asn, latitude: 55.6, longitude: 13.0 });
    const socks = [await connect(gbg[0]!, { slots: 6 }), await connect(gbg[1]!, { slots: 8 }), await connect(mmo, { slots: 2 })];
    const two = await measurement(await created(await createPing(key, [{ type: "asn", value: String(asn), requested: 2 }])));
    expect(two.probes.map((p) => p.id).sort()).toEqual([gbg[1]!.id, mmo.id].sort());
    for (const s of socks) s.socket.ws.close();
  });

  it("load-aware: a busy controller gives half on the first pass, another fills the rest; alone it gives all", async () => {
    const asn = 65020;
    // San Francisco (wnam-0, asked first for an ASN source): 4 probes with 1 of 4 slots free — 25 %: busy.
    const sf = await Promise.all(Array.from({ length: 4 }, () => enroll({ country_code: "US", asn_v4: asn, latitude: 37.7, longitude: -122.4 })));
    const busy = [];
    for (const p of sf) {
      const c = await connect(p, { slots: 4 });
      c.socket.send({ type: "status", free_slots: 1 });
      await c.socket.next("status_ack");
      busy.push(c);
    }
    // São Paulo (sam-0): 2 idle probes.
    const sp = await Promise.all(Array.from({ length: 2 }, () => enroll({ country_code: "BR", asn_v4: asn, latitude: -23.5, longitude: -46.6 })));
    const idle = await Promise.all(sp.map((p) => connect(p, { slots: 4 })));
    const spread = await measurement(await created(await createPing(key, [{ type: "asn", value: String(asn), requested: 4 }])));
    const ids = spread.probes.map((p) => p.id);
    expect(ids.filter((id) => sf.some((p) => p.id === id))).toHaveLength(2);
    expect(ids.filter((id) => sp.some((p) => p.id === id))).toHaveLength(2);
    // Where only the busy shard has such probes, the brain's second pass takes what it held back: all 4, not 2.
    const only = await Promise.all(Array.from({ length: 4 }, () => enroll({ country_code: "US", asn_v4: asn + 1, latitude: 37.7, longitude: -122.4 })));
    for (const p of only) {
      const c = await connect(p, { slots: 4 });
      c.socket.send({ type: "status", free_slots: 1 });
      await c.socket.next("status_ack");
      busy.push(c);
    }
    const all = await measurement(await created(await createPing(key, [{ type: "asn", value: String(asn + 1), requested: 4 }])));
    expect(all.probes_scheduled).toBe(4);
    for (const c of [...busy, ...idle]) c.socket.ws.close();
  });

  it("says No suitable probes when none match", async () => {
    const m = await measurement(await created(await createPing(key, [{ type: "country", value: "AQ", requested: 3 }])));
    expect(m.status).toMatchObject({ id: 6, name: "No suitable probes" });
    expect(m.participant_count).toBe(0);
  });

  it("gives no work to a probe silent for three heartbeats, and closes its socket", async () => {
    const p = await enroll({ country_code: "IS", asn_v4: 64505 });
    const { socket } = await connect(p);
    const closed = new Promise<number>((r) => socket.ws.addEventListener("close", (e) => r(e.code)));
    await runInDurableObject(env.CONTROLLER.getByName("weur-0"), (o, state) => {
      const connected = (o as unknown as { connected: ConnectedProbes }).connected;
      for (const ws of state.getWebSockets(`probe:${p.id}`)) connected.set(ws, { ...connected.get(ws)!, last_seen: Math.floor(Date.now() / 1000) - 96 });
    });
    const m = await measurement(await created(await createPing(key, [{ type: "probes", value: String(p.id), requested: 1 }])));
    expect(m.status.name).toBe("No suitable probes");
    expect(await closed).toBe(4001);
  });

  it("closes a silent probe's socket and reports it Disconnected when another probe speaks, without a dispatch", async () => {
    // A link cut upstream sends no FIN: only the silence tells.
    const silent = await enroll({ country_code: "IS", asn_v4: 64506 });
    const talker = await enroll({ country_code: "IS", asn_v4: 64507 });
    const { socket } = await connect(silent);
    const other = (await connect(talker)).socket;
    const closed = new Promise<number>((r) => socket.ws.addEventListener("close", (e) => r(e.code)));
    await runInDurableObject(env.CONTROLLER.getByName("weur-0"), (o, state) => {
      const c = o as unknown as { connected: ConnectedProbes; silence: { sweptAt: number } };
      for (const ws of state.getWebSockets(`probe:${silent.id}`)) c.connected.set(ws, { ...c.connected.get(ws)!, last_seen: Math.floor(Date.now() / 1000) - 96 });
      c.silence.sweptAt = 0;  // the last sweep was long ago
    });
    other.send({ type: "status", free_slots: 4 });
    await other.next("status_ack");
    expect(await closed).toBe(4001);
    const status = async () => ((await (await call(`/api/v2/probes/${silent.id}/`)).json()) as { status: { name: string } }).status.name;
    for (let i = 0; i < 50 && (await status()) !== "Disconnected"; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await status()).toBe("Disconnected");
    // The probe that spoke is left alone.
    expect(other.ws.readyState).toBe(WebSocket.OPEN);
    other.ws.close();
  });

  it("closes a lone probe's socket on the alarm once it falls silent, with nothing else arriving", async () => {
    // The only probe on its shard and its link dead: no message, dispatch or flush would come to sweep it.
    const p = await enroll({ country_code: "IS", asn_v4: 64508 });
    const controller = env.CONTROLLER.getByName("weur-0");
    // Earlier tests' probes are gone; no flush is due.
    await runInDurableObject(controller, async (o, state) => {
      for (const ws of state.getWebSockets()) ws.close(1000, "test");
      await state.storage.deleteAlarm();
    });
    const { socket } = await connect(p);
    await socket.next("resume");
    const closed = new Promise<number>((r) => socket.ws.addEventListener("close", (e) => r(e.code)));
    // Its hello armed the alarm for when it would pass the silence limit (95 s).
    const alarm = () => runInDurableObject(controller, (_o, state) => state.storage.getAlarm());
    for (let i = 0; i < 50 && (await alarm()) === null; i++) await new Promise((r) => setTimeout(r, 20));
    const inMs = (await alarm())! - Date.now();
    expect(inMs).toBeGreaterThan(90_000);
    expect(inMs).toBeLessThanOrEqual(97_000);
    await runInDurableObject(controller, (o, state) => {
      const c = o as unknown as { connected: ConnectedProbes };
      for (const ws of state.getWebSockets(`probe:${p.id}`)) c.connected.set(ws, { ...c.connected.get(ws)!, last_seen: Math.floor(Date.now() / 1000) - 96 });
    });
    expect(await runDurableObjectAlarm(controller)).toBe(true);
    expect(await closed).toBe(4001);
    const status = async () => ((await (await call(`/api/v2/probes/${p.id}/`)).json()) as { status: { name: string } }).status.name;
    for (let i = 0; i < 50 && (await status()) !== "Disconnected"; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await status()).toBe("Disconnected");
  });

  it("re-sends unfinished assignments when a probe reconnects", async () => {
    const p = await enroll({ country_code: "FI" });
    const first = await connect(p);
    const id = await created(await createPing(key, [{ type: "probes", value: String(p.id), requested: 1 }]));
    await first.socket.next("measure");
    first.socket.ws.close();
    const again = await connect(p);
    expect((await again.socket.next("measure")).assignment.msm_id).toBe(id);
    again.socket.ws.close();
  });
});

describe("results", () => {
  async function oneProbeMeasurement(country: string, extra: Record<string, unknown> = {}) {
    const p = await enroll({ country_code: country });
    const { socket } = await connect(p);
    const id = await created(await createPing(key, [{ type: "probes", value: String(p.id), requested: 1 }], extra));
    await socket.next("measure");
    return { p, socket, id };
  }

  it("acknowledges a result and stores it exactly once however often it is resent", async () => {
    const { p, socket, id } = await oneProbeMeasurement("NO");
    const submission = { seq: 1, result: pingResult(id, p.id) };
    socket.send({ type: "results", results: [submission] });
    expect((await socket.next("ack")).upto).toBe(1);
    socket.send({ type: "results", results: [submission] });
    expect((await socket.next("ack")).upto).toBe(1);
    socket.ws.close();
    // After a reconnect the spool resends it again.
    const again = await connect(p);
    again.socket.send({ type: "results", results: [submission] });
    expect((await again.socket.next("ack")).upto).toBe(1);
    const stored = await results(id);
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ msm_id: id, prb_id: p.id, rcvd: 2, result: [{ rtt: 1.5 }, { x: "*" }, { rtt: 2.5 }] });
    expect(typeof (stored[0] as { stored_timestamp?: number }).stored_timestamp).toBe("number");
    again.socket.ws.close();
  });

  it("refuses a result for a measurement the probe was not given, and one claiming another probe", async () => {
    const { p, socket, id } = await oneProbeMeasurement("DK");
    socket.send({ type: "results", results: [{ seq: 1, result: pingResult(id + 1000, p.id) }, { seq: 2, result: pingResult(id, p.id + 1) }] });
    const first = await socket.next("reject");
    expect(first).toEqual({ type: "reject", seq: 1, reason: `measurement ${id + 1000} was not given to this probe` });
    expect((await socket.next("reject")).reason).toContain("is not this probe");
    expect((await socket.next("ack")).upto).toBe(2);
    expect(await results(id)).toHaveLength(0);
    socket.ws.close();
  });

  it("stores an Atlas DNS result for a DNS measurement, and refuses a ping claimed for it", async () => {
    const p = await enroll({ country_code: "LV" });
    const { socket } = await connect(p);
    const res = await post("/api/v2/measurements/", {
      definitions: [{ type: "dns", af: 4, target: "127.0.0.1", description: "d", query_type: "SOA", query_argument: "example.test" }],
      probes: [{ type: "probes", value: String(p.id), requested: 1 }], is_oneoff: true,
    }, { Authorization: `Key ${key}` });
    const id = await created(res);
    await socket.next("measure");
    const dnsResult = {
      fw: 5020, mver: "1.0.0", lts: 2, msm_id: id, msm_name: "Tdig", prb_id: p.id, timestamp: Math.floor(Date.now() / 1000), from: "",
      type: "dns", af: 4, dst_addr: "127.0.0.1", dst_port: "53", proto: "UDP", src_addr: "127.0.0.1", retry: 0,
      result: { rt: 0.3, size: 43, ID: 4660, QDCOUNT: 1, ANCOUNT: 1, NSCOUNT: 0, ARCOUNT: 0, abuf: "EjSBgAABAAEAAAAAAWEHZXhhbXBsZQAAAQABwAwAAQABAAAAPAAEwAACAQ==" },
    };
    socket.send({ type: "results", results: [{ seq: 1, result: pingResult(id, p.id) }, { seq: 2, result: dnsResult }] });
    expect((await socket.next("reject")).reason).toBe(`measurement ${id} is a dns, not a ping`);
    expect((await socket.next("ack")).upto).toBe(2);
    const stored = (await results(id)) as unknown as typeof dnsResult[];
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ msm_name: "Tdig", result: { abuf: dnsResult.result.abuf } });
    socket.ws.close();
  });

  it("takes built-in results from any probe under the reserved ids, typed by their id", async () => {
    const p = await enroll({ country_code: "HR" });
    const { socket } = await connect(p);
    const t = Math.floor(Date.now() / 1000);
    socket.send({ type: "results", results: [
      { seq: 1, result: { ...pingResult(1001, p.id, t), step: 240 } },
      { seq: 2, result: { ...pingResult(5001, p.id, t), step: 240 } },
      { seq: 3, result: { ...pingResult(4242, p.id, t), step: 240 } },
    ] });
    expect((await socket.next("reject")).reason).toBe("measurement 5001 is a traceroute, not a ping");
    expect((await socket.next("reject")).reason).toBe("measurement 4242 was not given to this probe");
    expect((await socket.next("ack")).upto).toBe(3);
    const mine = (await results(1001, `?probe_ids=${p.id}`));
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ msm_id: 1001, prb_id: p.id, step: 240 });
    const object = (await (await call("/api/v2/measurements/1001/")).json()) as Record<string, unknown>;
    expect(object).toMatchObject({ id: 1001, type: "ping", description: "Built-in: ping to anchor 1", status: { name: "Ongoing" } });
    expect((await call("/api/v2/measurements/4242/")).status).toBe(404);
    socket.ws.close();
  });

  it("refuses garbage frames with a reason and keeps serving the probe and its neighbours", async () => {
    const { p, socket, id } = await oneProbeMeasurement("IE");
    const neighbour = await oneProbeMeasurement("IE");
    socket.sendRaw("{not json");
    expect((await socket.next("reject")).reason).toBe("frame is not JSON");
    // A malformed result is refused by itself (its seq named), and acknowledged so the probe does not resend it.
    socket.send({ type: "results", results: [{ seq: 1, result: { ...pingResult(id, p.id), rcvd: "two" } }] });
    expect(await socket.next("reject")).toMatchObject({ seq: 1, reason: expect.stringMatching(/^invalid result at \/rcvd/) });
    expect((await socket.next("ack")).upto).toBe(1);
    socket.send({ type: "teleport" });
    expect((await socket.next("reject")).reason).toContain("invalid message");
    neighbour.socket.send({ type: "results", results: [{ seq: 7, result: pingResult(neighbour.id, neighbour.p.id) }] });
    expect((await neighbour.socket.next("ack")).upto).toBe(7);
    socket.send({ type: "results", results: [{ seq: 2, result: pingResult(id, p.id) }] });
    expect((await socket.next("ack")).upto).toBe(2);
    expect(await results(id)).toHaveLength(1);
    socket.ws.close();
    neighbour.socket.ws.close();
  });

  it("writes results to R2 in batches under Hive keys, and reads them back through the index", async () => {
    const { p, socket, id } = await oneProbeMeasurement("PT", { interval: 60 });
    const t0 = Math.floor(Date.now() / 1000) - 1000;
    for (let frame = 0; frame < 5; frame++) {
      const results = Array.from({ length: 200 }, (_, i) => {
        const n = frame * 200 + i;
        return { seq: n + 1, result: { ...pingResult(id, p.id, t0 + n), step: 60 } };
      });
      socket.send({ type: "results", results });
      expect((await socket.next("ack")).upto).toBe((frame + 1) * 200);
    }
    const before = await env.RESULTS.list({ prefix: "results/" });
    const flushed = (await (await post("/admin/controllers/weur-0/flush", {}, { Authorization: `Bearer ${ADMIN}` })).json()) as { objects: number; results: number };
    expect(flushed.results).toBeGreaterThanOrEqual(1000);
    const after = await env.RESULTS.list({ prefix: "results/type=ping/" });
    const ours = after.objects.filter((o) => !before.objects.some((b) => b.key === o.key));
    // 1,000 results landed in at most one object per hour partition they span (here ≤ 2).
    expect(ours.length).toBeGreaterThanOrEqual(1);
    expect(ours.length).toBeLessThanOrEqual(2);
    for (const o of ours) expect(o.key).toMatch(/^results\/type=ping\/date=\d{4}-\d\d-\d\d\/hour=\d\d\/shard=weur-0\/\d{12}-\d{12}-[0-9a-f]{8}\.jsonl$/);
    const all = await results(id);
    expect(all).toHaveLength(1000);
    expect(all.map((r) => r.timestamp)).toEqual(Array.from({ length: 1000 }, (_, i) => t0 + i));
    expect(await results(id, `?start=${t0 + 10}&stop=${t0 + 19}`)).toHaveLength(10);
    const txt = await (await call(`/api/v2/measurements/${id}/results?format=txt&start=${t0}&stop=${t0 + 2}`)).text();
    expect(txt.trim().split("\n").map((l) => JSON.parse(l).timestamp)).toEqual([t0, t0 + 1, t0 + 2]);
    const latest = (await (await call(`/api/v2/measurements/${id}/latest/?versions=2`)).json()) as { prb_id: number; timestamp: number }[];
    expect(latest.map((r) => [r.prb_id, r.timestamp])).toEqual([[p.id, t0 + 999], [p.id, t0 + 998]]);
    socket.ws.close();
  });

  it("seals interleaved partitions into one batch each by id range, and writes later frames in the next batch", async () => {
    const { p, socket, id } = await oneProbeMeasurement("PT", { interval: 60 });
    const hour = 3600, t0 = Math.floor(Date.now() / 1000 / hour) * hour - 10 * hour;
    // Frames alternate between two hours (two partitions): 1 → hour A, 2 → hour B, 3 → hour A.
    for (const [seq, ts] of [[1, t0 + 5], [2, t0 + hour + 5], [3, t0 + 7]] as const) {
      socket.send({ type: "results", results: [{ seq, result: pingResult(id, p.id, ts) }] });
      await socket.next("ack");
    }
    const flush = async () => (await (await post("/admin/controllers/weur-0/flush", {}, { Authorization: `Bearer ${ADMIN}` })).json()) as { objects: number; results: number };
    expect(await flush()).toEqual({ objects: 2, results: 3 });
    socket.send({ type: "results", results: [{ seq: 4, result: pingResult(id, p.id, t0 + 9) }] });
    await socket.next("ack");
    expect(await flush()).toEqual({ objects: 1, results: 1 });
    await runInDurableObject(env.CONTROLLER.getByName("weur-0"), (_o, state) => {
      const counts = state.storage.sql.exec<{ count: number }>("SELECT count FROM batches WHERE msm_id = ? ORDER BY key", id).toArray().map((r) => r.count);
      expect(counts.sort()).toEqual([1, 1, 2]);
      expect(state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM outbox").one().n).toBe(0);
      expect(state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM sealed").one().n).toBe(0);
    });
    expect((await results(id)).map((r) => r.timestamp).sort()).toEqual([t0 + 5, t0 + 7, t0 + 9, t0 + hour + 5]);
    socket.ws.close();
  });

  it("reads each result once even if a batch was written twice", async () => {
    const { p, socket, id } = await oneProbeMeasurement("ES");
    socket.send({ type: "results", results: [{ seq: 1, result: pingResult(id, p.id) }] });
    await socket.next("ack");
    await post("/admin/controllers/weur-0/flush", {}, { Authorization: `Bearer ${ADMIN}` });
    await runInDurableObject(env.CONTROLLER.getByName("weur-0"), async (_o, state) => {
      const row = state.storage.sql.exec<{ key: string }>("SELECT key FROM batches WHERE msm_id = ?", id).one();
      const copy = row.key.replace(".jsonl", "-copy.jsonl");
      await env.RESULTS.put(copy, await (await env.RESULTS.get(row.key))!.text());
      state.storage.sql.exec("INSERT INTO batches (msm_id, key, min_ts, max_ts, count) SELECT msm_id, ?, min_ts, max_ts, count FROM batches WHERE msm_id = ?", copy, id);
    });
    expect(await results(id)).toHaveLength(1);
    socket.ws.close();
  });

  it("flushes on its own when enough results wait, and on the timer otherwise", async () => {
    const { p, socket, id } = await oneProbeMeasurement("BE");
    socket.send({ type: "results", results: [{ seq: 1, result: pingResult(id, p.id) }] });
    await socket.next("ack");
    const stub = env.CONTROLLER.getByName("weur-0");
    expect((await stub.load()).pending_results).toBeGreaterThan(0);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await stub.load()).pending_results).toBe(0);
    expect(await results(id)).toHaveLength(1);
    socket.ws.close();
  });
});

describe("lifecycle", () => {
  it("a periodic measurement stops on DELETE, and its probes are told", async () => {
    const p = await enroll({ country_code: "AT" });
    const { socket } = await connect(p);
    const id = await created(await createPing(key, [{ type: "probes", value: String(p.id), requested: 1 }], { interval: 300 }));
    const measure = await socket.next("measure");
    expect(measure.assignment).toMatchObject({ interval: 300, spread: 150, stop_time: null });
    expect((await call(`/api/v2/measurements/${id}`, { method: "DELETE" })).status).toBe(403);
    const other = await newKey("someone else");
    expect((await call(`/api/v2/measurements/${id}`, { method: "DELETE", headers: { Authorization: `Key ${other}` } })).status).toBe(403);
    const del = await call(`/api/v2/measurements/${id}`, { method: "DELETE", headers: { Authorization: `Key ${key}` } });
    expect(del.status).toBe(204);
    expect(await del.text()).toBe("");
    expect((await socket.next("stop")).msm_id).toBe(id);
    expect((await measurement(id)).status).toMatchObject({ id: 4, name: "Stopped" });
    socket.ws.close();
  });

  it("a future periodic measurement is Scheduled, goes Ongoing at start_time and Stopped at stop_time", async () => {
    const p = await enroll({ country_code: "CH" });
    const { socket } = await connect(p);
    const now = Math.floor(Date.now() / 1000);
    const res = await post("/api/v2/measurements/", {
      definitions: [{ type: "ping", af: 4, target: "127.0.0.1", description: "later", interval: 60 }],
      probes: [{ type: "probes", value: String(p.id), requested: 1 }],
      start_time: now + 3600, stop_time: new Date((now + 7200) * 1000).toISOString(),
    }, { Authorization: `Key ${key}` });
    const id = await created(res);
    expect((await socket.next("measure")).assignment).toMatchObject({ start_time: now + 3600, stop_time: now + 7200 });
    expect((await measurement(id)).status.name).toBe("Scheduled");
    const brain = env.BRAIN.getByName("brain");
    const advance = (action: string) => runInDurableObject(brain, (_o, state) => {
      state.storage.sql.exec("UPDATE timers SET at = 0 WHERE msm_id = ? AND action = ?", id, action);
    });
    await advance("start");
    await runDurableObjectAlarm(brain);
    expect((await measurement(id)).status.name).toBe("Ongoing");
    await advance("stop");
    await runDurableObjectAlarm(brain);
    expect((await measurement(id)).status.name).toBe("Stopped");
    expect((await socket.next("stop")).msm_id).toBe(id);
    socket.ws.close();
  });

  it("a one-off is Stopped once its results are due; only a probe still running it is told to stop", async () => {
    const [a, b] = [await enroll({ country_code: "LU" }), await enroll({ country_code: "LU" })];
    const [sa, sb] = [(await connect(a)).socket, (await connect(b)).socket];
    const id = await created(await createPing(key, [{ type: "probes", value: `${a.id},${b.id}`, requested: 2 }]));
    await sa.next("measure");
    await sb.next("measure");
    sa.send({ type: "results", results: [{ seq: 1, result: pingResult(id, a.id) }] });
    await sa.next("ack");
    const brain = env.BRAIN.getByName("brain");
    await runInDurableObject(brain, (_o, state) => { state.storage.sql.exec("UPDATE timers SET at = 0 WHERE msm_id = ?", id); });
    await runDurableObjectAlarm(brain);
    expect((await measurement(id)).status.name).toBe("Stopped");
    expect((await sb.next("stop")).msm_id).toBe(id);
    // a's answer to a later frame comes after anything sent to it when the measurement ended: no stop among it.
    sa.send({ type: "status", free_slots: 4 });
    await sa.next("status_ack");
    expect(sa.has("stop")).toBe(false);
    sa.ws.close();
    sb.ws.close();
  });
});
