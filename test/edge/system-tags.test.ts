// Atlas's system probe tags, from each probe's own built-in pings: RIPE's `ripe-atlas measure` asks for
// `system-ipv4-works` on every measurement, so a probe without it is never chosen by a plain Atlas client.
import { encode, RECURSION_AVAILABLE, RECURSION_DESIRED } from "@leichtgewicht/dns-packet";
import { describe, expect, it } from "vitest";
import { reachFrom, resolverCheckOf, STABLE_GAP_S, systemTags, noteBuiltins, worksOf } from "../../durable-objects/system-tags.ts";
import { BUILTIN_ANCHOR_PING, BUILTIN_RESOLVER_A, BUILTIN_RESOLVER_AAAA } from "../../protocol/index.ts";
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
/** What a resolver answered (wire format, base64): `addresses` for the name, or an error code (3 = NXDOMAIN). */
function answer(qtype: "A" | "AAAA", name: string, addresses: string[], rcode = 0): string {
  const bytes = encode({
    type: "response", id: 7, flags: RECURSION_DESIRED | RECURSION_AVAILABLE | rcode,
    questions: [{ type: qtype, class: "IN", name }],
    answers: addresses.map((data) => ({ type: qtype, class: "IN", name, ttl: 300, data })),
  });
  return btoa(String.fromCharCode(...bytes));
}
/** A built-in resolver check as the agent reports it: one exchange per resolver of the probe (null: it timed out). */
const resolverResult = (msm: number, probeId: number, timestamp: number, abufs: (string | null)[]) => ({
  fw: 5020, mver: "1.0.0", lts: 1, msm_id: msm, msm_name: "Tdig", prb_id: probeId, timestamp, from: "", type: "dns",
  resultset: abufs.map((abuf, i) => ({
    time: timestamp, lts: 1, subid: i + 1, submax: abufs.length, af: 4, dst_addr: `192.168.1.${i + 1}`, dst_port: "53", proto: "UDP", src_addr: "192.168.1.100",
    ...(abuf === null ? { error: { timeout: 5000 } } : { result: { rt: 1.5, size: atob(abuf).length, ID: 7, QDCOUNT: 1, ANCOUNT: 1, NSCOUNT: 0, ARCOUNT: 0, abuf } }),
  })),
});
const CHECK = "check.vantage.test";  // vitest.config.ts: its A is 192.0.2.53, its AAAA 2001:db8::53
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

  it("say whether the probe's own resolvers answer the operator's check name right, A and AAAA each", async () => {
    const p = await enroll({ country_code: "LV" });
    const { socket, welcome } = await connect(p);
    // The welcome tells the probe what to ask its resolvers.
    expect(welcome.resolver_check).toBe(CHECK);
    const now = Math.floor(Date.now() / 1000);
    let seq = 0;
    const send = async (...results: unknown[]) => {
      socket.send({ type: "results", results: results.map((result) => ({ seq: ++seq, result })) });
      expect((await socket.next("ack")).upto).toBe(seq);
    };
    const resolves = async () => (await slugs(p.id)).filter((t) => t.startsWith("system-resolves-"));
    // Right A (one resolver timing out does not count against it); a lying AAAA (another address).
    await send(resolverResult(BUILTIN_RESOLVER_A, p.id, now - 600, [answer("A", CHECK, ["192.0.2.53"]), null]),
      resolverResult(BUILTIN_RESOLVER_AAAA, p.id, now - 600, [answer("AAAA", CHECK, ["2001:db8::66"])]));
    await eventually(async () => (await resolves()).length > 0);
    expect(await resolves()).toEqual(["system-resolves-a-correctly"]);
    // The AAAA answered right, in another spelling of the address; then one resolver of two lies about A (NXDOMAIN).
    await send(resolverResult(BUILTIN_RESOLVER_AAAA, p.id, now - 300, [answer("AAAA", CHECK, ["2001:0db8:0000::0053"])]),
      resolverResult(BUILTIN_RESOLVER_A, p.id, now - 300, [answer("A", CHECK, ["192.0.2.53"]), answer("A", CHECK, [], 3)]));
    await eventually(async () => (await resolves()).join() === "system-resolves-aaaa-correctly");
    expect(await resolves()).toEqual(["system-resolves-aaaa-correctly"]);
    expect(await withTag("system-resolves-aaaa-correctly")).toContain(p.id);
    const object = (await (await call(`/api/v2/probes/${p.id}/`)).json()) as ProbeObject;
    expect(object.tags).toContainEqual({ name: "Resolves AAAA Correctly", slug: "system-resolves-aaaa-correctly" });
    socket.ws.close();
  });

  it("judge only the check's own question, in full: extra, missing or other-name answers are wrong", () => {
    const check = resolverCheckOf(JSON.stringify({ name: "check.vantage.test.", a: ["192.0.2.53", "192.0.2.54"], aaaa: ["2001:0DB8:0::0053"] }))!;
    expect(check).toEqual({ name: "check.vantage.test", a: ["192.0.2.53", "192.0.2.54"], aaaa: ["2001:db8::53"] });
    const judge = (abufs: (string | null)[], msm = BUILTIN_RESOLVER_A) =>
      systemTags(null, noteBuiltins(undefined, [resolverResult(msm, 1, 1_800_000_000, abufs) as never], check)).includes("system-resolves-a-correctly");
    expect(judge([answer("A", CHECK, ["192.0.2.54", "192.0.2.53"])])).toBe(true);  // any order
    expect(judge([answer("A", "CHECK.Vantage.test", ["192.0.2.53", "192.0.2.54"])])).toBe(true);  // any case
    expect(judge([answer("A", CHECK, ["192.0.2.53"])])).toBe(false);  // one missing
    expect(judge([answer("A", CHECK, ["192.0.2.53", "192.0.2.54", "198.51.100.1"])])).toBe(false);  // one extra
    expect(judge([answer("A", "other.vantage.test", ["192.0.2.53", "192.0.2.54"])])).toBe(false);  // another question
    expect(judge([null, null])).toBe(false);  // nobody answered
    expect(judge(["bm90IGEgRE5TIG1lc3NhZ2U="])).toBe(false);  // not a DNS message
    // Without a check configured, resolver results say nothing.
    expect(noteBuiltins(undefined, [resolverResult(BUILTIN_RESOLVER_A, 1, 1, [answer("A", CHECK, ["192.0.2.53"])]) as never], null)).toBeUndefined();
    // An operator's malformed check is an error that names what is wrong.
    expect(() => resolverCheckOf("{name: x}")).toThrow(/not JSON/);
    expect(() => resolverCheckOf(JSON.stringify({ name: CHECK, a: ["2001:db8::1"], aaaa: ["2001:db8::1"] }))).toThrow(/RESOLVER_CHECK\.a: "2001:db8::1" is not an IPv4 address/);
    expect(() => resolverCheckOf(JSON.stringify({ name: "not a name", a: ["192.0.2.1"], aaaa: ["2001:db8::1"] }))).toThrow(/name must be a domain name/);
  });

  it("say a family is stable once its built-in pings have all been answered for a day, and keep saying it across registrations", async () => {
    const p = await enroll({ country_code: "LV" });
    const first = await connect(p);
    const start = Math.floor(Date.now() / 1000) - 26 * 3600;
    // Pings 50 minutes apart (within the hour a run tolerates between two of them): 20 hours of them on this connection.
    const at = (i: number) => start + i * 3000;
    first.socket.send({ type: "results", results: Array.from({ length: 25 }, (_, i) => ({ seq: i + 1, result: builtinPing(p.id, at(i)) })) });
    expect((await first.socket.next("ack")).upto).toBe(25);
    await eventually(async () => (await slugs(p.id)).includes("system-ipv4-works"));
    expect(await slugs(p.id)).not.toContain("system-ipv4-stable-1d");
    first.socket.ws.close();
    // It registers again (as every probe does daily) and its pings go on: the day is full only if the run went on from
    // where the registry had it.
    const again = await connect(p);
    again.socket.send({ type: "results", results: Array.from({ length: 6 }, (_, i) => ({ seq: 26 + i, result: builtinPing(p.id, at(25 + i)) })) });
    expect((await again.socket.next("ack")).upto).toBe(31);
    await eventually(async () => (await slugs(p.id)).includes("system-ipv4-stable-1d"));
    const object = (await (await call(`/api/v2/probes/${p.id}/`)).json()) as ProbeObject;
    expect(object.tags).toContainEqual({ name: "IPv4 Stable 1d", slug: "system-ipv4-stable-1d" });
    expect(await slugs(p.id)).not.toContain("system-ipv4-stable-30d");
    // One unanswered ping ends the run: stable no more, until another day has passed.
    again.socket.send({ type: "results", results: [{ seq: 32, result: builtinPing(p.id, at(31), { rcvd: 0, min: -1, avg: -1, max: -1, result: [{ x: "*" }, { x: "*" }, { x: "*" }] }) }] });
    await again.socket.next("ack");
    await eventually(async () => !(await slugs(p.id)).includes("system-ipv4-stable-1d"));
    expect(await slugs(p.id)).not.toContain("system-ipv4-works");
    again.socket.ws.close();
  });

  it("count a run only while its pings come within the hour of each other", () => {
    const t = 1_800_000_000;
    const ping = (ts: number, rcvd = 3) => ({ ...pingResult(BUILTIN_ANCHOR_PING, 1, ts), src_addr: "192.0.2.1", rcvd }) as never;
    const run = (times: number[]) => noteBuiltins(undefined, times.map((x) => ping(x)));
    const every = (from: number, to: number, step: number) => Array.from({ length: Math.floor((to - from) / step) + 1 }, (_, i) => from + i * step);
    expect(systemTags(null, run(every(t, t + 86_400, 3600)))).toContain("system-ipv4-stable-1d");
    expect(systemTags(null, run(every(t, t + 86_400 - 1, 3600)))).not.toContain("system-ipv4-stable-1d");  // a second short
    // A gap of more than STABLE_GAP_S (the probe was off) starts the run again.
    const gapped = run([...every(t, t + 40_000, 3000), ...every(t + 40_000 + STABLE_GAP_S + 1, t + 90_000, 3000)]);
    expect(systemTags(null, gapped)).not.toContain("system-ipv4-stable-1d");
    expect(worksOf(gapped)[4]![0]).toBe(t + 40_000 + STABLE_GAP_S + 1);
    // Thirty days, and what the registry keeps of it gives the same tags when the probe comes back.
    const month = run(every(t, t + 30 * 86_400, 3600));
    expect(systemTags(null, month)).toEqual(expect.arrayContaining(["system-ipv4-stable-1d", "system-ipv4-stable-30d"]));
    expect(systemTags(null, month)).not.toContain("system-ipv4-stable-90d");
    expect(systemTags(null, reachFrom(worksOf(month)))).toEqual(systemTags(null, month).filter((x) => x !== "system-ipv4-capable").concat("system-ipv4-capable").sort());
    // What a token carries is checked before it is believed.
    expect(reachFrom({ 4: [5, 1] })).toBeUndefined();
    expect(reachFrom({ 4: ["x", 1] as never })).toBeUndefined();
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
