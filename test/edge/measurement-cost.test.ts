// POST /api/v2/measurements/cost/: the price of a create body before anything is created — what creation then sets
// aside, the very errors creation gives, duplicate warnings, and no trace (no measurement, no reservation, no count
// toward the creation rate limit).
import { describe, expect, it } from "vitest";
import { call, connect, enroll, errorOf, newKey, post } from "./harness.ts";

type Price = { credits: number; available: number; enough: boolean; definitions: { credits_per_result: number; results_first_day: number; credits: number; reuses?: number }[]; warnings: { code: string; measurement: number }[] };
const auth = (key: string) => ({ Authorization: `Key ${key}` });
const credits = async (key: string) => (await (await call("/api/v2/credits/", { headers: auth(key) })).json()) as { reserved: number; available: number };
const mine = async (key: string) => ((await (await call("/api/v2/measurements/my/", { headers: auth(key) })).json()) as { count: number }).count;

const body = (extra: Record<string, unknown> = {}, definition: Record<string, unknown> = {}) => ({
  definitions: [{ type: "ping", af: 4, target: "192.0.2.7", description: "priced", packets: 4, interval: 900, ...definition }],
  probes: [{ type: "country", value: "PT", requested: 5 }],
  ...extra,
});

describe("pricing a request", () => {
  it("answers what creating sets aside, and creates, reserves and counts nothing", async () => {
    const key = await newKey("pricer", 50_000);
    const { socket } = await connect(await enroll({ country_code: "PT" }), { slots: 4 });
    // A periodic ping of 4 packets from 5 probes every 900 s: 4 credits × 5 probes × 96 runs in its first day.
    const res = await post("/api/v2/measurements/cost/", body(), auth(key));
    expect(res.status).toBe(200);
    const price = (await res.json()) as Price;
    expect(price).toEqual({ credits: 1920, available: 50_000, enough: true, warnings: [],
      definitions: [{ credits_per_result: 4, results_first_day: 480, credits: 1920 }] });
    expect(await mine(key)).toBe(0);
    expect(await credits(key)).toMatchObject({ reserved: 0, available: 50_000 });

    // 60 more prices in the minute: creation is not rate limited by them, and reserves exactly the price.
    for (let i = 0; i < 60; i++) expect((await post("/api/v2/measurements/cost/", body(), auth(key))).status).toBe(200);
    const created = await post("/api/v2/measurements/", body(), auth(key));
    expect(created.status).toBe(201);
    await socket.next("measure");
    expect(await credits(key)).toMatchObject({ reserved: 1920, available: 48_080 });

    // A one-off costs double, once per probe; a second definition is priced on its own.
    const two = (await (await post("/api/v2/measurements/cost/", {
      definitions: [{ type: "ping", af: 4, target: "192.0.2.8", description: "a", packets: 2 }, { type: "dns", af: 4, target: "192.0.2.8", description: "b", query_type: "A", query_argument: "example.com", protocol: "TCP" }],
      probes: [{ type: "area", value: "WW", requested: 3 }], is_oneoff: true,
    }, auth(key))).json()) as Price;
    expect(two.definitions).toEqual([{ credits_per_result: 4, results_first_day: 3, credits: 12 }, { credits_per_result: 40, results_first_day: 3, credits: 120 }]);
    expect(two.credits).toBe(132);
  });

  it("says when the account cannot pay, instead of refusing the price", async () => {
    const key = await newKey("poor", 100);
    const price = (await (await post("/api/v2/measurements/cost/", body(), auth(key))).json()) as Price;
    expect(price).toMatchObject({ credits: 1920, available: 100, enough: false });
    expect((await post("/api/v2/measurements/", body(), auth(key))).status).toBe(402);
  });

  it("gives the errors creation gives, at the field they name", async () => {
    const key = await newKey("typo");
    const bad = await post("/api/v2/measurements/cost/", body({}, { packets: 99, resolve_everything: true }), auth(key));
    expect(bad.status).toBe(400);
    const pointers = (await errorOf(bad)).errors.map((e) => e.source.pointer).sort();
    expect(pointers).toEqual(["/definitions/0/packets", "/definitions/0/resolve_everything"]);
    // An odd spelling of an address: the same error, word for word, as creating answers.
    const odd = body({}, { target: "127.1" });
    const priced = await errorOf(await post("/api/v2/measurements/cost/", odd, auth(key)));
    expect(priced.errors[0]!.source.pointer).toBe("/definitions/0/target");
    expect(priced).toEqual(await errorOf(await post("/api/v2/measurements/", odd, auth(key))));
    const quota = await post("/api/v2/measurements/cost/", body({ probes: [{ type: "msm", value: "999999", requested: 1 }] }), auth(key));
    expect(quota.status).toBe(400);
    expect((await errorOf(quota)).errors[0]!.source.pointer).toBe("/probes/0/value");
    expect((await post("/api/v2/measurements/cost/", body(), {})).status).toBe(403);  // Atlas: no key, 403
  });

  it("names an earlier identical one-off, and with reuse: true prices it at nothing", async () => {
    const probe = await enroll({ country_code: "UY" });
    const { socket } = await connect(probe, { slots: 4 });
    const oneoff = { is_oneoff: true, probes: [{ type: "probes", value: String(probe.id), requested: 1 }] };
    const first = await post("/api/v2/measurements/", body(oneoff, { interval: undefined }), auth(await newKey("first")));
    const earlier = ((await first.json()) as { measurements: number[] }).measurements[0]!;
    await socket.next("measure");
    const key = await newKey("second");
    const price = (await (await post("/api/v2/measurements/cost/", body(oneoff, { interval: undefined }), auth(key))).json()) as Price;
    expect(price.warnings).toEqual([expect.objectContaining({ code: "duplicate", measurement: earlier })]);
    expect(price.credits).toBe(8);
    const reused = (await (await post("/api/v2/measurements/cost/", body({ ...oneoff, reuse: true }, { interval: undefined }), auth(key))).json()) as Price;
    expect(reused).toMatchObject({ credits: 0, definitions: [{ credits: 0, reuses: earlier }] });
  });
});
