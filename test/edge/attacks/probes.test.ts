// Attacks by a rogue probe, which holds a real key and speaks the real protocol: results it was not asked for or
// could not have measured (which other people pay for), floods, lies in its hello, reports on releases it was never
// offered, reused assignment tokens, and lock-outs of other probes by asking for challenges in their name.
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, challenge, connect, createPing, enroll, env, newKey, pingResult, post, register, sign, type TestProbe, upgrade } from "../harness.ts";
import { SUBPROTOCOL } from "../../../protocol/index.ts";
import { expense, stored } from "./kit.ts";

/** A probe in NL (shard weur-0) holding one measurement of a fresh account. */
async function holding(extra: Record<string, unknown> = {}) {
  const key = await newKey("payer");
  const probe = await enroll({ country_code: "NL" });
  const { socket } = await connect(probe);
  const res = await createPing(key, [{ type: "probes", value: String(probe.id), requested: 1 }], { target: "193.0.14.129", ...extra });
  expect(res.status).toBe(201);
  const id = ((await res.json()) as { measurements: number[] }).measurements[0]!;
  const measure = await socket.next("measure");
  let seq = 0;
  /** Sends results (one per timestamp, or as given) and returns the ack and the rejects, in seq order. */
  const send = async (results: unknown[]) => {
    socket.send({ type: "results", results: results.map((result) => ({ seq: ++seq, result })) });
    const ack = await socket.next("ack");
    const rejects: { seq: number | null; reason: string }[] = [];
    while (socket.has("reject")) rejects.push(await socket.next("reject"));
    return { ack: ack.upto, rejects };
  };
  return { key, probe, socket, id, start: measure.assignment.start_time, send };
}

const now = () => Math.floor(Date.now() / 1000);

describe("attacks by a rogue probe on results", () => {
  it("attack: a second (third, …) result for a one-off, which its owner would pay for again — refused per result, stored and charged once", async () => {
    const { key, probe, id, send, socket } = await holding();
    const out = await send([pingResult(id, probe.id), pingResult(id, probe.id, now() + 1), pingResult(id, probe.id, now() + 2)]);
    expect(out.ack).toBe(3);
    expect(out.rejects.map((r) => r.seq)).toEqual([2, 3]);
    expect(out.rejects[0]!.reason).toContain("one-off");
    expect(await stored(id)).toHaveLength(1);
    expect((await expense(key)).filter((e) => e.measurement === id).map((e) => e.amount)).toEqual([6]);
    socket.ws.close();
  });

  it("attack: a periodic measurement's results faster than its interval allows — refused beyond the runs since its start (+2)", async () => {
    const { probe, id, send, socket } = await holding({ interval: 3600 });
    const out = await send(Array.from({ length: 10 }, (_, i) => pingResult(id, probe.id, now() + i)));
    // Started just now, every 3,600 s: one run, plus the stated tolerance of two.
    expect(out.rejects.map((r) => r.seq)).toEqual([4, 5, 6, 7, 8, 9, 10]);
    expect(out.rejects[0]!.reason).toMatch(/runs every 3600 s .* at most 3 results/);
    expect(await stored(id)).toHaveLength(3);
    socket.ws.close();
  });

  it.each([
    ["from the future", (start: number) => now() + 3600],
    ["from before the measurement started", (start: number) => start - 3600],
    ["a day old", () => now() - 86_400],
    ["not a whole unix time", () => 1.5],
  ])("attack: a result %s — refused, nothing stored", async (_what, ts) => {
    const { probe, id, send, socket, start } = await holding({ interval: 60 });
    const out = await send([pingResult(id, probe.id, ts(start))]);
    expect(out.rejects).toHaveLength(1);
    expect(out.rejects[0]!.seq).toBe(1);
    expect(await stored(id)).toHaveLength(0);
    socket.ws.close();
  });

  it("attack: results after the measurement was stopped (measured after the stop) — refused and not charged", async () => {
    const { key, probe, id, send, socket } = await holding({ interval: 60 });
    expect((await send([pingResult(id, probe.id)])).rejects).toEqual([]);
    expect((await call(`/api/v2/measurements/${id}/`, { method: "DELETE", headers: { Authorization: `Key ${key}` } })).status).toBe(204);
    await socket.next("stop");
    // As if the stop had been an hour ago (beyond the stated clock skew), and the probe reports a run of now.
    await runInDurableObject(env.CONTROLLER.getByName("weur-0"), (_o, state) => {
      state.storage.sql.exec("UPDATE assignments SET stop_time = stop_time - 3600 WHERE msm_id = ?", id);
    });
    const out = await send([pingResult(id, probe.id, now())]);
    expect(out.rejects[0]!.reason).toMatch(/was stopped/);
    expect(await stored(id)).toHaveLength(1);
    socket.ws.close();
  });

  it("attack: results for a measurement it was never given, or in another probe's name — refused, nothing stored", async () => {
    const victim = await holding({ interval: 60 });
    const rogue = await holding({ interval: 60 });
    const out = await rogue.send([pingResult(victim.id, rogue.probe.id), pingResult(rogue.id, victim.probe.id), pingResult(99_999_999, rogue.probe.id)]);
    expect(out.rejects.map((r) => r.reason)).toEqual([
      `measurement ${victim.id} was not given to this probe`, `prb_id ${victim.probe.id} is not this probe (${rogue.probe.id})`, "measurement 99999999 was not given to this probe",
    ]);
    expect(await stored(victim.id)).toHaveLength(0);
    victim.socket.ws.close();
    rogue.socket.ws.close();
  });

  it("attack: built-in results in a flood (free, but stored and streamed) — one per id per 5 s, none older than a week or in the future", async () => {
    const { probe, send, socket } = await holding();
    const t = now();
    const builtin = (msm: number, ts: number) => ({ ...pingResult(msm, probe.id, ts), msm_id: msm });
    const out = await send([builtin(1001, t), builtin(1001, t), builtin(1001, t + 2), builtin(1001, t + 5), builtin(1002, t), builtin(1003, t - 8 * 86_400), builtin(5001, t), builtin(1004, t + 3600)]);
    expect(out.rejects.map((r) => r.seq)).toEqual([2, 3, 6, 7, 8]);
    expect(out.rejects.map((r) => r.reason)).toEqual([
      expect.stringContaining("at most every 5 s"), expect.stringContaining("at most every 5 s"), expect.stringContaining("more than 604800 s old"),
      "measurement 5001 is a traceroute, not a ping", expect.stringContaining("in the future"),
    ]);
    expect((await stored(1001)).filter((r) => r.prb_id === probe.id).map((r) => r.timestamp)).toEqual([t, t + 5]);
    socket.ws.close();
  });

  it("attack: one malformed result among valid ones, to get the whole frame refused — only it is refused", async () => {
    const { probe, id, send, socket } = await holding({ interval: 60 });
    const out = await send([pingResult(id, probe.id), { ...pingResult(id, probe.id), rcvd: "lots" }, pingResult(id, probe.id, now() + 1)]);
    expect(out.ack).toBe(3);
    expect(out.rejects).toEqual([{ type: "reject", seq: 2, reason: expect.stringContaining("invalid result at /rcvd") }]);
    expect(await stored(id)).toHaveLength(2);
    socket.ws.close();
  });

  it("attack: more results a minute than a probe's allowance — stored up to it, the rest not acknowledged, told when to send again", async () => {
    // The allowance is per calendar minute: start early in one, so the whole test runs inside it.
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 40_000) await new Promise((r) => setTimeout(r, 60_000 - intoMinute + 100));
    const { probe, id, socket } = await holding({ interval: 60 });
    // PROBE_RESULTS_PER_MINUTE is 200 here. Results it was not given count against the allowance too.
    socket.send({ type: "results", results: Array.from({ length: 300 }, (_, i) => ({ seq: i + 1, result: pingResult(99_999_999, probe.id) })) });
    expect((await socket.next("ack")).upto).toBe(200);
    let limited = await socket.next("reject");
    while (limited.seq !== null) limited = await socket.next("reject");
    expect(limited.reason).toMatch(/allowance of 200 results/);
    expect(limited.retry_after).toBeGreaterThan(0);
    expect(limited.retry_after).toBeLessThanOrEqual(60);
    // Within the same minute nothing more is taken, not even a result of its own measurement.
    socket.send({ type: "results", results: [{ seq: 201, result: pingResult(id, probe.id) }] });
    expect((await socket.next("ack")).upto).toBe(200);
    expect(await stored(id)).toHaveLength(0);
    socket.ws.close();
  }, 90_000);
});

describe("attacks by a rogue probe on the controller", () => {
  it("attack: a hello claiming 100,000 slots (to be given all the work) — refused, the probe gets no work", async () => {
    const probe = await enroll({ country_code: "NL" });
    const reg = await register(probe);
    const res = await upgrade(reg.websocket_url, reg.token);
    res.webSocket!.accept();
    const inbox: { type: string; reason?: string }[] = [];
    res.webSocket!.addEventListener("message", (e) => inbox.push(JSON.parse(String(e.data))));
    res.webSocket!.send(JSON.stringify({ type: "hello", agent: "rogue", slots: 100_000, free_slots: 100_000, running: [] }));
    res.webSocket!.send(JSON.stringify({ type: "hello", agent: "rogue", slots: 4, free_slots: 400, running: [] }));
    await new Promise((r) => setTimeout(r, 300));
    expect(inbox.filter((m) => m.type === "reject").map((m) => m.reason)).toEqual([expect.stringContaining("/slots"), expect.stringContaining("/free_slots")]);
    const p = (await (await call(`/api/v2/probes/${probe.id}/`)).json()) as { status: { id: number } };
    expect(p.status.id).not.toBe(1);  // never counted as connected: no hello was taken
    res.webSocket!.close();
  });

  it("attack: a release_status for a rollout it was never offered (to halt, or pass, a rollout) — refused, the brain is not told", async () => {
    const { socket } = await connect(await enroll({ country_code: "NL" }));
    socket.send({ type: "release_status", rollout: 1, version: "9.9.9", state: "rolled_back", detail: "sabotage" });
    expect((await socket.next("reject")).reason).toMatch(/no such release was offered to this probe/);
    const rollouts = (await (await call("/admin/rollouts", { headers: { Authorization: "Bearer test-admin-token" } })).json()) as { failures?: unknown[] } | null;
    expect(JSON.stringify(rollouts)).not.toContain("sabotage");
    socket.ws.close();
  });

  it("attack: an assignment token used a second time (seen in a log, in transit) to push the probe off its controller — 403", async () => {
    const probe = await enroll({ country_code: "NL" });
    const reg = await register(probe);
    const first = await upgrade(reg.websocket_url, reg.token);
    expect(first.status).toBe(101);
    first.webSocket!.accept();
    const again = await upgrade(reg.websocket_url, reg.token);
    expect(again.status).toBe(403);
    expect(await again.text()).toContain("already used");
    let closed = false;
    first.webSocket!.addEventListener("close", () => { closed = true; });
    await new Promise((r) => setTimeout(r, 200));
    expect(closed).toBe(false);
    first.webSocket!.close();
  });

  it("a token whose socket is gone opens one again while the probe has none (it gave up waiting for the 101), never beside one", async () => {
    const probe = await enroll({ country_code: "NL" });
    const reg = await register(probe);
    const first = await upgrade(reg.websocket_url, reg.token);
    expect(first.status).toBe(101);
    first.webSocket!.accept();
    first.webSocket!.close();
    // The controller sees the socket go; the same token then opens the probe's one socket again.
    let again: Response | null = null;
    for (let i = 0; i < 50; i++) {
      again = await upgrade(reg.websocket_url, reg.token);
      if (again.status === 101) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(again!.status).toBe(101);
    again!.webSocket!.accept();
    // While that one is open, the token opens nothing more.
    const third = await upgrade(reg.websocket_url, reg.token);
    expect(third.status).toBe(403);
    expect(await third.text()).toContain("already used");
    again!.webSocket!.close();
  });

  it("attack: challenges asked for in a probe's name, again and again, to lock it out — it still registers", async () => {
    const victim: TestProbe = await enroll({ country_code: "NL" });
    const { nonce } = (await (await challenge(victim.id)).json()) as { nonce: string };
    await Promise.all(Array.from({ length: 50 }, () => challenge(victim.id)));
    const res = await post("/probe/v1/register", { probe_id: victim.id, proof: await sign(victim.keys.privateKey, { probe_id: victim.id, nonce }) });
    expect(res.status).toBe(200);
    // And the proof it sent works once only.
    const replay = await post("/probe/v1/register", { probe_id: victim.id, proof: await sign(victim.keys.privateKey, { probe_id: victim.id, nonce }) });
    expect(replay.status).toBe(403);
  });

  it("attack: a socket without the sub-protocol, or a token for another shard — refused before the controller", async () => {
    const probe = await enroll({ country_code: "NL" });
    const reg = await register(probe);
    expect((await upgrade(reg.websocket_url, reg.token, "evil.v9")).status).toBe(400);
    const other = reg.websocket_url.replace(/controllers\/[^/]+$/, "controllers/wnam-0");
    expect((await upgrade(other, reg.token, SUBPROTOCOL)).status).toBe(403);
  });
});
