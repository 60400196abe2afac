// Atlas's measurement tagging, as cousteau's MeasurementTagger drives it: an account's own tags on measurements it
// can see, the results of all it tagged so, and stopping its own tagged measurements together.
import { describe, expect, it } from "vitest";
import { call, connect, createPing, enroll, errorOf, newKey, pingResult, post } from "./harness.ts";

const del = (path: string, key: string) => call(path, { method: "DELETE", headers: { Authorization: `Key ${key}` } });
const status = async (id: number) => ((await (await call(`/api/v2/measurements/${id}/`)).json()) as { status: { name: string } }).status.name;

describe("measurement tags", () => {
  it("tag what you can see, read all their results at once, untag, and stop your own tagged ones together", async () => {
    const alice = await newKey("alice"), bob = await newKey("bob");
    const probe = await enroll({ country_code: "PT" });
    const { socket } = await connect(probe, { slots: 8 });
    const make = async (key: string, extra: Record<string, unknown>) =>
      ((await (await createPing(key, [{ type: "probes", value: String(probe.id), requested: 1 }], { interval: 3600, ...extra })).json()) as { measurements: number[] }).measurements[0]!;
    const mine = await make(alice, {});
    const secret = await make(alice, { is_public: false });
    const bobs = await make(bob, {});
    for (let i = 0; i < 3; i++) await socket.next("measure");
    const t = Math.floor(Date.now() / 1000) - 30;
    socket.send({ type: "results", results: [{ seq: 1, result: pingResult(mine, probe.id, t) }, { seq: 2, result: pingResult(bobs, probe.id, t + 1) }, { seq: 3, result: pingResult(secret, probe.id, t + 2) }] });
    expect((await socket.next("ack")).upto).toBe(3);

    const tag = (key: string, id: number, value: unknown) => post(`/api/v2/measurements/${id}/tags/`, { tag: value }, { Authorization: `Key ${key}` });
    expect((await tag(alice, mine, "roots")).status).toBe(201);
    expect((await tag(alice, bobs, "roots")).status).toBe(201);  // someone else's public measurement
    expect((await tag(alice, mine, "roots")).status).toBe(201);  // again: still once
    expect((await tag(bob, secret, "peek")).status).toBe(404);  // another account's private one is not there for bob
    const bad = await tag(alice, mine, "Not A Tag!");
    expect(bad.status).toBe(400);
    expect((await errorOf(bad)).errors[0]!.source).toEqual({ pointer: "/tag" });

    const results = async (key?: string) => {
      const res = await call("/api/v2/measurements/tags/roots/results/", key ? { headers: { Authorization: `Key ${key}` } } : {});
      return res.status === 200 ? ((await res.json()) as { msm_id: number; timestamp: number }[]).map((r) => r.msm_id) : res.status;
    };
    expect(await results(alice)).toEqual([mine, bobs]);
    expect(await results(bob)).toEqual([]);  // tags are an account's own
    // The measurement object shows the caller's own tags (as cousteau's Measurement reads them), nobody else's.
    const tagsSeen = async (id: number, key?: string) =>
      ((await (await call(`/api/v2/measurements/${id}/`, key ? { headers: { Authorization: `Key ${key}` } } : {})).json()) as { tags: string[] }).tags;
    expect(await tagsSeen(bobs, alice)).toEqual(["roots"]);
    expect(await tagsSeen(bobs, bob)).toEqual([]);
    expect(await tagsSeen(bobs)).toEqual([]);
    expect(await results()).toBe(403);

    expect((await del(`/api/v2/measurements/${bobs}/tags/roots/`, alice)).status).toBe(204);
    expect((await del(`/api/v2/measurements/${bobs}/tags/roots/`, alice)).status).toBe(404);
    expect(await results(alice)).toEqual([mine]);

    // Stopping by tag stops the account's own measurements only.
    expect((await tag(alice, bobs, "roots")).status).toBe(201);
    const stopped = await post("/api/v2/measurements/my-tags/roots/stop/", {}, { Authorization: `Key ${alice}` });
    expect(await stopped.json()).toEqual({ stopped: [mine] });
    expect(await status(mine)).toBe("Stopped");
    expect(await status(bobs)).not.toBe("Stopped");
    socket.ws.close();
  });
});
