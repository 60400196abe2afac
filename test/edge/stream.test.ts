// The result stream (/stream/, RIPE Atlas streaming protocol) inside workerd: subscriptions and their filters,
// every stored result delivered once, the backlog, probe status events, and clear errors.
import { describe, expect, it } from "vitest";
import { connect, createPing, enroll, newKey, pingResult, subscriber } from "./harness.ts";

async function measurementWithProbe(country: string) {
  const key = await newKey("streamer");
  const probe = await enroll({ country_code: country });
  const { socket } = await connect(probe);
  const res = await createPing(key, [{ type: "probes", value: String(probe.id), requested: 1 }], { interval: 3600 });
  const id = ((await res.json()) as { measurements: number[] }).measurements[0]!;
  await socket.next("measure");
  let seq = 0;
  const deliver = async (timestamps: number[]) => {
    socket.send({ type: "results", results: timestamps.map((t) => ({ seq: ++seq, result: pingResult(id, probe.id, t) })) });
    await socket.next("ack");
  };
  return { id, probe, socket, deliver };
}

describe("the result stream", () => {
  it("delivers each stored result of a subscribed measurement once, to every subscriber, until unsubscribed", async () => {
    const { id, deliver } = await measurementWithProbe("NL");
    const a = await subscriber(), b = await subscriber();
    a.send(["atlas_subscribe", { streamType: "result", msm: id }]);
    b.send(["atlas_subscribe", { stream_type: "result", msm: String(id), type: "ping" }]);
    expect(await a.next("atlas_subscribed")).toEqual({ streamType: "result", msm: id });
    await b.next("atlas_subscribed");

    await deliver([1_795_000_001, 1_795_000_002]);
    await deliver([1_795_000_003]);
    for (const s of [a, b]) {
      const got = (await s.drain("atlas_result", 500)) as { msm_id: number; timestamp: number; stored_timestamp: number }[];
      expect(got.map((r) => r.timestamp)).toEqual([1_795_000_001, 1_795_000_002, 1_795_000_003]);
      expect(got.every((r) => r.msm_id === id && r.stored_timestamp > 0)).toBe(true);
    }

    a.send(["atlas_unsubscribe", { streamType: "result", msm: id }]);
    await a.next("atlas_unsubscribed");
    await deliver([1_795_000_004]);
    expect(await a.drain("atlas_result")).toEqual([]);
    expect(((await b.drain("atlas_result")) as { timestamp: number }[]).map((r) => r.timestamp)).toEqual([1_795_000_004]);
  });

  it("filters by probe and type, and sends other measurements' results to nobody who did not ask", async () => {
    const one = await measurementWithProbe("DE");
    const two = await measurementWithProbe("DE");
    const byProbe = await subscriber(), byType = await subscriber();
    byProbe.send(["atlas_subscribe", { streamType: "result", prb: two.probe.id }]);
    byType.send(["atlas_subscribe", { streamType: "result", type: "traceroute" }]);
    await byProbe.next("atlas_subscribed");
    await byType.next("atlas_subscribed");
    await one.deliver([1_795_000_010]);
    await two.deliver([1_795_000_011]);
    expect(((await byProbe.drain("atlas_result")) as { prb_id: number }[]).map((r) => r.prb_id)).toEqual([two.probe.id]);
    expect(await byType.drain("atlas_result")).toEqual([]);
  });

  it("replays the recent backlog on sendBacklog, then goes on live without sending a result twice", async () => {
    const { id, deliver } = await measurementWithProbe("FR");
    const now = Math.floor(Date.now() / 1000);
    // The backlog is the last hour's results: one from two hours ago is not in it.
    await deliver([now - 7200, now - 20, now - 10]);
    const s = await subscriber();
    s.send(["atlas_subscribe", { streamType: "result", msm: id, sendBacklog: true }]);
    await s.next("atlas_subscribed");
    await deliver([now]);
    const got = (await s.drain("atlas_result", 600)) as { timestamp: number }[];
    expect(got.map((r) => r.timestamp).sort()).toEqual([now - 20, now - 10, now]);
  });

  it("carries public measurements only: a private one's results reach no subscriber, and it cannot be subscribed to", async () => {
    const key = await newKey("private-streamer");
    const probe = await enroll({ country_code: "ES" });
    const { socket } = await connect(probe);
    const res = await createPing(key, [{ type: "probes", value: String(probe.id), requested: 1 }], { interval: 3600, is_public: false, target: "192.0.2.200" });
    const id = ((await res.json()) as { measurements: number[] }).measurements[0]!;
    await socket.next("measure");
    const everything = await subscriber(), byProbe = await subscriber(), direct = await subscriber();
    everything.send(["atlas_subscribe", { streamType: "result" }]);
    byProbe.send(["atlas_subscribe", { streamType: "result", prb: probe.id }]);
    await everything.next("atlas_subscribed");
    await byProbe.next("atlas_subscribed");
    direct.send(["atlas_subscribe", { streamType: "result", msm: id }]);
    expect(await direct.next("atlas_error")).toContain("not public");
    socket.send({ type: "results", results: [{ seq: 1, result: pingResult(id, probe.id, 1_795_300_000) }] });
    await socket.next("ack");
    expect(await everything.drain("atlas_result", 500)).toEqual([]);
    expect(await byProbe.drain("atlas_result", 100)).toEqual([]);
  });

  it("streams probe connections and disconnections", async () => {
    const s = await subscriber();
    s.send(["atlas_subscribe", { streamType: "probestatus" }]);
    await s.next("atlas_subscribed");
    const probe = await enroll({ country_code: "BE", asn_v4: 64501 });
    const { socket } = await connect(probe);
    expect(await s.next("atlas_probestatus")).toMatchObject({ prb_id: probe.id, event: "connect", country_code: "BE", asn: 64501 });
    socket.ws.close();
    expect(await s.next("atlas_probestatus")).toMatchObject({ prb_id: probe.id, event: "disconnect" });
  });

  it("disconnects a subscriber that asks for more than its share a minute, saying so, and serves the others on", async () => {
    const busy = await measurementWithProbe("IT");
    const quiet = await measurementWithProbe("IT");
    const greedy = await subscriber(), modest = await subscriber();
    greedy.send(["atlas_subscribe", { streamType: "result" }]);  // everything
    modest.send(["atlas_subscribe", { streamType: "result", msm: quiet.id }]);
    await greedy.next("atlas_subscribed");
    await modest.next("atlas_subscribed");
    // ~430 bytes a result: 400 results are more than the 100,000 bytes a minute this test edge allows.
    for (let f = 0; f < 4; f++) await busy.deliver(Array.from({ length: 100 }, (_, i) => 1_795_100_000 + f * 100 + i));
    expect(await greedy.next("atlas_error")).toMatch(/more than 100000 bytes a minute .* disconnected/);
    const got = (await greedy.drain("atlas_result", 100)).length;
    expect(got).toBeGreaterThan(150);
    expect(got).toBeLessThan(400);
    await quiet.deliver([1_795_200_000, 1_795_200_001]);
    expect(await modest.drain("atlas_result", 500)).toHaveLength(2);
  });

  it("answers bad frames and subscriptions with atlas_error naming what is wrong", async () => {
    const s = await subscriber();
    s.send(["atlas_subscribe", { streamType: "everything" }]);
    expect(await s.next("atlas_error")).toContain("streamType");
    s.send(["atlas_subscribe", { streamType: "result", msm: "latest" }]);
    expect(await s.next("atlas_error")).toContain("msm");
    s.send(["atlas_subscribe", { streamType: "result", type: "ping", sendBacklog: true }]);
    expect(await s.next("atlas_error")).toContain("sendBacklog needs msm");
    s.send(["atlas_listen", {}]);
    expect(await s.next("atlas_error")).toContain('unknown event "atlas_listen"');
    s.send(["atlas_subscribe", { streamType: "result", msm: 999_999_999, sendBacklog: true }]);
    expect(await s.next("atlas_error")).toContain("measurement 999999999 does not exist or is not public");
  });
});
