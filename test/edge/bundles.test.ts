// Archive bundles inside workerd: built from an hour's stored batches (public measurements only), byte-identical
// when rebuilt, listed from the day index, downloaded through a signed link (whole, or resumed with Range), and
// built by the hourly Cron Trigger.
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { DNSSTATS_PRIVATE, DNSSTATS_PUBLIC, sha256Hex } from "../../protocol/index.ts";
import worker from "../../workers/index.ts";
import { ADMIN, call, connect, createPing, enroll, env, errorOf, newKey, pingResult, post } from "./harness.ts";

const auth = { Authorization: `Bearer ${ADMIN}` };
const HOUR = "2026-11-20T06";
const at = (minute: number, hour = HOUR) => Date.parse(`${hour}:00:00Z`) / 1000 + minute * 60;

type Manifest = { name: string; count: number; bytes: number; sha256: string; first_timestamp: number; last_timestamp: number; download: string };

async function gunzipLines(bytes: Uint8Array): Promise<string[]> {
  const text = await new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"))).text();
  return text.split("\n").filter(Boolean);
}

/**
 * One public and one private measurement on a probe, each with results in `hour` (and one the hour after). Storage
 * is shared by this file's tests, so each uses an hour of its own.
 */
async function storeResults(hour: string): Promise<{ publicId: number; privateId: number }> {
  const key = await newKey("archivist");
  const probe = await enroll({ country_code: "NL" });
  const { socket } = await connect(probe);
  const make = async (extra: Record<string, unknown>) => {
    const id = ((await (await createPing(key, [{ type: "probes", value: String(probe.id), requested: 1 }], { interval: 3600, ...extra })).json()) as { measurements: number[] }).measurements[0]!;
    await socket.next("measure");
    return id;
  };
  const publicId = await make({});
  const privateId = await make({ is_public: false, target: "192.0.2.77" });
  let seq = 0;
  const send = async (results: ReturnType<typeof pingResult>[]) => {
    socket.send({ type: "results", results: results.map((result) => ({ seq: ++seq, result })) });
    await socket.next("ack");
  };
  await send([pingResult(publicId, probe.id, at(1, hour)), pingResult(privateId, probe.id, at(2, hour)), pingResult(publicId, probe.id, at(30, hour))]);
  await send([pingResult(publicId, probe.id, at(59, hour)), pingResult(publicId, probe.id, at(61, hour))]);
  expect((await post("/admin/controllers/weur-0/flush", {}, auth)).status).toBe(200);
  return { publicId, privateId };
}

describe("archive bundles", () => {
  it("builds an hour's bundle of public results, byte-identical when rebuilt, and lists it", async () => {
    const { publicId } = await storeResults(HOUR);
    const built = await post("/admin/bundles/build", { type: "ping", hour: HOUR }, auth);
    expect(built.status).toBe(201);
    const m = (await built.json()) as Manifest;
    expect(m).toMatchObject({ name: "ping-2026-11-20T0600", count: 3, first_timestamp: at(1), last_timestamp: at(59) });
    const again = (await (await post("/admin/bundles/build", { type: "ping", hour: HOUR }, auth)).json()) as Manifest;
    expect(again.sha256).toBe(m.sha256);
    expect(again.bytes).toBe(m.bytes);

    const list = (await (await call("/api/v2/bundles/?type=ping&from=2026-11-19&to=2026-11-20")).json()) as { count: number; results: Manifest[] };
    expect(list.count).toBe(1);
    expect(list.results[0]).toMatchObject({ name: m.name, sha256: m.sha256, count: 3 });

    // Download: a redirect to a link signed by the edge, whose bytes are the manifest's.
    const redirect = await call(`/api/v2/bundles/${m.name}/download`, { redirect: "manual" });
    expect(redirect.status).toBe(302);
    const link = redirect.headers.get("Location")!;
    expect(link).toMatch(/\/data\?expires=\d+&signature=/);
    const whole = new Uint8Array(await (await call(new URL(link).pathname + new URL(link).search)).arrayBuffer());
    expect(whole.byteLength).toBe(m.bytes);
    expect(await sha256Hex(whole)).toBe(m.sha256);
    const lines = await gunzipLines(whole);
    expect(lines.map((l) => (JSON.parse(l) as { msm_id: number }).msm_id)).toEqual([publicId, publicId, publicId]);

    // A resumed pull: the rest from an offset.
    const rest = await call(new URL(link).pathname + new URL(link).search, { headers: { Range: "bytes=10-" } });
    expect(rest.status).toBe(206);
    expect(rest.headers.get("Content-Range")).toBe(`bytes 10-${m.bytes - 1}/${m.bytes}`);
    expect(new Uint8Array(await rest.arrayBuffer())).toEqual(whole.slice(10));
  });

  it("bundles appliances' public data-source records by type, never their private ones", async () => {
    // A recent hour: data sources, like built-ins, are accepted up to a week old.
    const start = (Math.floor(Date.now() / 3_600_000) - 2) * 3600;
    const hour = new Date(start * 1000).toISOString().slice(0, 13);
    const probe = await enroll({ country_code: "NL" });
    const { socket } = await connect(probe);
    const minute = { start_time: start, stop_time: start + 60, capture: { packets: 2, not_dns: 0, fragments: 0, tcp_partial: 0, malformed: 0, messages: 2 },
      servers: [{ server: "192.0.2.53", queries: 1, responses: 1, clients: { estimate: 1, hll: { sparse: [33] } }, datasets: [] }] };
    const record = (msm: number, timestamp: number) => ({ fw: 5020, mver: "1.0.0", lts: 1, msm_id: msm, prb_id: probe.id, timestamp, from: "", type: "dnsstats", source: "eth1", minutes: [minute] });
    socket.send({ type: "results", results: [{ seq: 1, result: record(DNSSTATS_PUBLIC, start + 65) }, { seq: 2, result: record(DNSSTATS_PRIVATE, start + 75) }] });
    expect((await socket.next("ack")).upto).toBe(2);
    expect((await post("/admin/controllers/weur-0/flush", {}, auth)).status).toBe(200);
    const built = await post("/admin/bundles/build", { type: "dnsstats", hour }, auth);
    expect(built.status).toBe(201);
    const m = (await built.json()) as Manifest;
    expect(m).toMatchObject({ count: 1, first_timestamp: start + 65 });
    const link = (await call(`/api/v2/bundles/${m.name}/download`, { redirect: "manual" })).headers.get("Location")!;
    const lines = await gunzipLines(new Uint8Array(await (await call(new URL(link).pathname + new URL(link).search)).arrayBuffer()));
    expect(lines.map((l) => (JSON.parse(l) as { msm_id: number; prb_id: number }))).toEqual([expect.objectContaining({ msm_id: DNSSTATS_PUBLIC, prb_id: probe.id })]);
    socket.ws.close();
  });

  it("refuses altered or expired links, unknown bundles and bad requests, saying why", async () => {
    await storeResults("2026-11-20T07");
    const m = (await (await post("/admin/bundles/build", { type: "ping", hour: "2026-11-20T07" }, auth)).json()) as Manifest;
    const link = new URL((await call(`/api/v2/bundles/${m.name}/download`, { redirect: "manual" })).headers.get("Location")!);
    const expires = Number(link.searchParams.get("expires"));
    const forged = `${link.pathname}?expires=${expires + 3600}&signature=${link.searchParams.get("signature")}`;
    expect((await errorOf(await call(forged))).detail).toContain("not valid");
    expect((await call(`/api/v2/bundles/ping-2026-11-20T0600/data${link.search}`)).status).toBe(403);
    expect((await call("/api/v2/bundles/ping-2026-11-20T0900/")).status).toBe(404);
    expect((await call("/api/v2/bundles/?from=2026-01-01&to=2026-12-31")).status).toBe(400);
    expect((await errorOf(await call("/api/v2/bundles/?type=smoke"))).errors[0]!.source).toEqual({ parameter: "type" });
    expect((await post("/admin/bundles/build", { type: "ping", hour: "2026-11-20 06:00" }, auth)).status).toBe(400);
    expect(await (await post("/admin/bundles/build", { type: "dns", hour: HOUR }, auth)).json()).toMatchObject({ built: false });
    expect((await call(`/api/v2/bundles/${m.name}/download?via=s3`, { redirect: "manual" })).status).toBe(404);
  });

  it("is built by the hourly Cron Trigger for the hour before", async () => {
    await storeResults("2026-11-20T10");
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ scheduledTime: new Date("2026-11-20T11:05:00Z"), cron: "5 * * * *" }), env, ctx);
    await waitOnExecutionContext(ctx);
    const got = await call("/api/v2/bundles/ping-2026-11-20T1000/");
    expect(got.status).toBe(200);
    expect(((await got.json()) as Manifest).count).toBe(3);
  });
});
