// Faults inside workerd: R2 failing for minutes (a failing bucket wrapper put in the controller's place), a flush
// that dies between its PUT and its index, a controller whose storage is lost while R2 keeps its objects, a stop
// while a probe is offline, and a stop that cannot reach the controllers at first. Each case counts what the probe sent against what is stored and charged: 0 lost, 0 stored
// twice, 0 charged twice.
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import type { Controller } from "../../durable-objects/controller.ts";
import { ADMIN, call, connect, createPing, enroll, env, newKey, pingResult, post, ProbeSocket, register, upgrade } from "./harness.ts";

const SHARD = "weur-0";
const controller = () => env.CONTROLLER.getByName(SHARD);

/** Puts `bucket` in place of the controller's R2 binding (its instance, until the wrapper is taken out). */
async function useBucket(bucket: R2Bucket): Promise<void> {
  await runInDurableObject(controller(), (instance: Controller) => {
    (instance as unknown as { env: Record<string, unknown> }).env = { ...(instance as unknown as { env: object }).env, RESULTS: bucket };
  });
}
afterEach(() => useBucket(env.RESULTS));

/** A bucket whose writes fail (`mode` "down"), or succeed and then report failure ("dies-after-put"). */
function faultyBucket(mode: { now: "down" | "dies-after-put" | "ok" }): R2Bucket & { puts: number } {
  const real = env.RESULTS;
  const wrapper = {
    puts: 0,
    async put(...args: Parameters<R2Bucket["put"]>) {
      wrapper.puts++;
      if (mode.now === "down") throw new Error("R2: service unavailable (test)");
      const out = await real.put(...args);
      if (mode.now === "dies-after-put") throw new Error("the flush died after its PUT (test)");
      return out;
    },
    head: (key: string) => real.head(key),
    get: (...args: Parameters<R2Bucket["get"]>) => real.get(...args),
    list: (...args: Parameters<R2Bucket["list"]>) => real.list(...args),
    delete: (...args: Parameters<R2Bucket["delete"]>) => real.delete(...args),
  };
  return wrapper as unknown as R2Bucket & { puts: number };
}

async function periodicOnProbe() {
  const key = await newKey("faults", 1_000_000);
  const probe = await enroll({ country_code: "NL" });
  const { socket } = await connect(probe);
  const res = await createPing(key, [{ type: "probes", value: String(probe.id), requested: 1 }], { interval: 60 });
  const id = ((await res.json()) as { measurements: number[] }).measurements[0]!;
  await socket.next("measure");
  let seq = 0;
  const t0 = Math.floor(Date.now() / 1000);
  const deliver = async (n: number) => {
    const results = Array.from({ length: n }, () => { seq++; return { seq, result: pingResult(id, probe.id, t0 + seq) }; });
    socket.send({ type: "results", results });
    expect((await socket.next("ack")).upto).toBe(seq);
  };
  return { key, id, probe, socket, deliver, sent: () => seq, t0 };
}

async function resultsOf(id: number): Promise<number[]> {
  return ((await (await call(`/api/v2/measurements/${id}/results/`)).json()) as { timestamp: number }[]).map((r) => r.timestamp).sort((a, b) => a - b);
}
async function objectsOf(id: number): Promise<string[]> {
  return runInDurableObject(controller(), (_o, state) => state.storage.sql.exec<{ key: string }>("SELECT key FROM batches WHERE msm_id = ?", id).toArray().map((r) => r.key));
}
async function chargedFor(key: string, id: number): Promise<number> {
  const items = ((await (await call("/api/v2/credits/expense-items/", { headers: { Authorization: `Key ${key}` } })).json()) as { results: { measurement: number; detail: string }[] }).results;
  return items.filter((i) => i.measurement === id).reduce((n, i) => n + Number(/^(\d+) results/.exec(i.detail)![1]), 0);
}
const alarmAt = () => runInDurableObject(controller(), (_o, state) => state.storage.getAlarm());

describe("faults between a controller and R2", () => {
  it("R2 down for minutes: the controller retries by itself, backing off, and stores everything once when R2 is back", async () => {
    const m = await periodicOnProbe();
    await m.deliver(3);
    const mode = { now: "down" as "down" | "dies-after-put" | "ok" };
    const bucket = faultyBucket(mode);
    await useBucket(bucket);
    // Five failed flushes: each arms the next attempt itself, further off each time (5 s, 10 s, 20 s, 40 s, 60 s).
    const waits: number[] = [];
    for (let i = 0; i < 5; i++) {
      await runInDurableObject(controller(), (_o, state) => state.storage.setAlarm(Date.now()));
      await runDurableObjectAlarm(controller());
      const at = await alarmAt();
      expect(at, "the next attempt is armed without new traffic").not.toBeNull();
      waits.push(Math.round((at! - Date.now()) / 5000) * 5);
    }
    expect(waits).toEqual([5, 10, 20, 40, 60]);
    expect(bucket.puts).toBeGreaterThanOrEqual(5);
    // Meanwhile results are readable from the outbox, and more arrive and are acknowledged.
    expect(await resultsOf(m.id)).toEqual([m.t0 + 1, m.t0 + 2, m.t0 + 3]);
    await m.deliver(2);
    mode.now = "ok";
    await runDurableObjectAlarm(controller());
    // No retry is armed any more: what is left is the watch for the connected probe's silence (95 s off).
    expect((await alarmAt())! - Date.now()).toBeGreaterThan(60_000);
    expect(await resultsOf(m.id)).toEqual([1, 2, 3, 4, 5].map((i) => m.t0 + i));
    // Two batches: the first three were sealed by the first failed flush, the next two came after.
    expect((await objectsOf(m.id)).length).toBe(2);
    expect(await chargedFor(m.key, m.id)).toBe(5);
    m.socket.ws.close();
  });

  it("a flush that dies between its PUT and its index: retried under the same key, indexed once, charged once", async () => {
    const m = await periodicOnProbe();
    await m.deliver(4);
    const mode = { now: "dies-after-put" as "down" | "dies-after-put" | "ok" };
    await useBucket(faultyBucket(mode));
    await runInDurableObject(controller(), (_o, state) => state.storage.setAlarm(Date.now()));
    await runDurableObjectAlarm(controller());
    expect(await objectsOf(m.id)).toEqual([]);  // written to R2, not yet indexed
    mode.now = "ok";
    await runDurableObjectAlarm(controller());
    const keys = await objectsOf(m.id);
    expect(keys).toHaveLength(1);
    const listed = await env.RESULTS.list({ prefix: keys[0]!.replace(/\/[^/]+$/, "/") });
    expect(listed.objects.filter((o) => o.key === keys[0])).toHaveLength(1);
    expect(await resultsOf(m.id)).toEqual([1, 2, 3, 4].map((i) => m.t0 + i));
    expect(await chargedFor(m.key, m.id)).toBe(4);
    m.socket.ws.close();
  });

  it("a controller whose storage is lost while R2 keeps its objects writes new batches under new keys, losing nothing", async () => {
    // Every table emptied and every id sequence reset, as a new storage would be; R2 keeps its objects.
    const wipe = () => runInDurableObject(controller(), (_o, state) => {
      const names = state.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%' AND name NOT LIKE '\\_cf%' ESCAPE '\\' AND name NOT IN ('_migrations', '_usage')").toArray().map((t) => t.name);
      for (const t of names) state.storage.sql.exec(`DELETE FROM "${t}"`);
      state.storage.sql.exec("DELETE FROM sqlite_sequence");
    });
    await wipe();
    const m = await periodicOnProbe();
    const flushed = async () => {
      await post(`/admin/controllers/${SHARD}/flush`, {}, { Authorization: `Bearer ${ADMIN}` });
      return runInDurableObject(controller(), (_o, state) => state.storage.sql.exec<{ key: string }>("SELECT DISTINCT key FROM batches").toArray().map((r) => r.key));
    };
    // Outbox ids start at 1: the first batch covers ids 1–1.
    await m.deliver(1);
    const [first] = await flushed();
    expect(first).toMatch(/\/000000000001-000000000001-[0-9a-f]{8}\.jsonl$/);
    const bytes = await (await env.RESULTS.get(first!))!.text();
    // The storage is lost; the probe goes on: a built-in result of the same hour, which takes outbox id 1 again.
    await wipe();
    m.socket.send({ type: "results", results: [{ seq: m.sent() + 1, result: { ...pingResult(1001, m.probe.id, m.t0 + 1), msm_id: 1001 } }] });
    expect((await m.socket.next("ack")).upto).toBe(m.sent() + 1);
    const [second] = await flushed();
    expect(second).toMatch(/\/000000000001-000000000001-[0-9a-f]{8}\.jsonl$/);
    expect(second).not.toBe(first);
    expect(await (await env.RESULTS.get(first!))!.text()).toBe(bytes);
    expect(await (await env.RESULTS.get(second!))!.text()).toContain(`"msm_id":1001,`);
    m.socket.ws.close();
  });
});

describe("stops that cannot reach everyone at once", () => {
  const brain = () => env.BRAIN.getByName("brain");

  it("a stop while the probe is offline: it is told when it reconnects and says it still schedules the measurement", async () => {
    const key = await newKey("stopper");
    const probe = await enroll({ country_code: "NL" });
    const first = await connect(probe);
    const id = ((await (await createPing(key, [{ type: "probes", value: String(probe.id), requested: 1 }], { interval: 60 })).json()) as { measurements: number[] }).measurements[0]!;
    await first.socket.next("measure");
    first.socket.ws.close();
    expect((await call(`/api/v2/measurements/${id}/`, { method: "DELETE", headers: { Authorization: `Key ${key}` } })).status).toBe(204);
    // Back, and still running it by its own schedule (its hello says so).
    const reg = await register(probe);
    const res = await upgrade(reg.websocket_url, reg.token);
    res.webSocket!.accept();
    const again = new ProbeSocket(res.webSocket!);
    await again.next("welcome");
    again.send({ type: "hello", agent: "test", slots: 4, free_slots: 4, running: [id, 424242] });
    expect(await again.next("stop")).toEqual({ type: "stop", msm_id: id });
    expect(again.has("measure")).toBe(false);
    again.ws.close();
  });

  it("a stop whose first attempt fails halfway is retried until the reservation is freed and every controller knows", async () => {
    const key = await newKey("stopper", 1000);
    const probe = await enroll({ country_code: "NL" });
    const { socket } = await connect(probe);
    const id = ((await (await createPing(key, [{ type: "probes", value: String(probe.id), requested: 1 }], { interval: 3600 })).json()) as { measurements: number[] }).measurements[0]!;
    await socket.next("measure");
    const reserved = async () => ((await (await call("/api/v2/credits/", { headers: { Authorization: `Key ${key}` } })).json()) as { reserved: number }).reserved;
    expect(await reserved()).toBeGreaterThan(0);
    // The controllers cannot be reached (and so neither the stop): the brain's namespace of them fails every call.
    const failing = {
      idFromName: (name: string) => env.CONTROLLER.idFromName(name),
      get: () => new Proxy({}, { get: () => () => Promise.reject(new Error("controller unreachable (test)")) }),
      getByName: () => new Proxy({}, { get: () => () => Promise.reject(new Error("controller unreachable (test)")) }),
    };
    const swapped = await runInDurableObject(brain(), (instance) => {
      const inst = instance as unknown as { env: Record<string, unknown> };
      const real = inst.env.CONTROLLER;
      inst.env = { ...inst.env, CONTROLLER: failing };
      return real !== undefined;
    });
    expect(swapped).toBe(true);
    expect((await call(`/api/v2/measurements/${id}/`, { method: "DELETE", headers: { Authorization: `Key ${key}` } })).status).toBe(204);
    expect(socket.has("stop")).toBe(false);
    expect(await reserved()).toBe(0);  // the ledger part went through
    const timers = () => runInDurableObject(brain(), (_o, state) => state.storage.sql.exec<{ action: string }>("SELECT action FROM timers WHERE msm_id = ?", id).toArray().map((t) => t.action));
    expect(await timers()).toEqual(["settle"]);
    // The controllers are back; the settle timer comes due.
    await runInDurableObject(brain(), (instance, state) => {
      const inst = instance as unknown as { env: Record<string, unknown> };
      inst.env = { ...inst.env, CONTROLLER: env.CONTROLLER };
      state.storage.sql.exec("UPDATE timers SET at = 0 WHERE msm_id = ?", id);
    });
    await runDurableObjectAlarm(brain());
    expect(await socket.next("stop")).toEqual({ type: "stop", msm_id: id });
    expect(await timers()).toEqual([]);
    socket.ws.close();
  });
});

describe("a probe that registers onto another shard with results not yet acknowledged", () => {
  it("brings its assignments and mark along: no result lost, none stored twice, later stops reach it there", async () => {
    const key = await newKey("mover");
    const probe = await enroll({ country_code: "NL" });
    const { socket, reg } = await connect(probe);
    expect(reg.shard).toBe(SHARD);
    const id = ((await (await createPing(key, [{ type: "probes", value: String(probe.id), requested: 1 }], { interval: 60 })).json()) as { measurements: number[] }).measurements[0]!;
    await socket.next("measure");
    const t0 = Math.floor(Date.now() / 1000);
    const result = (seq: number) => ({ seq, result: pingResult(id, probe.id, t0 + seq) });
    socket.send({ type: "results", results: [result(1), result(2)] });
    expect((await socket.next("ack")).upto).toBe(2);
    // Result 3 is stored, but its ack never reaches the probe: the probe goes, still holding it.
    socket.send({ type: "results", results: [result(3)] });
    await socket.next("ack");
    socket.ws.close();
    await new Promise((r) => setTimeout(r, 100));
    // Its shard is full now: it registers onto the next nearest one.
    const registry = env.REGISTRY.getByName("registry");
    await registry.reportLoad(SHARD, 10, 10);
    try {
      const moved = await register(probe);
      expect(moved.shard).not.toBe(SHARD);
      const res = await upgrade(moved.websocket_url, moved.token);
      expect(res.status).toBe(101);
      res.webSocket!.accept();
      const there = new ProbeSocket(res.webSocket!);
      await there.next("welcome");
      there.send({ type: "hello", agent: "test", slots: 4, free_slots: 4, running: [id] });
      await there.next("status_ack");
      // It resends what it holds (3) and goes on (4): 3 is not stored again, 4 is taken for the assignment weur-0 gave.
      there.send({ type: "results", results: [result(3), result(4)] });
      expect((await there.next("ack")).upto).toBe(4);
      expect(there.has("reject")).toBe(false);
      const stored = (shard: string) => runInDurableObject(env.CONTROLLER.getByName(shard), (_o, state) =>
        state.storage.sql.exec<{ n: number | null }>("SELECT SUM(count) AS n FROM outbox").one().n ?? 0);
      expect(await stored(SHARD)).toBe(3);
      expect(await stored(moved.shard)).toBe(1);
      expect((await (await call(`/api/v2/measurements/${id}/results/`)).json() as unknown[]).length).toBe(4);
      // The stop goes where the probe is now.
      expect((await call(`/api/v2/measurements/${id}/`, { method: "DELETE", headers: { Authorization: `Key ${key}` } })).status).toBe(204);
      expect(await there.next("stop")).toEqual({ type: "stop", msm_id: id });
      there.ws.close();
    } finally {
      await registry.reportLoad(SHARD, 0, 20_000);
    }
  });
});
