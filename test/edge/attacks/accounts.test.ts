// Attacks between accounts: reading what another account keeps private (definition, results, latest, participation
// requests, its probes through an `msm` source, the stream), keys that make stronger keys, operator routes without
// the operator's credential, and participation requests that dodge the quotas and rate limits creation has.
import { describe, expect, it } from "vitest";
import { call, connect, createPing, enroll, newKey, pingResult, post, subscriber } from "../harness.ts";
import { atlasError, auth, stored } from "./kit.ts";

/** A private one-off ping by `owner` on a probe of its own, with one result stored. */
async function privateMeasurement(owner: string) {
  const probe = await enroll({ country_code: "NL" });
  const { socket } = await connect(probe);
  const res = await createPing(owner, [{ type: "probes", value: String(probe.id), requested: 1 }], { is_public: false, target: "193.0.14.129" });
  expect(res.status).toBe(201);
  const id = ((await res.json()) as { measurements: number[] }).measurements[0]!;
  await socket.next("measure");
  socket.send({ type: "results", results: [{ seq: 1, result: pingResult(id, probe.id) }] });
  await socket.next("ack");
  return { id, probe, socket };
}

describe("attacks on another account's private measurement", () => {
  it.each([
    ["its definition", (id: number) => `/api/v2/measurements/${id}/`],
    ["its results", (id: number) => `/api/v2/measurements/${id}/results/`],
    ["its latest results", (id: number) => `/api/v2/measurements/${id}/latest/`],
    ["its participation requests (where it measures from)", (id: number) => `/api/v2/measurements/${id}/participation-requests/`],
  ])("attack: reading %s with another account's key, or none — 403, and its owner still reads it", async (_what, path) => {
    const owner = await newKey("private-owner");
    const stranger = await newKey("stranger");
    const { id, socket } = await privateMeasurement(owner);
    for (const headers of [auth(stranger), {}]) {
      const res = await call(path(id), { headers });
      expect(res.status).toBe(403);
      expect((await atlasError(res)).detail).toContain("not public");
    }
    expect((await call(path(id), { headers: auth(owner) })).status).toBe(200);
    socket.ws.close();
  });

  it("attack: reading a private measurement's participation request by its id — 403", async () => {
    const owner = await newKey("private-owner");
    const { id, probe, socket } = await privateMeasurement(owner);
    const listed = (await (await call(`/api/v2/measurements/${id}/participation-requests/`, { headers: auth(owner) })).json()) as { results: { id: number; value: string }[] };
    const pr = listed.results[0]!;
    expect(pr.value).toBe(String(probe.id));
    expect((await call(`/api/v2/participation-requests/${pr.id}/`)).status).toBe(403);
    expect((await call(`/api/v2/participation-requests/${pr.id}/`, { headers: auth(await newKey("stranger")) })).status).toBe(403);
    expect((await call(`/api/v2/participation-requests/${pr.id}/`, { headers: auth(owner) })).status).toBe(200);
    socket.ws.close();
  });

  it("attack: reusing a private measurement's probes as an `msm` source (which reveals where it runs) — 400 as if it did not exist, nothing dispatched", async () => {
    const owner = await newKey("private-owner");
    const { id, socket } = await privateMeasurement(owner);
    const stranger = await newKey("stranger");
    const before = (await (await call("/api/v2/measurements/my/", { headers: auth(stranger) })).json()) as { count: number };
    const res = await createPing(stranger, [{ type: "msm", value: String(id), requested: 1 }], { target: "193.0.14.129" });
    expect(res.status).toBe(400);
    const err = await atlasError(res);
    expect(err.pointers).toEqual(["/probes/0/value"]);
    expect(err.detail).toContain(`No measurement with id ${id}`);
    const nonexistent = await createPing(stranger, [{ type: "msm", value: "99999999", requested: 1 }], { target: "193.0.14.129" });
    expect((await atlasError(nonexistent)).detail.replace("99999999", String(id))).toBe(err.detail);
    expect(((await (await call("/api/v2/measurements/my/", { headers: auth(stranger) })).json()) as { count: number }).count).toBe(before.count);
    expect(socket.has("measure")).toBe(false);
    // Its owner may.
    expect((await createPing(owner, [{ type: "msm", value: String(id), requested: 1 }], { target: "193.0.14.129" })).status).toBe(201);
    socket.ws.close();
  });

  it("attack: the same through a participation request on one's own measurement — 400, no probe added", async () => {
    const owner = await newKey("private-owner");
    const { id: secret, socket } = await privateMeasurement(owner);
    const stranger = await newKey("stranger");
    const own = ((await (await createPing(stranger, [{ type: "area", value: "WW", requested: 1 }], { target: "193.0.14.129", interval: 3600 })).json()) as { measurements: number[] }).measurements[0]!;
    const res = await post(`/api/v2/measurements/${own}/participation-requests/`, [{ action: "add", type: "msm", value: String(secret), requested: 1 }], auth(stranger));
    expect(res.status).toBe(400);
    expect((await atlasError(res)).pointers).toEqual(["/0/value"]);
    socket.ws.close();
  });

  it("attack: subscribing to a private measurement's results on the stream — refused, and nothing of it is sent", async () => {
    const owner = await newKey("private-owner");
    const { id, probe, socket } = await privateMeasurement(owner);
    const s = await subscriber();
    s.send(["atlas_subscribe", { streamType: "result", msm: id }]);
    expect(String(await s.next("atlas_error"))).toContain("not public");
    s.send(["atlas_subscribe", { streamType: "result", prb: probe.id }]);
    await s.next("atlas_subscribed");
    socket.send({ type: "results", results: [{ seq: 2, result: pingResult(id, probe.id) }] });
    await socket.next("ack");
    expect(await s.drain("atlas_result", 500)).toEqual([]);
    expect(await stored(id, "weur-0", owner)).toHaveLength(1);  // one-off: the second result was not its to give
    s.close();
    socket.ws.close();
  });
});

describe("attacks with keys", () => {
  const makeKey = (key: string, body: unknown) => post("/api/v2/keys/", body, auth(key));

  it("attack: a key that may only manage keys makes itself a key that may spend — 400 naming the grant, no key made", async () => {
    const full = await newKey("full");
    const made = await makeKey(full, { label: "keys only", grants: [{ permission: "manage_keys" }] });
    expect(made.status).toBe(201);
    const weak = ((await made.json()) as { key: string }).key;
    const listed = async () => ((await (await call("/api/v2/keys/", { headers: auth(full) })).json()) as { count: number }).count;
    const before = await listed();
    for (const grants of [["create_measurements"], [{ permission: "transfer_credits" }], ["manage_keys", "get_credits"]]) {
      const res = await makeKey(weak, { label: "escalated", grants });
      expect(res.status).toBe(400);
      expect((await atlasError(res)).pointers[0]).toMatch(/^\/grants\/\d$/);
    }
    // Without grants named, a key made by a weak key is as weak as it.
    const plain = await makeKey(weak, { label: "plain" });
    expect(((await plain.json()) as { grants: { permission: string }[] }).grants).toEqual([{ permission: "manage_keys", target: null }]);
    expect(await listed()).toBe(before + 1);
  });

  it("attack: a key that expires makes a key that does not (or expires later, or started earlier) — 400 naming the field", async () => {
    const full = await newKey("full");
    const now = Math.floor(Date.now() / 1000);
    const short = ((await (await makeKey(full, { label: "a day", valid_from: now - 60, valid_to: now + 86_400 })).json()) as { key: string }).key;
    for (const [body, pointer] of [
      [{ label: "forever", valid_to: null }, null],
      [{ label: "a year", valid_to: now + 365 * 86_400 }, "/valid_to"],
      [{ label: "earlier", valid_from: now - 3600 }, "/valid_from"],
    ] as const) {
      const res = await makeKey(short, body);
      if (pointer === null) {
        // Asking for no end gets the caller's end, never more.
        expect(res.status).toBe(201);
        expect(((await res.json()) as { valid_to: string }).valid_to).toBe(new Date((now + 86_400) * 1000).toISOString());
      } else {
        expect(res.status).toBe(400);
        expect((await atlasError(res)).pointers).toEqual([pointer]);
      }
    }
  });

  it("takes Atlas's shape of grants, and refuses unknown permissions naming them", async () => {
    const full = await newKey("full");
    const ok = await makeKey(full, { label: "atlas", grants: [{ permission: "create_measurements" }, "get_credits"] });
    expect(ok.status).toBe(201);
    expect(((await ok.json()) as { grants: unknown[] }).grants).toEqual([{ permission: "create_measurements", target: null }, { permission: "get_credits", target: null }]);
    const bad = await makeKey(full, { label: "atlas", grants: [{ permission: "become_operator" }] });
    expect(bad.status).toBe(400);
    expect((await atlasError(bad)).pointers[0]).toMatch(/^\/grants\/0/);
  });
});

describe("attacks on operator routes", () => {
  const routes: [string, string, unknown?][] = [
    ["POST", "/admin/probes", { public_key: "A".repeat(43) }], ["POST", "/admin/probes/1000001/disable"], ["POST", "/admin/keys", { label: "mine", credits: 1e9 }],
    ["POST", "/admin/accounts/acct-x/credits", { credits: 1e9, request_id: "free" }], ["GET", "/admin/controllers"], ["GET", "/admin/usage"],
    ["POST", "/admin/controllers/weur-0/flush", {}], ["PUT", "/admin/releases/9.9.9"], ["POST", "/admin/rollouts", {}], ["POST", "/admin/rollouts/halt", {}],
    ["GET", "/admin/rollouts"], ["POST", "/admin/bundles/build", {}], ["GET", "/admin/no-such-route"], ["DELETE", "/admin/keys"],
  ];
  it.each(routes)("attack: %s %s without the operator token, with a user's key, or a wrong token — 403 before any handler runs", async (method, path, body) => {
    const user = await newKey("user");
    for (const headers of [{}, auth(user), { Authorization: "Bearer wrong-token" }, { Authorization: "Bearer " }, { Authorization: "bearer test-admin-token " }]) {
      const res = await call(path, { method, headers: { "Content-Type": "application/json", ...headers }, ...(body ? { body: JSON.stringify(body) } : {}) });
      expect(res.status).toBe(403);
      expect((await atlasError(res)).detail).toBe("Operator credential missing or wrong.");
    }
  });
});

describe("attacks on the quotas through participation requests", () => {
  // A running measurement needs a probe that takes it.
  const probeFor = async () => (await connect(await enroll({ country_code: "DE" }), { slots: 64 })).socket;

  it("attack: growing a measurement past the probes a measurement may have, one participation request at a time — 400, no probe added", async () => {
    const key = await newKey("grower");
    const socket = await probeFor();
    const id = ((await (await createPing(key, [{ type: "area", value: "WW", requested: 1000 }], { target: "193.0.14.129", interval: 3600 })).json()) as { measurements: number[] }).measurements[0]!;
    const res = await post(`/api/v2/measurements/${id}/participation-requests/`, [{ action: "add", type: "area", value: "WW", requested: 1 }], auth(key));
    expect(res.status).toBe(400);
    expect((await atlasError(res)).detail).toMatch(/at most 1000/);
    socket.ws.close();
  });

  it("attack: participation requests as fast as they go, to dodge the creation rate limit — 429 with Retry-After", async () => {
    const key = await newKey("hammer");
    const socket = await probeFor();
    const id = ((await (await createPing(key, [{ type: "area", value: "WW", requested: 1 }], { target: "193.0.14.129", interval: 3600 })).json()) as { measurements: number[] }).measurements[0]!;
    const statuses: number[] = [];
    let limited: Response | null = null;
    for (let i = 0; i < 12 && !limited; i++) {
      const res = await post(`/api/v2/measurements/${id}/participation-requests/`, [{ action: "remove", type: "probes", value: "1" }], auth(key));
      statuses.push(res.status);
      if (res.status === 429) limited = res;
    }
    // QUOTA_CREATES_PER_MINUTE is 10 here: the creation and nine requests pass, the tenth request is refused.
    expect(statuses).toEqual([...Array(9).fill(201), 429]);
    expect(Number(limited!.headers.get("Retry-After"))).toBeGreaterThan(0);
    expect((await createPing(key, [{ type: "area", value: "WW", requested: 1 }], { target: "193.0.14.129" })).status).toBe(429);
    socket.ws.close();
  });
});
