// Attacks through requests: aiming strangers' probes at their hosts' networks in any spelling (the edge as deployed
// refuses private targets), bodies that never end, and a subscription meant to hide a measurement from the stream.
import { describe, expect, it } from "vitest";
import { call, connect, createPing, enroll, newKey, pingResult, post, subscriber } from "../harness.ts";
import { atlasError, auth } from "./kit.ts";

const ping = (key: string, target: string, af: 4 | 6) => post("/api/v2/measurements/", {
  definitions: [{ type: "ping", af, target, description: "aimed" }], probes: [{ type: "area", value: "WW", requested: 1 }], is_oneoff: true,
}, auth(key));

describe("attacks on where probes are aimed (the edge as deployed)", () => {
  it.each([
    ["127.0.0.1", 4, "Loopback"], ["127.1", 4, "unusual spelling of 127.0.0.1"], ["2130706433", 4, "unusual spelling"], ["0x7f.0.0.1", 4, "unusual spelling"],
    ["0177.0.0.1", 4, "unusual spelling"], ["169.254.169.254", 4, "Link Local"], ["10.0.0.1", 4, "Private-Use"], ["100.64.0.1", 4, "Shared Address Space"],
    ["192.168.1.1", 4, "Private-Use"], ["224.0.0.1", 4, "Multicast"], ["255.255.255.255", 4, "Limited Broadcast"], ["0.0.0.0", 4, "This host"],
    ["::1", 6, "Loopback"], ["::ffff:127.0.0.1", 6, "carrying 127.0.0.1 is Loopback"], ["::ffff:a9fe:a9fe", 6, "carrying 169.254.169.254"],
    ["64:ff9b::a00:1", 6, "carrying 10.0.0.1"], ["2002:c0a8:101::1", 6, "carrying 192.168.1.1"], ["2001:0:4136:e378:8000:63bf:f5ff:fffe", 6, "carrying 10.0.0.1"],
    ["fd00:ec2::254", 6, "Unique-Local"], ["FE80::1%eth0", 6, "Link-Local"], ["ff02::1", 6, "Multicast"], ["::", 6, "Unspecified"],
    ["64:ff9b:1::1", 6, "local-use NAT64"], ["localhost", 4, "local to the probe's own network"], ["printer.local", 4, "local to the probe's own network"],
  ] as const)("attack: a measurement of %s — 400 naming the target and what it reaches, nothing created", async (target, af, reaches) => {
    const key = await newKey("aimer");
    const res = await ping(key, target, af);
    expect(res.status).toBe(400);
    const err = await atlasError(res);
    expect(err.pointers).toEqual(["/definitions/0/target"]);
    expect(err.detail).toContain(reaches);
    expect(((await (await call("/api/v2/measurements/my/", { headers: auth(key) })).json()) as { count: number }).count).toBe(0);
  });

  it("lets public targets through, in every IPv6 spelling and as names", async () => {
    const key = await newKey("aimer");
    await connect(await enroll({ country_code: "NL" }));
    for (const [target, af] of [["193.0.14.129", 4], ["2001:7FD::1", 6], ["2001:07fd:0000:0000:0000:0000:0000:0001", 6], ["64:ff9b::c100:e81", 6], ["k.root-servers.net", 4]] as const) {
      expect((await ping(key, target, af)).status, target).toBe(201);
    }
  });
});

describe("attacks with request bodies", () => {
  it("attack: a chunked body that never stops — cut at the limit while it is read (413), not buffered whole", async () => {
    const key = await newKey("streamer");
    let sent = 0;
    const chunk = new TextEncoder().encode(" ".repeat(64 * 1024));
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        // 16 MiB at most, if nothing stopped reading: the edge must stop long before.
        if (sent >= 16 * 1024 * 1024) return controller.close();
        sent += chunk.byteLength;
        controller.enqueue(chunk);
      },
    });
    const res = await call("/api/v2/measurements/", {
      method: "POST", headers: { "Content-Type": "application/json", ...auth(key) }, body, duplex: "half",
    } as RequestInit);
    expect(res.status).toBe(413);
    expect((await atlasError(res)).detail).toContain("exceeds the limit of 262144 bytes");
    expect(sent).toBeLessThan(1024 * 1024);
  });

  it("attack: a Content-Length that lies low — the real size is what counts", async () => {
    const key = await newKey("liar");
    const res = await call("/api/v2/credits/transfers/", {
      method: "POST", headers: { "Content-Type": "application/json", "Content-Length": "10", ...auth(key) },
      body: JSON.stringify({ recipient: "x", amount: 1, pad: "y".repeat(300_000) }),
    });
    expect([400, 413]).toContain(res.status);
    expect(res.status).toBe(413);
  });

  it("attack: a body that is not UTF-8 — 400, nothing created", async () => {
    const key = await newKey("bytes");
    const res = await call("/api/v2/measurements/", { method: "POST", headers: { "Content-Type": "application/json", ...auth(key) }, body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]) });
    expect(res.status).toBe(400);
    expect((await atlasError(res)).detail).toContain("UTF-8");
  });
});

describe("attacks on the stream", () => {
  it("attack: subscribing to the next measurement id before it exists, to hide it from the stream later — its results still flow", async () => {
    const key = await newKey("early-bird");
    const probe = await enroll({ country_code: "NL" });
    const { socket } = await connect(probe);
    // The next id: one more than the newest measurement.
    const listed = (await (await call("/api/v2/measurements/?page_size=1")).json()) as { results: { id: number }[] };
    const next = (listed.results[0]?.id ?? 10_000_000) + 1;
    const early = await subscriber();
    early.send(["atlas_subscribe", { streamType: "result", msm: next }]);
    expect(String(await early.next("atlas_error"))).toContain("does not exist");
    const res = await createPing(key, [{ type: "probes", value: String(probe.id), requested: 1 }], { target: "193.0.14.129", interval: 60 });
    const id = ((await res.json()) as { measurements: number[] }).measurements[0]!;
    expect(id).toBe(next);
    await socket.next("measure");
    const later = await subscriber();
    later.send(["atlas_subscribe", { streamType: "result", msm: id }]);
    await later.next("atlas_subscribed");
    socket.send({ type: "results", results: [{ seq: 1, result: pingResult(id, probe.id) }] });
    await socket.next("ack");
    expect(await later.next("atlas_result")).toMatchObject({ msm_id: id, prb_id: probe.id });
    early.close();
    later.close();
    socket.ws.close();
  });
});
