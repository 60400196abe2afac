// Atlas's system probe tags, from each probe's own built-in pings: RIPE's `ripe-atlas measure` asks for
// `system-ipv4-works` on every measurement, so a probe without it is never chosen by a plain Atlas client.
import { describe, expect, it } from "vitest";
import { systemTags, noteBuiltins } from "../../durable-objects/system-tags.ts";
import { BUILTIN_ANCHOR_PING } from "../../protocol/index.ts";
import { call, connect, createPing, enroll, newKey, pingResult } from "./harness.ts";

const key = await newKey();
type ProbeObject = { tags: { name: string; slug: string }[] };
const slugs = async (id: number) => ((await (await call(`/api/v2/probes/${id}/`)).json()) as ProbeObject).tags.map((t) => t.slug);
const withTag = async (tag: string) => ((await (await call(`/api/v2/probes/?tags=${tag}&page_size=500`)).json()) as { results: { id: number }[] }).results.map((p) => p.id);
/** Polls until the registry shows what the controller reported (it is told after the ack, in the background). */
async function eventually(fn: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100 && !(await fn()); i++) await new Promise((r) => setTimeout(r, 20));
}
const builtinPing = (probeId: number, timestamp: number, over: Record<string, unknown> = {}) =>
  ({ ...pingResult(BUILTIN_ANCHOR_PING, probeId, timestamp), msm_name: "Ping", step: 240, ...over });
const tagged = (probeId: number, tag: string) => createPing(key, [{ type: "probes", value: String(probeId), requested: 1, tags: { include: [tag] } }]);

describe("system tags", () => {
  it("follow the probe's built-in anchor pings: IPv4 works while they are answered, and Atlas clients' measurements reach it", async () => {
    const p = await enroll({ country_code: "LV" });
    const { socket } = await connect(p);
    const now = Math.floor(Date.now() / 1000);
    // Before any built-in: not known to work, so a measurement asking for it finds no probe.
    expect(await slugs(p.id)).not.toContain("system-ipv4-works");
    expect((await tagged(p.id, "system-ipv4-works")).status).toBe(201);
    expect(await withTag("system-ipv4-works")).not.toContain(p.id);

    socket.send({ type: "results", results: [{ seq: 1, result: builtinPing(p.id, now - 600) }] });
    expect((await socket.next("ack")).upto).toBe(1);
    await eventually(async () => (await slugs(p.id)).includes("system-ipv4-works"));
    expect(await slugs(p.id)).toEqual(expect.arrayContaining(["system-ipv4-capable", "system-ipv4-works"]));
    expect(await slugs(p.id)).not.toContain("system-ipv6-works");
    const object = (await (await call(`/api/v2/probes/${p.id}/`)).json()) as ProbeObject;
    expect(object.tags).toContainEqual({ name: "IPv4 Works", slug: "system-ipv4-works" });
    expect(await withTag("system-ipv4-works")).toContain(p.id);
    const listed = ((await (await call("/api/v2/probes/tags/?page_size=500")).json()) as { results: { name: string; slug: string; type: string; probes: number }[] }).results;
    expect(listed).toContainEqual({ name: "IPv4 Works", slug: "system-ipv4-works", type: "system", probes: expect.any(Number) });
    // A measurement that asks for it (as `ripe-atlas measure` does) now reaches the probe.
    const id = ((await (await tagged(p.id, "system-ipv4-works")).json()) as { measurements: number[] }).measurements[0]!;
    expect((await socket.next("measure")).assignment.msm_id).toBe(id);
    // An exclusion works the same way.
    const excluded = await createPing(key, [{ type: "probes", value: String(p.id), requested: 1, tags: { exclude: ["system-ipv4-works"] } }]);
    const ex = ((await excluded.json()) as { measurements: number[] }).measurements[0]!;
    expect(((await (await call(`/api/v2/measurements/${ex}/`)).json()) as { status: { name: string } }).status.name).toBe("No suitable probes");

    // Its next built-in ping gets no reply: IPv4 no longer works (capable it still is).
    socket.send({ type: "results", results: [{ seq: 2, result: builtinPing(p.id, now - 300, { rcvd: 0, min: -1, avg: -1, max: -1, result: [{ x: "*" }, { x: "*" }, { x: "*" }] }) }] });
    expect((await socket.next("ack")).upto).toBe(2);
    await eventually(async () => !(await slugs(p.id)).includes("system-ipv4-works"));
    expect(await slugs(p.id)).toContain("system-ipv4-capable");
    expect(await slugs(p.id)).not.toContain("system-ipv4-works");
    socket.ws.close();
  });

  it("come back with the probe when it connects again, before its next built-in", async () => {
    const p = await enroll({ country_code: "LV" });
    const first = await connect(p);
    first.socket.send({ type: "results", results: [{ seq: 1, result: builtinPing(p.id, Math.floor(Date.now() / 1000) - 60) }] });
    await first.socket.next("ack");
    await eventually(async () => (await slugs(p.id)).includes("system-ipv4-works"));
    first.socket.ws.close();
    const again = await connect(p);
    const id = ((await (await tagged(p.id, "system-ipv4-works")).json()) as { measurements: number[] }).measurements[0]!;
    expect((await again.socket.next("measure")).assignment.msm_id).toBe(id);
    again.socket.ws.close();
  });

  it("are derived per family, and only from anchor pings with a source address", () => {
    const at = 1_800_000_000;
    const ping = (af: 4 | 6, src: string, rcvd: number, ts = at, msm = BUILTIN_ANCHOR_PING) => ({ ...pingResult(msm, 1, ts), af, src_addr: src, rcvd }) as never;
    expect(systemTags("192.0.2.1", undefined)).toEqual(["system-ipv4-capable"]);
    expect(systemTags("2001:db8::1", undefined)).toEqual(["system-ipv6-capable"]);
    const reach = noteBuiltins(undefined, [ping(4, "192.0.2.1", 3), ping(6, "", 0)]);
    expect(systemTags(null, reach)).toEqual(["system-ipv4-capable", "system-ipv4-works"]);
    // An older result does not overrule a newer one.
    expect(systemTags(null, noteBuiltins(reach, [ping(4, "192.0.2.1", 0, at - 10)]))).toContain("system-ipv4-works");
    // A family no built-in has spoken for keeps what the registry carried; one that has spoken decides.
    expect(systemTags(null, reach, ["system-ipv6-capable", "system-ipv6-works", "system-ipv4-works"])).toEqual(
      ["system-ipv4-capable", "system-ipv4-works"]);
    expect(systemTags(null, noteBuiltins(undefined, [ping(4, "192.0.2.1", 2)]), ["system-ipv6-works"])).toEqual(
      ["system-ipv4-capable", "system-ipv4-works", "system-ipv6-works"]);
    // Other built-ins (first-hop pings, traceroutes) say nothing about reaching the Internet.
    expect(noteBuiltins(undefined, [ping(4, "192.0.2.1", 3, at, 1)])).toBeUndefined();
  });
});
