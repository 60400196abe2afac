// Atlas's measurement groups: the measurements one request created together share their first one's id as
// `group_id`, are listed by it, read as a group and stopped as one, by their owner only.
import { describe, expect, it } from "vitest";
import { call, connect, enroll, errorOf, newKey, post } from "./harness.ts";

type Msm = { id: number; group_id: number | null; group: string | null; status: { name: string } };
const auth = (key: string) => ({ Authorization: `Key ${key}` });
const msm = async (id: number) => (await (await call(`/api/v2/measurements/${id}/`)).json()) as Msm;

describe("measurement groups", () => {
  it("one request's measurements form a group: read, listed and stopped together, by their owner only", async () => {
    const alice = await newKey("alice"), bob = await newKey("bob");
    const probe = await enroll({ country_code: "IS" });
    const { socket } = await connect(probe, { slots: 8 });
    const sources = [{ type: "probes", value: String(probe.id), requested: 1 }];
    const create = async (definitions: Record<string, unknown>[], key = alice) => {
      const res = await post("/api/v2/measurements/", { definitions, probes: sources, is_oneoff: false }, auth(key));
      expect(res.status, await res.clone().text()).toBe(201);
      return ((await res.json()) as { measurements: number[] }).measurements;
    };
    const [leader, second, third] = await create([
      { type: "ping", af: 4, target: "192.0.2.1", description: "g ping", interval: 3600 },
      { type: "traceroute", af: 4, target: "192.0.2.1", description: "g trace", interval: 3600 },
      { type: "dns", af: 4, target: "192.0.2.53", description: "g dns", query_type: "A", query_argument: "example.net", interval: 3600 },
    ]);
    const [alone] = await create([{ type: "ping", af: 4, target: "192.0.2.2", description: "alone", interval: 3600 }]);
    for (let i = 0; i < 4; i++) await socket.next("measure");

    for (const id of [leader!, second!, third!]) {
      expect(await msm(id)).toMatchObject({ group_id: leader, group: expect.stringMatching(new RegExp(`/api/v2/measurements/groups/${leader}/$`)) });
    }
    expect(await msm(alone!)).toMatchObject({ group_id: null, group: null });

    const group = await call(`/api/v2/measurements/groups/${leader}/`);
    expect(group.status).toBe(200);
    expect(await group.json()).toMatchObject({
      id: leader, total_members: 3, is_wifi_group: false,
      group_members: [{ id: leader, type: "ping" }, { id: second, type: "traceroute" }, { id: third, type: "dns" }],
    });
    // Only a leader names a group; a single measurement is in none.
    for (const id of [second!, alone!]) expect((await call(`/api/v2/measurements/groups/${id}/`)).status).toBe(404);
    const listed = (await (await call(`/api/v2/measurements/?group_id=${leader}`)).json()) as { count: number; results: { id: number }[] };
    expect(listed.results.map((m) => m.id).sort()).toEqual([leader, second, third].sort());

    // Another account can neither stop it nor stop a single measurement through it.
    const refused = await call(`/api/v2/measurements/groups/${leader}/`, { method: "DELETE", headers: auth(bob) });
    expect(refused.status).toBe(403);
    expect((await errorOf(refused)).detail).toContain("another account");
    expect((await call(`/api/v2/measurements/groups/${leader}/`, { method: "DELETE" })).status).toBe(403);
    expect((await msm(leader!)).status.name).not.toBe("Stopped");

    const stopped = await call(`/api/v2/measurements/groups/${leader}/`, { method: "DELETE", headers: auth(alice) });
    expect(stopped.status).toBe(204);
    for (const id of [leader!, second!, third!]) expect((await msm(id)).status.name).toBe("Stopped");
    expect((await msm(alone!)).status.name).not.toBe("Stopped");
    // The probe is told to stop each member.
    const stops = new Set<number>();
    for (let i = 0; i < 3; i++) stops.add((await socket.next("stop")).msm_id);
    expect([...stops].sort()).toEqual([leader, second, third].sort());
    // Stopping it again changes nothing and is not an error.
    expect((await call(`/api/v2/measurements/groups/${leader}/`, { method: "DELETE", headers: auth(alice) })).status).toBe(204);
    socket.ws.close();
  });

  it("a private group is read by its owner only", async () => {
    const alice = await newKey("alice"), bob = await newKey("bob");
    const probe = await enroll({ country_code: "IS" });
    const res = await post("/api/v2/measurements/", {
      definitions: [
        { type: "ping", af: 4, target: "192.0.2.1", description: "p1", is_public: false },
        { type: "ping", af: 4, target: "192.0.2.3", description: "p2", is_public: false },
      ],
      probes: [{ type: "probes", value: String(probe.id), requested: 1 }], is_oneoff: true,
    }, auth(alice));
    const [leader] = ((await res.json()) as { measurements: number[] }).measurements;
    expect((await call(`/api/v2/measurements/groups/${leader}/`)).status).toBe(403);
    expect((await call(`/api/v2/measurements/groups/${leader}/`, { headers: auth(bob) })).status).toBe(403);
    expect((await call(`/api/v2/measurements/groups/${leader}/`, { headers: auth(alice) })).status).toBe(200);
  });

  it("refuses a group_id in a definition by name (joining an existing group is not supported)", async () => {
    const alice = await newKey("alice");
    const res = await post("/api/v2/measurements/", {
      definitions: [{ type: "ping", af: 4, target: "192.0.2.1", description: "join", group_id: 10000001 }],
      probes: [{ type: "area", value: "WW", requested: 1 }], is_oneoff: true,
    }, auth(alice));
    expect(res.status).toBe(400);
    expect((await errorOf(res)).errors[0]!.source.pointer).toBe("/definitions/0/group_id");
  });
});
