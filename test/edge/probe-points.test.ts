// GET /api/v2/probes/points/: every probe a filter matches, in one answer, as the console's map reads them — the same
// filters (and the same refusals) as the probe list, and the same probes it would list page after page.
import { describe, expect, it } from "vitest";
import { call, connect, enroll, errorOf } from "./harness.ts";

type Points = { count: number; fields: string[]; points: [number, number | null, number | null, number, number | null, string | null][] };
const points = async (query = "") => (await (await call(`/api/v2/probes/points/${query}`)).json()) as Points;

describe("probe points", () => {
  it("answers every matching probe with its place, status and network, as the list has them", async () => {
    // Places to four decimals (11 m): as much as a map shows.
    const here = await enroll({ country_code: "IS", asn_v4: 64511, latitude: 64.123456, longitude: -21.9 });
    const nowhere = await enroll({ country_code: "IS", asn_v4: 64512 });
    await connect(here);
    const iceland = await points("?country_code=IS");
    expect(iceland.fields).toEqual(["id", "longitude", "latitude", "status", "asn_v4", "country_code"]);
    expect(iceland.points).toEqual([[here.id, -21.9, 64.1235, 1, 64511, "IS"], [nowhere.id, null, null, 0, 64512, "IS"]]);
    expect(iceland.count).toBe(2);
    expect((await points("?country_code=IS&asn_v4=64512")).points.map((p) => p[0])).toEqual([nowhere.id]);
    expect((await points("?country_code=IS&status=1")).points.map((p) => p[0])).toEqual([here.id]);

    // Every probe the list would give, page after page, in the same order.
    const listed: number[] = [];
    for (let page = 1; ; page++) {
      const body = (await (await call(`/api/v2/probes/?page_size=500&page=${page}`)).json()) as { results: { id: number }[]; next: string | null };
      listed.push(...body.results.map((p) => p.id));
      if (!body.next) break;
    }
    expect((await points()).points.map((p) => p[0])).toEqual(listed);
  });

  it("is kept in the edge's cache for ten seconds: the same question is not asked of the registry again meanwhile", async () => {
    await enroll({ country_code: "FO", asn_v4: 64513 });
    const first = await call("/api/v2/probes/points/?country_code=FO");
    expect(first.headers.get("Cache-Control")).toBe("public, max-age=10");
    expect(((await first.json()) as Points).count).toBe(1);
    // A probe enrolled meanwhile shows in a fresh question at once, and in the cached one within ten seconds.
    await enroll({ country_code: "FO", asn_v4: 64514 });
    await new Promise((r) => setTimeout(r, 50));  // the cache is written after the answer (waitUntil)
    expect((await points("?country_code=FO")).count).toBe(1);
    expect((await points("?country_code=FO&status=0")).count).toBe(2);
  });

  it("refuses what the list refuses, naming the parameter", async () => {
    const bad = await call("/api/v2/probes/points/?country_code=Iceland");
    expect(bad.status).toBe(400);
    expect((await errorOf(bad)).errors[0]!.source.parameter).toBe("country_code");
    const unknown = await call("/api/v2/probes/points/?colour=blue");
    expect(unknown.status).toBe(400);
    expect((await errorOf(unknown)).errors[0]!.source.parameter).toBe("colour");
    expect((await points("?asn_v6=3333")).points).toEqual([]);
  });
});
