// Group commit (durable-objects/commits.ts) and probes' marks kept in memory (marks.ts): frames of many probes share
// one transaction and are acknowledged only once it is durable; a resend or a second answer inside a window is
// caught as after a commit; and the marks survive the controller losing its memory, before and after a flush.
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Controller } from "../../durable-objects/controller.ts";
import type { ProbeMarks } from "../../durable-objects/marks.ts";
import { BUILTIN_ANCHOR_PING } from "../../protocol/builtins.ts";
import { ADMIN, call, connect, createPing, enroll, env, newKey, pingResult, post } from "./harness.ts";

const SHARD = "weur-0";
const controller = () => env.CONTROLLER.getByName(SHARD);
const rowsWritten = () => runInDurableObject(controller(), (o: Controller) => o.usage().rows_written);
/** Results of `msm` in the controller's outbox (stored, not yet in R2). */
const pending = (msm: number) => runInDurableObject(controller(), (_o, state) =>
  state.storage.sql.exec<{ body: string }>("SELECT body FROM outbox").toArray()
    .flatMap((r) => r.body.split("\n").filter(Boolean).map((l) => JSON.parse(l) as { msm_id: number; prb_id: number; timestamp: number }))
    .filter((r) => r.msm_id === msm));
/** What a restarted controller knows: its marks reloaded from storage (everything else it keeps is in SQLite). */
const forgetMarks = () => runInDurableObject(controller(), (o) => { (o as unknown as { marks: ProbeMarks }).marks.reset(); });
const flush = () => post(`/admin/controllers/${SHARD}/flush`, {}, { Authorization: `Bearer ${ADMIN}` });

describe("group commit", () => {
  it("stores the frames of many probes arriving together in one transaction, each acknowledged once it is stored", async () => {
    const probes = await Promise.all(Array.from({ length: 20 }, () => enroll({ country_code: "NL" })));
    const sockets = await Promise.all(probes.map(async (p) => ({ p, socket: (await connect(p)).socket })));
    const before = await rowsWritten();
    const now = Math.floor(Date.now() / 1000);
    // Each probe sends one frame of one built-in result, as a trickling fleet does, all within one window.
    await Promise.all(sockets.map(async ({ p, socket }) => {
      socket.send({ type: "results", results: [{ seq: 1, result: pingResult(BUILTIN_ANCHOR_PING, p.id, now) }] });
      expect((await socket.next("ack")).upto).toBe(1);
      // Acknowledged: it is in storage already.
      expect((await pending(BUILTIN_ANCHOR_PING)).some((r) => r.prb_id === p.id)).toBe(true);
    }));
    const rows = (await rowsWritten()) - before;
    // Frame by frame this was ~3 rows per frame (60); one window writes the outbox row (and its counter).
    expect(rows).toBeLessThanOrEqual(6);
    expect((await pending(BUILTIN_ANCHOR_PING)).filter((r) => probes.some((p) => p.id === r.prb_id))).toHaveLength(20);
    // Once in R2 (built-ins are indexed together, one entry per batch), the measurement's results are all there.
    expect((await flush()).status).toBe(200);
    const read = (await (await call(`/api/v2/measurements/${BUILTIN_ANCHOR_PING}/results/?start=${now}`)).json()) as { prb_id: number; msm_id: number }[];
    expect(read.filter((r) => probes.some((p) => p.id === r.prb_id)).map((r) => r.msm_id)).toEqual(Array(20).fill(BUILTIN_ANCHOR_PING));
  });

  it("catches a resend and a second answer to a one-off inside one window", async () => {
    const key = await newKey("commits");
    const probe = await enroll({ country_code: "NL" });
    const { socket } = await connect(probe);
    const id = ((await (await createPing(key, [{ type: "probes", value: String(probe.id), requested: 1 }])).json()) as { measurements: number[] }).measurements[0]!;
    await socket.next("measure");
    const now = Math.floor(Date.now() / 1000);
    // Sent back to back, without waiting for acks: all three land in the same window.
    socket.send({ type: "results", results: [{ seq: 1, result: pingResult(id, probe.id, now) }] });
    socket.send({ type: "results", results: [{ seq: 1, result: pingResult(id, probe.id, now) }] });
    socket.send({ type: "results", results: [{ seq: 2, result: pingResult(id, probe.id, now + 1) }] });
    const refused = await socket.next("reject");
    expect(refused).toMatchObject({ seq: 2, reason: expect.stringContaining("one-off and this probe's result is already in") });
    const acks = [(await socket.next("ack")).upto, (await socket.next("ack")).upto, (await socket.next("ack")).upto];
    expect(acks).toEqual([1, 1, 2]);
    expect((await pending(id)).map((r) => r.timestamp)).toEqual([now]);
  });

  it("keeps probes' marks across a restart, from the outbox rows and, once flushed, from their snapshot", async () => {
    const key = await newKey("marks");
    const probe = await enroll({ country_code: "NL" });
    const { socket } = await connect(probe);
    const id = ((await (await createPing(key, [{ type: "probes", value: String(probe.id), requested: 1 }], { interval: 60 })).json()) as { measurements: number[] }).measurements[0]!;
    await socket.next("measure");
    const t0 = Math.floor(Date.now() / 1000);
    const send = async (from: number, to: number) => {
      const results = Array.from({ length: to - from + 1 }, (_, i) => ({ seq: from + i, result: pingResult(id, probe.id, t0 + from + i) }));
      socket.send({ type: "results", results });
      expect((await socket.next("ack")).upto).toBe(to);
    };
    // Counted in storage (R2 batches and the outbox), not through the API, which would hide a copy stored twice.
    const stored = async () => {
      const inR2 = await runInDurableObject(controller(), (_o, state) =>
        state.storage.sql.exec<{ n: number | null }>("SELECT SUM(count) AS n FROM batches WHERE msm_id = ?", id).one().n ?? 0);
      return { inR2, pending: (await pending(id)).map((r) => r.timestamp - t0) };
    };

    await send(1, 2);
    await forgetMarks();
    await send(1, 2);  // a resend after the restart: acknowledged, not stored again
    expect(await stored()).toEqual({ inR2: 0, pending: [1, 2] });

    expect((await flush()).status).toBe(200);  // the outbox rows carrying the marks are gone; the snapshot has them
    await forgetMarks();
    await send(1, 3);
    expect(await stored()).toEqual({ inR2: 2, pending: [3] });
  });
});
