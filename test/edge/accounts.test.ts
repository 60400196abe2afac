// Accounts and the brain's rules for them, through the API: credits (what creation sets aside, the 402 and nothing
// created, charges for stored results, forced stop, uptime earnings, hosts' share of results, transfers and items), quotas and the creation
// rate limit, reusing answers, the crowd signal, participation requests, API keys with grants, and probe sources
// (msm, tags, fewer probes than requested).
import { runInDurableObject } from "cloudflare:test";
import type { ProbeMarks } from "../../durable-objects/marks.ts";
import { describe, expect, it } from "vitest";
import { REGISTRY_NAME } from "../../durable-objects/env.ts";
import { ADMIN, call, connect, createPing, enroll, env, errorOf, newKey, pingResult, post } from "./harness.ts";

type Credits = { account: string; current_balance: number; reserved: number; available: number; income_items: string | { type: string; amount: number }[] };
const credits = async (key: string, query = "") => (await (await call(`/api/v2/credits/${query}`, { headers: { Authorization: `Key ${key}` } })).json()) as Credits;

describe("credits", () => {
  it("sets aside a measurement's cost at creation, refuses what the account cannot cover, and frees the rest at its end", async () => {
    const key = await newKey("payer", 100);
    expect(await credits(key)).toMatchObject({ current_balance: 100, reserved: 0, available: 100 });
    const probe = await enroll({ country_code: "NL" });
    const { socket } = await connect(probe);

    // A one-off ping of 3 packets costs 3 × 2 = 6 credits per result; 10 probes requested → 60 set aside.
    const res = await createPing(key, [{ type: "country", value: "NL", requested: 10 }], { packets: 3 });
    expect(res.status).toBe(201);
    const id = ((await res.json()) as { measurements: number[] }).measurements[0]!;
    await socket.next("measure");
    expect(await credits(key)).toMatchObject({ current_balance: 100, reserved: 60, available: 40 });
    const msm = (await (await call(`/api/v2/measurements/${id}/`)).json()) as { credits_per_result: number };
    expect(msm.credits_per_result).toBe(6);

    // Another such request needs 60 and 40 are free: refused whole, and no measurement is made.
    const before = ((await (await call("/api/v2/measurements/my/", { headers: { Authorization: `Key ${key}` } })).json()) as { count: number }).count;
    const refused = await createPing(key, [{ type: "country", value: "NL", requested: 10 }], { packets: 3 });
    expect(refused.status).toBe(402);
    expect((await errorOf(refused)).detail).toMatch(/need 60 credits .* has 40 free/);
    expect(((await (await call("/api/v2/measurements/my/", { headers: { Authorization: `Key ${key}` } })).json()) as { count: number }).count).toBe(before);

    // Stopped before any result: everything set aside is free again.
    expect((await call(`/api/v2/measurements/${id}/`, { method: "DELETE", headers: { Authorization: `Key ${key}` } })).status).toBe(204);
    expect(await credits(key)).toMatchObject({ current_balance: 100, reserved: 0, available: 100 });
  });

  it("charges delivered results to the owner once, and forces a measurement that runs out of credits to stop", async () => {
    // A periodic ping (3 credits per result) with one probe, once a day: 3 credits set aside; 4 in the account.
    const key = await newKey("frugal", 4);
    const probe = await enroll({ country_code: "NL" });
    const { socket } = await connect(probe);
    const res = await createPing(key, [{ type: "probes", value: String(probe.id), requested: 1 }], { packets: 3, interval: 86_400 });
    const id = ((await res.json()) as { measurements: number[] }).measurements[0]!;
    await socket.next("measure");
    expect(await credits(key)).toMatchObject({ current_balance: 4, reserved: 3, available: 1 });
    const flush = () => post("/admin/controllers/weur-0/flush", {}, { Authorization: `Bearer ${ADMIN}` });

    // One result: paid from the reservation. Flushing again charges nothing more.
    socket.send({ type: "results", results: [{ seq: 1, result: pingResult(id, probe.id, 1_795_000_000) }] });
    expect((await socket.next("ack")).upto).toBe(1);
    await flush();
    await flush();
    expect(await credits(key)).toMatchObject({ current_balance: 1, reserved: 0, available: 1 });
    // Atlas's daily figures, from the past day's journal: the grant of 4 in, the 3 charged out.
    expect(await credits(key)).toMatchObject({
      estimated_daily_income: 4, estimated_daily_expenditure: 3, estimated_daily_balance: 1, estimated_runout_seconds: null, past_day_credits_spent: 3,
      last_date_credited: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), last_date_debited: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      calculation_time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });

    // Two more cost 6 and 1 is left: 1 is charged, the balance stays at 0, and the measurement is forced to stop.
    socket.send({ type: "results", results: [2, 3].map((seq) => ({ seq, result: pingResult(id, probe.id, 1_795_000_000 + seq) })) });
    expect((await socket.next("ack")).upto).toBe(3);
    await flush();
    expect(await credits(key)).toMatchObject({ current_balance: 0, reserved: 0, available: 0 });
    expect((await socket.next("stop")).msm_id).toBe(id);
    const msm = (await (await call(`/api/v2/measurements/${id}/`)).json()) as { status: { id: number; name: string } };
    expect(msm.status).toMatchObject({ id: 5, name: "Forced to stop" });
    const items = (await (await call("/api/v2/credits/expense-items/", { headers: { Authorization: `Key ${key}` } })).json()) as { results: { measurement: number; amount: number; detail: string }[] };
    expect(items.results).toEqual([
      expect.objectContaining({ measurement: id, amount: 1, detail: "2 results" }),
      expect.objectContaining({ measurement: id, amount: 3, detail: "1 results" }),
    ]);
    // Every result is still stored: credits decide what runs, never what is kept.
    expect(((await (await call(`/api/v2/measurements/${id}/results/`)).json()) as unknown[]).length).toBe(3);
  });

  it("pays a probe's owner 15 credits per connected minute, each minute once, carrying the seconds over", async () => {
    const host = await newKey("host", 0);
    const account = (await credits(host)).account;
    const probe = await enroll({ country_code: "DE", owner: account });
    await connect(probe);
    const registry = env.REGISTRY.getByName(REGISTRY_NAME);
    const since = (await registry.probe(probe.id))!.last_connected!;
    // The payout alarm is set while an owned probe is connected.
    await runInDurableObject(registry, async (_o, state) => expect(await state.storage.getAlarm()).not.toBeNull());
    expect(await registry.payout(since + 630)).toEqual({ credited: 150, pending: 0 });  // 10 minutes; 30 s carried
    expect(await registry.payout(since + 630)).toEqual({ credited: 0, pending: 0 });
    expect(await registry.payout(since + 660)).toEqual({ credited: 15, pending: 0 });  // the carried 30 s + 30 s
    const c = await credits(host, "?include=income_items");
    expect(c.current_balance).toBe(165);
    expect(c.income_items).toEqual([
      expect.objectContaining({ type: "probe_uptime", amount: 15 }), expect.objectContaining({ type: "probe_uptime", amount: 150 }),
    ]);
  });

  it("pays a probe's host 10 % of what its results cost, in whole credits, once however often a payout is retried", async () => {
    const host = await newKey("results-host", 0);
    const account = (await credits(host)).account;
    const probe = await enroll({ country_code: "NL", owner: account });
    const { socket } = await connect(probe);
    const user = await newKey("results-user", 10_000);
    // A periodic ping of 3 packets: 3 credits per result, so the host earns 0.3 per result. (Periodic: a one-off
    // takes one result per probe.)
    const id = ((await (await createPing(user, [{ type: "probes", value: String(probe.id), requested: 1 }], { packets: 3, interval: 60 })).json()) as { measurements: number[] }).measurements[0]!;
    await socket.next("measure");
    let seq = 0;
    const deliver = async (n: number) => {
      socket.send({ type: "results", results: Array.from({ length: n }, () => ++seq).map((s) => ({ seq: s, result: pingResult(id, probe.id, 1_795_000_000 + s) })) });
      expect((await socket.next("ack")).upto).toBe(seq);
    };
    const flush = () => post("/admin/controllers/weur-0/flush", {}, { Authorization: `Bearer ${ADMIN}` });
    const shares = async () => ((await credits(host, "?include=income_items")).income_items as { type: string; amount: number }[]).filter((i) => i.type === "probe_results");

    await deliver(20);
    await flush();
    expect(await shares()).toEqual([expect.objectContaining({ amount: 6 })]);
    await flush();
    expect(await shares()).toHaveLength(1);

    // 1.2 credits more are due, but within the hour since the last payout only 1,000 credits would be paid out.
    await deliver(4);
    await flush();
    expect(await shares()).toHaveLength(1);
    const controller = env.CONTROLLER.getByName("weur-0");
    // The share its results earned (the probe's mark, marks.ts) and what was paid of it (its payouts row).
    const row = () => runInDurableObject(controller, (o, state) => ({
      share_milli: (o as unknown as { marks: ProbeMarks }).marks.get(probe.id).share,
      paid_milli: state.storage.sql.exec<{ paid_milli: number }>("SELECT paid_milli FROM payouts WHERE probe_id = ?", probe.id).one().paid_milli,
    }));
    expect(await row()).toEqual({ share_milli: 7200, paid_milli: 6000 });
    // An hour later: the whole credit is paid, the 0.2 carried.
    await runInDurableObject(controller, (_o, state) => { state.storage.sql.exec("UPDATE payouts SET paid_at = paid_at - 3600"); });
    await flush();
    expect((await shares()).map((i) => i.amount)).toEqual([1, 6]);
    expect(await row()).toEqual({ share_milli: 7200, paid_milli: 7000 });

    // A payout sent but not recorded as paid (the controller restarted in between) is sent again and taken once.
    await runInDurableObject(controller, (_o, state) => {
      state.storage.sql.exec("UPDATE payouts SET paid_milli = 6000, paying_milli = 7000 WHERE probe_id = ?", probe.id);
    });
    await flush();
    expect((await shares()).map((i) => i.amount)).toEqual([1, 6]);
    expect((await credits(host)).current_balance).toBe(7);
    expect(await row()).toEqual({ share_milli: 7200, paid_milli: 7000 });
  });

  it("transfers free credits to another account, once per request id, and lists both sides' items", async () => {
    const from = await newKey("sender", 50);
    const to = await newKey("recipient", 0);
    const recipient = (await credits(to)).account;
    const send = (amount: number, request_id?: string) => post("/api/v2/credits/transfers/", { recipient, amount, request_id }, { Authorization: `Key ${from}` });
    expect((await send(20, "t-1")).status).toBe(201);
    expect((await send(20, "t-1")).status).toBe(201);  // a retry: transferred once
    expect(await credits(from)).toMatchObject({ current_balance: 30 });
    expect(await credits(to)).toMatchObject({ current_balance: 20 });
    const tooMuch = await send(31);
    expect(tooMuch.status).toBe(402);
    expect((await errorOf(tooMuch)).detail).toMatch(/31 wanted, 30 free/);
    expect((await errorOf(await send(0))).errors[0]).toMatchObject({ source: { pointer: "/amount" } });
    const received = await credits(to, "?include=income_items");
    expect(received.income_items).toEqual([expect.objectContaining({ type: "transfer_in", amount: 20 })]);
    const spent = (await (await call("/api/v2/credits/expense-items/", { headers: { Authorization: `Key ${from}` } })).json()) as { count: number; results: { type: string; amount: number; detail: string }[] };
    expect(spent).toMatchObject({ count: 1, results: [{ type: "transfer_out", amount: 20, detail: `to ${recipient}` }] });
    expect((await call("/api/v2/credits/")).status).toBe(403);
  });
});

describe("quotas (Atlas's defaults)", () => {
  it("refuses too many probes, too many results a day, and too many measurements of one target, naming the quota", async () => {
    const key = await newKey("quotas");
    const over = await createPing(key, [{ type: "area", value: "WW", requested: 600 }, { type: "country", value: "NL", requested: 600 }]);
    expect(over.status).toBe(400);
    expect((await errorOf(over)).detail).toBe("Quota exceeded: 1200 probes requested; a measurement may have at most 1000.");
    const busy = await createPing(key, [{ type: "area", value: "WW", requested: 1000 }], { interval: 60 });
    expect((await errorOf(busy)).detail).toBe("Quota exceeded: These measurements would bring the account to 1440000 results a day; at most 100000.");

    // 25 ongoing pings of one target run; the 26th is refused.
    const probe = await enroll({ country_code: "FR" });
    await connect(probe, { slots: 100 });
    for (let i = 0; i < 25; i++) {
      expect((await createPing(key, [{ type: "probes", value: String(probe.id), requested: 1 }], { target: "192.0.2.7", interval: 300 })).status).toBe(201);
    }
    const same = await createPing(key, [{ type: "probes", value: String(probe.id), requested: 1 }], { target: "192.0.2.7", interval: 300 });
    expect((await errorOf(same)).detail).toBe("Quota exceeded: 26 ongoing ping measurements of 192.0.2.7 for this account; at most 25.");
    // Another target is fine.
    expect((await createPing(key, [{ type: "probes", value: String(probe.id), requested: 1 }], { target: "192.0.2.8", interval: 300 })).status).toBe(201);
  });

  it("limits creation to 60 requests a minute per account, with Retry-After", async () => {
    const key = await newKey("hasty");
    for (let i = 0; i < 60; i++) expect((await createPing(key, [{ type: "country", value: "AQ", requested: 1 }])).status).toBe(201);
    const res = await createPing(key, [{ type: "country", value: "AQ", requested: 1 }]);
    expect(res.status).toBe(429);
    const retry = Number(res.headers.get("Retry-After"));
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(60);
    expect((await errorOf(res)).detail).toMatch(/at most 60 requests a minute per account; retry in \d+ s/);
    // Another account is not affected.
    expect((await createPing(await newKey("patient"), [{ type: "country", value: "AQ", requested: 1 }])).status).toBe(201);
  });
});

describe("reusing answers", () => {
  it("names an identical recent one-off in a warning, and with reuse: true answers with it at no cost", async () => {
    const first = await newKey("first asker");
    const tenth = await newKey("tenth asker", 1000);
    const probe = await enroll({ country_code: "IT" });
    const { socket } = await connect(probe, { slots: 10 });
    const ask = (key: string, extra: Record<string, unknown> = {}, target = "192.0.2.50") => post("/api/v2/measurements/", {
      definitions: [{ type: "ping", af: 4, target, description: `asked by ${key.slice(0, 4)}` }],
      probes: [{ type: "probes", value: String(probe.id), requested: 1 }], is_oneoff: true, ...extra,
    }, { Authorization: `Key ${key}` });
    const original = (await (await ask(first)).json()) as { measurements: number[]; warnings?: unknown };
    expect(original.warnings).toBeUndefined();
    const m1 = original.measurements[0]!;
    await socket.next("measure");

    // Asked again by another account: it runs as asked, and is told about the earlier one.
    const again = (await (await ask(tenth)).json()) as { measurements: number[]; warnings: { code: string; measurement: number; detail: string }[] };
    expect(again.measurements[0]).not.toBe(m1);
    expect(again.warnings).toEqual([{ code: "duplicate", measurement: m1, detail: expect.stringMatching(/same question .* send "reuse": true/) }]);
    await socket.next("measure");
    const spent = await credits(tenth);
    expect(spent.reserved).toBe(6);

    // With reuse: the earlier measurement is the answer, nothing is created or set aside.
    const reused = (await (await ask(tenth, { reuse: true })).json()) as { measurements: number[]; warnings: { measurement: number }[] };
    expect(reused.measurements).toEqual([again.measurements[0]]);
    expect(await credits(tenth)).toMatchObject({ reserved: spent.reserved, current_balance: spent.current_balance });
    // Another target is another question.
    expect(((await (await ask(tenth, {}, "192.0.2.51")).json()) as { warnings?: unknown }).warnings).toBeUndefined();
  });
});

describe("crowd signal", () => {
  it("raises one alert when five accounts measure the same target within ten minutes", async () => {
    const target = "192.0.2.99";
    const alertsFor = async () => ((await (await call("/api/v2/alerts/")).json()) as { results: { type: string; target: string; accounts: number; measurements: string[] }[] })
      .results.filter((a) => a.target === target);
    const keys = await Promise.all(Array.from({ length: 6 }, (_, i) => newKey(`crowd ${i}`)));
    for (const key of keys.slice(0, 4)) expect((await createPing(key, [{ type: "country", value: "AQ", requested: 1 }], { target })).status).toBe(201);
    expect(await alertsFor()).toEqual([]);
    await createPing(keys[4]!, [{ type: "country", value: "AQ", requested: 1 }], { target });
    const [alert] = await alertsFor();
    expect(alert).toMatchObject({ type: "crowd", target, accounts: 5 });
    expect(alert!.measurements).toHaveLength(5);
    expect(alert!.measurements[0]).toMatch(/\/api\/v2\/measurements\/\d+\/$/);
    // A sixth account in the same window: still the one alert.
    await createPing(keys[5]!, [{ type: "country", value: "AQ", requested: 1 }], { target });
    expect(await alertsFor()).toHaveLength(1);
  });
});

describe("participation requests", () => {
  it("adds probes to a running measurement (setting their cost aside), removes probes by id, and lists every request with its id", async () => {
    const key = await newKey("changer", 100_000);
    const a = await enroll({ country_code: "AT" }), b = await enroll({ country_code: "AT" });
    const pa = await connect(a), pb = await connect(b);
    const res = await createPing(key, [{ type: "probes", value: String(a.id), requested: 1 }], { interval: 3600, target: "192.0.2.60" });
    const id = ((await res.json()) as { measurements: number[] }).measurements[0]!;
    await pa.socket.next("measure");
    const reservedBefore = (await credits(key)).reserved;
    const change = (body: unknown, k = key) => post(`/api/v2/measurements/${id}/participation-requests/`, body, { Authorization: `Key ${k}` });

    const added = await change([{ action: "add", type: "probes", value: String(b.id), requested: 1 }]);
    expect(added.status).toBe(201);
    const addedBody = (await added.json()) as { request_ids: number[]; added: number[]; removed: number[] };
    expect(addedBody).toEqual({ request_ids: [expect.any(Number)], added: [b.id], removed: [] });
    expect((await pb.socket.next("measure")).assignment.msm_id).toBe(id);
    // One more probe for a day at 3 credits a result, 24 results: 72 more set aside.
    expect((await credits(key)).reserved).toBe(reservedBefore + 72);

    const removedBody = (await (await change([{ action: "remove", type: "probes", value: String(a.id) }])).json()) as { request_ids: number[] };
    expect(removedBody).toEqual({ request_ids: [expect.any(Number)], added: [], removed: [a.id] });
    expect((await pa.socket.next("stop")).msm_id).toBe(id);
    const msm = (await (await call(`/api/v2/measurements/${id}/`)).json()) as { probes: { id: number }[]; participant_count: number };
    expect(msm.probes.map((p) => p.id)).toEqual([b.id]);

    // As Atlas lists them: the creation's source, then each request, with ids and links.
    type Listed = { count: number; results: { id: number; action: string; type: string; value: string; requested: number | null; self: string }[] };
    const listed = (await (await call(`/api/v2/measurements/${id}/participation-requests/`)).json()) as Listed;
    expect(listed.count).toBe(3);
    expect(listed.results.map((r) => [r.action, r.type, r.value, r.requested])).toEqual([
      ["add", "probes", String(a.id), 1], ["add", "probes", String(b.id), 1], ["remove", "probes", String(a.id), null],
    ]);
    expect(listed.results.slice(1).map((r) => r.id)).toEqual([addedBody.request_ids[0], removedBody.request_ids[0]]);
    const one = await call(new URL(listed.results[1]!.self).pathname);
    expect(await one.json()).toMatchObject({ id: addedBody.request_ids[0], measurement: id, action: "add" });
    expect((await call("/api/v2/participation-requests/999999/")).status).toBe(404);
    // A field not known is refused by name (an add's or a remove's), with nothing changed; null is "not given".
    for (const [body, pointer] of [
      [[{ action: "add", type: "probes", value: String(a.id), requested: 1, requested_max: 3 }], "/0/requested_max"],
      [[{ action: "add", type: "country", value: "AT", requested: 1, tags: { inclde: ["x"] } }], "/0/tags/inclde"],
      [[{ action: "remove", type: "probes", value: String(b.id), reason: "x" }], "/0/reason"],
      [[{ action: "add", type: "probes", value: "x", requested: 1 }], "/0/value"],
    ] as const) {
      const refused = await change(body);
      expect(refused.status, JSON.stringify(body)).toBe(400);
      expect((await errorOf(refused)).errors.map((e) => e.source.pointer)).toContain(pointer);
    }
    expect(((await (await call(`/api/v2/measurements/${id}/participation-requests/`)).json()) as Listed).count).toBe(3);
    expect((await change([{ action: "remove", type: "probes", value: String(b.id), requested: null }])).status).toBe(201);

    expect((await change([{ action: "add", type: "probes", value: String(a.id), requested: 1 }], await newKey("stranger"))).status).toBe(403);
    expect((await errorOf(await change([{ action: "remove", type: "country", value: "AT" }]))).errors[0]!.source).toEqual({ pointer: "/0/type" });
  });
});

describe("API keys", () => {
  it("lists, creates and disables an account's keys; grants and validity windows are enforced", async () => {
    const admin = await newKey("owner key");
    const auth = (key: string) => ({ Authorization: `Key ${key}` });
    const listed = (await (await call("/api/v2/keys/", { headers: auth(admin) })).json()) as { count: number; results: { label: string; grants: { permission: string }[] }[] };
    expect(listed).toMatchObject({ count: 1, results: [{ label: "owner key" }] });
    expect(listed.results[0]!.grants.map((g) => g.permission)).toContain("manage_keys");

    const made = await post("/api/v2/keys/", { label: "read credits only", grants: ["get_credits"] }, auth(admin));
    expect(made.status).toBe(201);
    const reader = (await made.json()) as { key: string; uuid: string; grants: { permission: string }[] };
    expect(reader.grants).toEqual([{ permission: "get_credits", target: null }]);
    // Same account: it sees the same balance; it may not create measurements, nor manage keys.
    expect((await credits(reader.key)).account).toBe((await credits(admin)).account);
    const refused = await createPing(reader.key, [{ type: "country", value: "AQ", requested: 1 }]);
    expect(refused.status).toBe(403);
    expect((await errorOf(refused)).detail).toBe('This key may not do that: it lacks the "create_measurements" grant.');
    expect((await call("/api/v2/keys/", { headers: auth(reader.key) })).status).toBe(403);

    const later = (await (await post("/api/v2/keys/", { label: "from next year", valid_from: Math.floor(Date.now() / 1000) + 365 * 86_400 }, auth(admin))).json()) as { key: string };
    expect((await errorOf(await call("/api/v2/credits/", { headers: auth(later.key) }))).detail).toMatch(/valid only from \d{4}-/);
    const bad = await post("/api/v2/keys/", { label: "x", grants: ["launch_missiles"] }, auth(admin));
    expect((await errorOf(bad)).errors[0]!.source).toEqual({ pointer: "/grants/0" });

    const off = await call(`/api/v2/keys/${reader.uuid}/`, { method: "PATCH", headers: { ...auth(admin), "Content-Type": "application/json" }, body: JSON.stringify({ enabled: false }) });
    expect(await off.json()).toMatchObject({ uuid: reader.uuid, enabled: false });
    expect((await errorOf(await call("/api/v2/credits/", { headers: auth(reader.key) }))).detail).toBe("The provided API key does not exist or is disabled.");
    // Another account cannot touch this account's keys.
    const other = await newKey("other account");
    expect((await call(`/api/v2/keys/${reader.uuid}/`, { method: "PATCH", headers: { ...auth(other), "Content-Type": "application/json" }, body: JSON.stringify({ enabled: true }) })).status).toBe(404);
  });

  it("speaks Atlas's key shapes: grants with targets, ISO-8601 dates, detail, rename and delete", async () => {
    const admin = await newKey("owner key");
    const auth = (key: string) => ({ Authorization: `Key ${key}` });
    const json = { ...auth(admin), "Content-Type": "application/json" };
    // As Atlas's documentation writes a key: its singular permission name, a null target, a date without an offset (UTC).
    const made = await post("/api/v2/keys/", { label: "atlas-style", enabled: true, valid_from: "2026-01-01T00:00:00", valid_to: null,
      grants: [{ permission: "create_measurement", target: null }, { permission: "get_credits", target: null }] }, auth(admin));
    expect(made.status, await made.clone().text()).toBe(201);
    const key = (await made.json()) as { key: string; uuid: string };
    const detail = await call(`/api/v2/keys/${key.uuid}/`, { headers: auth(admin) });
    expect(await detail.json()).toMatchObject({
      uuid: key.uuid, label: "atlas-style", enabled: true, is_active: true, valid_from: "2026-01-01T00:00:00.000Z",
      grants: [{ permission: "create_measurements", target: null }, { permission: "get_credits", target: null }],
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    });
    expect((await createPing(key.key, [{ type: "country", value: "AQ", requested: 1 }])).status).not.toBe(403);
    // A grant scoped to one target is not something Vantage can honour: refused by name, not widened.
    const scoped = await post("/api/v2/keys/", { label: "scoped", grants: [{ permission: "get_credits", target: "probe:1000001" }] }, auth(admin));
    expect(scoped.status).toBe(400);
    expect((await errorOf(scoped)).errors[0]!.source.pointer).toMatch(/^\/grants\/0/);
    // A key made disabled, switched on later; renamed; then deleted, after which it is refused.
    const dormant = (await (await post("/api/v2/keys/", { label: "dormant", enabled: false, grants: ["get_credits"] }, auth(admin))).json()) as { key: string; uuid: string; is_active: boolean };
    expect(dormant.is_active).toBe(false);
    expect((await call("/api/v2/credits/", { headers: auth(dormant.key) })).status).toBe(403);
    const renamed = await call(`/api/v2/keys/${dormant.uuid}/`, { method: "PATCH", headers: json, body: JSON.stringify({ enabled: true, label: "awake" }) });
    expect(await renamed.json()).toMatchObject({ label: "awake", enabled: true, is_active: true });
    expect((await call("/api/v2/credits/", { headers: auth(dormant.key) })).status).toBe(200);
    const widen = await call(`/api/v2/keys/${dormant.uuid}/`, { method: "PATCH", headers: json, body: JSON.stringify({ grants: ["manage_keys"] }) });
    expect(widen.status).toBe(400);
    expect((await errorOf(widen)).errors[0]!.source.pointer).toBe("/grants");
    expect((await call(`/api/v2/keys/${dormant.uuid}/`, { method: "DELETE", headers: auth(admin) })).status).toBe(204);
    expect((await call("/api/v2/credits/", { headers: auth(dormant.key) })).status).toBe(403);
    expect((await call(`/api/v2/keys/${dormant.uuid}/`, { headers: auth(admin) })).status).toBe(404);
    expect((await call(`/api/v2/keys/${dormant.uuid}/`, { method: "DELETE", headers: auth(admin) })).status).toBe(404);
    // Another account sees none of them.
    const other = await newKey("other account");
    expect((await call(`/api/v2/keys/${key.uuid}/`, { headers: auth(other) })).status).toBe(404);
    expect((await call(`/api/v2/keys/${key.uuid}/`, { method: "DELETE", headers: auth(other) })).status).toBe(404);
  });
});

describe("probe sources", () => {
  it("reuses a measurement's probes (msm source), and says when fewer probes than requested could be given", async () => {
    const key = await newKey("reuser");
    const probe = await enroll({ country_code: "BE" });
    const { socket } = await connect(probe, { slots: 10 });
    const first = ((await (await createPing(key, [{ type: "probes", value: String(probe.id), requested: 1 }], { target: "192.0.2.70" })).json()) as { measurements: number[] }).measurements[0]!;
    await socket.next("measure");
    const res = await createPing(key, [{ type: "msm", value: String(first), requested: 5 }], { target: "192.0.2.71" });
    const body = (await res.json()) as { measurements: number[]; warnings: { code: string; measurement: number; detail: string }[] };
    expect((await socket.next("measure")).assignment.msm_id).toBe(body.measurements[0]);
    expect(body.warnings).toEqual([{ code: "fewer_probes", measurement: body.measurements[0], detail: "1 of the 5 probes requested could be given." }]);
    expect((await errorOf(await createPing(key, [{ type: "msm", value: "latest", requested: 1 }]))).errors[0]!.source).toEqual({ pointer: "/probes/0/value" });
  });

  it("matches probe tags: include and exclude", async () => {
    const key = await newKey("tagger");
    const home = await enroll({ country_code: "LU", tags: ["home", "ipv6-works"] });
    const dc = await enroll({ country_code: "LU", tags: ["datacentre"] });
    const [h, d] = [await connect(home), await connect(dc)];
    const probe = (await (await call(`/api/v2/probes/${home.id}/`)).json()) as { tags: { name: string; slug: string }[] };
    expect(probe.tags).toEqual([{ name: "home", slug: "home" }, { name: "ipv6-works", slug: "ipv6-works" }]);
    const only = async (tags: Record<string, string[]>, target: string) =>
      ((await (await createPing(key, [{ type: "country", value: "LU", requested: 2, tags }], { target })).json()) as { measurements: number[] }).measurements[0]!;
    const homes = await only({ include: ["home"] }, "192.0.2.80");
    expect((await h.socket.next("measure")).assignment.msm_id).toBe(homes);
    const others = await only({ exclude: ["home"] }, "192.0.2.81");
    expect((await d.socket.next("measure")).assignment.msm_id).toBe(others);
    expect(h.socket.has("measure") || d.socket.has("measure")).toBe(false);
  });
});
