// Atlas's list filters, ordering and field selection on /measurements/ and /probes/, each checked against the subset
// it must answer (not only a 200); a filter the list does not know is a 400 naming it, never ignored.
import { describe, expect, it } from "vitest";
import { call, connect, enroll, errorOf, newKey, post } from "./harness.ts";

const patch = (path: string, body: unknown, headers: Record<string, string>) =>
  call(path, { method: "PATCH", headers: { ...headers, "Content-Type": "application/json" }, body: JSON.stringify(body) });

const key = await newKey("filters");
const auth = { Authorization: `Key ${key}` };
const now = Math.floor(Date.now() / 1000);

async function create(def: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<number> {
  const res = await post("/api/v2/measurements/", {
    definitions: [{ type: "ping", af: 4, target: "192.0.2.1", description: "plain", ...def }],
    probes: [{ type: "area", value: "WW", requested: 1 }], is_oneoff: true, ...extra,
  }, auth);
  expect(res.status, await res.clone().text()).toBe(201);
  return ((await res.json()) as { measurements: number[] }).measurements[0]!;
}
const ids = async (query: string) => {
  const res = await call(`/api/v2/measurements/my/?${query}`, { headers: auth });
  expect(res.status, await res.clone().text()).toBe(200);
  return ((await res.json()) as { results: { id: number }[] }).results.map((m) => m.id);
};
const sorted = (xs: number[]) => [...xs].sort((a, b) => b - a);
/** The list answers 400 with Atlas's error body naming `parameter`. */
async function refusedNaming(path: string, parameter: string): Promise<void> {
  const res = await call(path);
  expect(res.status).toBe(400);
  expect((await errorOf(res)).errors[0]!.source).toEqual({ parameter });
}

describe("measurement filters", async () => {
  const v4 = await create({ description: "Anycast check of k-root", target: "193.0.14.129", tags: ["roots", "weekly"] });
  const v6 = await create({ af: 6, target: "2001:7fd::1", description: "k-root over IPv6", tags: ["roots"] });
  const later = await create({ description: "plain 100%_ sure", target: "198.51.100.7", interval: 300 }, { is_oneoff: false, start_time: now + 7200 });
  const all = [v4, v6, later];

  it.each([
    ["af=6", [v6]],
    ["af=4", [v4, later]],
    ["target=193.0.14.129", [v4]],
    ["target__contains=0.14", [v4]],
    ["target__startswith=2001:", [v6]],
    ["description=k-root over IPv6", [v6]],
    ["description__contains=k-root", [v4, v6]],
    ["description__startswith=Anycast", [v4]],
    ["search=K-ROOT", [v4, v6]],
    ["search=100%25_", [later]],
    ["search=100%25x", []],
    ["tags=roots", [v4, v6]],
    ["tags=roots,weekly", [v4]],
    [`id=${v4},${later}`, [v4, later]],
    [`id__in=${v6}`, [v6]],
    [`start_time__gt=${now + 3600}`, [later]],
    [`start_time__lte=${now + 3600}`, [v4, v6]],
    ["is_oneoff=false", [later]],
    ["type=ping&af=4&search=plain", [later]],
  ])("%s", async (query, want) => {
    expect((await ids(query)).filter((id) => all.includes(id))).toEqual(sorted(want));
  });

  it("takes ISO-8601 times, sorts, and selects fields", async () => {
    expect((await ids(`start_time__gte=${new Date((now + 3600) * 1000).toISOString()}`)).filter((id) => all.includes(id))).toEqual([later]);
    expect((await ids("sort=id")).filter((id) => all.includes(id))).toEqual([v4, v6, later]);
    expect((await ids("sort=-start_time")).filter((id) => all.includes(id))[0]).toBe(later);
    const res = await call(`/api/v2/measurements/my/?id=${v4}&fields=target,af,url`, { headers: auth });
    // A field these objects do not have (ripe-atlas measurement-search --field url asks for one) is simply absent.
    expect(((await res.json()) as { results: unknown[] }).results).toEqual([{ id: v4, target: "193.0.14.129", af: 4 }]);
  });

  it.each([
    ["an unknown filter", "colour=red", "colour"],
    ["a misspelt one", "descripton=x", "descripton"],
    ["an unknown operator", "start_time__ne=5", "start_time__ne"],
    ["a bad time", "stop_time__lt=yesterday", "stop_time__lt"],
    ["a bad af", "af=5", "af"],
    ["an unknown type", "type=telepathy", "type"],
    ["an unknown sort", "sort=-colour", "sort"],
  ])("refuses %s with a 400 naming the parameter", (_what, query, parameter) => refusedNaming(`/api/v2/measurements/?${query}`, parameter));
});

describe("probe filters", async () => {
  const amsterdam = await enroll({ country_code: "NL", latitude: 52.37, longitude: 4.9, prefix_v4: "192.0.2.0/24", tags: ["office"] });
  const utrecht = await enroll({ country_code: "NL", latitude: 52.09, longitude: 5.12, prefix_v4: "198.51.100.0/24" });
  const sydney = await enroll({ country_code: "AU", latitude: -33.87, longitude: 151.21, prefix_v4: "203.0.113.0/24" });
  const ours = [amsterdam.id, utrecht.id, sydney.id];
  const probeIds = async (query: string) => {
    const res = await call(`/api/v2/probes/?page_size=500&${query}`);
    expect(res.status, await res.clone().text()).toBe(200);
    return ((await res.json()) as { results: { id: number }[] }).results.map((p) => p.id).filter((id) => ours.includes(id));
  };

  it.each([
    // Atlas's radius=lat,lng:km, as `ripe-atlas probe-search --center 52.37,4.9 --radius 50` sends it.
    ["within 50 km of Amsterdam", "radius=52.37,4.9:50", () => [amsterdam.id, utrecht.id]],
    ["within 10 km of Amsterdam", "radius=52.37,4.9:10", () => [amsterdam.id]],
    ["within 1,000 km of Sydney", "radius=-33.9,151.2:1000", () => [sydney.id]],
    ["south of the equator", "latitude__lt=0", () => [sydney.id]],
    ["a band of longitude", "longitude__gte=5&longitude__lt=6", () => [utrecht.id]],
    ["prefix_v4", "prefix_v4=198.51.100.0/24", () => [utrecht.id]],
    ["prefix, either family", "prefix=192.0.2.0/24", () => [amsterdam.id]],
    ["an IPv6 prefix (none recorded)", "prefix_v6=2001:db8::/32", () => []],
    ["tags", "tags=office", () => [amsterdam.id]],
    ["country and sort", "country_code=NL&sort=-id", () => [utrecht.id, amsterdam.id]],
    ["ids as a list", `id=${sydney.id},${amsterdam.id}`, () => [amsterdam.id, sydney.id]],
    ["anchors (Vantage has none yet)", "is_anchor=true", () => []],
    ["an IPv6 ASN (none recorded)", "asn_v6=3333", () => []],
    ["public probes (all are)", "is_public=true", () => [amsterdam.id, utrecht.id, sydney.id]],
  ])("%s", async (_what, query, want) => {
    expect(await probeIds(query)).toEqual(want());
  });

  it.each([
    ["a radius without its point", "radius=10", "radius"],
    ["a radius off the globe", "radius=91,0:5", "radius"],
    ["a latitude that is not one", "latitude__gt=north", "latitude__gt"],
    ["an unknown filter", "colour=red", "colour"],
    ["a prefix that is not one", "prefix_v4=banana", "prefix_v4"],
  ])("refuses %s with a 400 naming the parameter", (_what, query, parameter) => refusedNaming(`/api/v2/probes/?${query}`, parameter));
});

describe("the resources Atlas users script against", () => {
  it("PATCH a measurement: its owner changes the description and makes it public, never private again", async () => {
    const id = await create({ description: "before", is_public: false });
    const other = { Authorization: `Key ${await newKey("someone else")}` };
    const object = async () => (await (await call(`/api/v2/measurements/${id}/`, { headers: auth })).json()) as { description: string; is_public: boolean };
    expect((await call(`/api/v2/measurements/${id}/`)).status).toBe(403);  // private: not for anonymous readers
    expect((await patch(`/api/v2/measurements/${id}/`, { description: "after" }, auth)).status).toBe(200);
    expect(await object()).toMatchObject({ description: "after", is_public: false });
    expect((await patch(`/api/v2/measurements/${id}/`, { description: "mine now" }, other)).status).toBe(403);
    const unknown = await patch(`/api/v2/measurements/${id}/`, { target: "192.0.2.99" }, auth);
    expect(unknown.status).toBe(400);
    expect((await errorOf(unknown)).errors[0]!.source).toEqual({ pointer: "/target" });
    expect((await patch(`/api/v2/measurements/${id}/`, { is_public: true, description: null }, auth)).status).toBe(200);
    expect(await object()).toMatchObject({ description: "after", is_public: true });
    expect((await call(`/api/v2/measurements/${id}/`)).status).toBe(200);
    const back = await patch(`/api/v2/measurements/${id}/`, { is_public: false }, auth);
    expect(back.status).toBe(400);
    expect((await errorOf(back)).errors[0]!.source).toEqual({ pointer: "/is_public" });
    expect((await patch("/api/v2/measurements/99999999/", { description: "x" }, auth)).status).toBe(404);
  });

  it("/probes/{id}/measurements/ lists the measurements a probe takes part in", async () => {
    const p = await enroll({ country_code: "FI" });
    const { socket } = await connect(p);
    const res = await post("/api/v2/measurements/", { definitions: [{ type: "ping", af: 4, target: "192.0.2.1", description: "on p" }],
      probes: [{ type: "probes", value: String(p.id), requested: 1 }], is_oneoff: true }, auth);
    const id = ((await res.json()) as { measurements: number[] }).measurements[0]!;
    await socket.next("measure");
    const listed = (await (await call(`/api/v2/probes/${p.id}/measurements/`)).json()) as { results: { id: number }[] };
    expect(listed.results.map((m) => m.id)).toEqual([id]);
    expect((await call("/api/v2/probes/99999999/measurements/")).status).toBe(404);
    socket.ws.close();
  });

  it("takes Atlas's region sources as areas", async () => {
    const res = await post("/api/v2/measurements/", { definitions: [{ type: "ping", af: 4, target: "192.0.2.1", description: "r" }],
      probes: [{ type: "region", value: "North-Central", requested: 1 }], is_oneoff: true }, auth);
    expect(res.status).toBe(201);
    const bad = await post("/api/v2/measurements/", { definitions: [{ type: "ping", af: 4, target: "192.0.2.1", description: "r" }],
      probes: [{ type: "region", value: "Atlantis", requested: 1 }], is_oneoff: true }, auth);
    expect((await errorOf(bad)).errors[0]!.source).toEqual({ pointer: "/probes/0/value" });
  });

  it("/probes/my/ lists the probes the key's account hosts; anchors and anchor measurements are empty lists", async () => {
    const host = await newKey("host");
    const account = ((await (await call("/api/v2/credits/", { headers: { Authorization: `Key ${host}` } })).json()) as { account: string }).account;
    const hosted = await enroll({ country_code: "SE", owner: account });
    await enroll({ country_code: "SE" });
    const mine = (await (await call("/api/v2/probes/my/", { headers: { Authorization: `Key ${host}` } })).json()) as { count: number; results: { id: number }[] };
    expect(mine.results.map((p) => p.id)).toEqual([hosted.id]);
    expect((await call("/api/v2/probes/my/")).status).toBe(403);
    for (const path of ["/api/v2/anchors/", "/api/v2/anchor-measurements/"]) {
      expect(await (await call(path)).json()).toEqual({ count: 0, next: null, previous: null, results: [] });
    }
  });
});
