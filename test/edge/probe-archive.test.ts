// Atlas's probe archive: every probe as it stood on a day, written once per day by the hourly cron and served as
// stored; a later change to a probe does not rewrite the day that is past.
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../workers/index.ts";
import { snapshotProbes } from "../../workers/probe-archive.ts";
import { call, enroll, env, errorOf } from "./harness.ts";

type Archive = { date: string; count: number; next: null; previous: null; results: { id: number; country_code: string }[] };

describe("probe archive", () => {
  it("keeps each day's snapshot of every probe, written once, and answers it by date", async () => {
    const a = await enroll({ country_code: "FI" }), b = await enroll({ country_code: "EE" });
    const listed = (await (await call("/api/v2/probes/?page_size=500")).json()) as { count: number; results: unknown[] };
    expect(await snapshotProbes(env, "2026-03-01")).toBe(true);
    // The cron runs every hour: the day's snapshot is made once.
    await enroll({ country_code: "LV" });
    expect(await snapshotProbes(env, "2026-03-01")).toBe(false);

    const res = await call("/api/v2/probes/archive/?date=2026-03-01");
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toBe("application/json");
    const day = (await res.json()) as Archive;
    expect(day).toMatchObject({ date: "2026-03-01", count: listed.count, next: null, previous: null });
    expect(day.results).toEqual(listed.results);
    expect(day.results.filter((p) => p.id === a.id || p.id === b.id).map((p) => p.country_code)).toEqual(["FI", "EE"]);
    // The next day sees the probe that came since.
    await snapshotProbes(env, "2026-03-02");
    expect(((await (await call("/api/v2/probes/archive/?date=2026-03-02")).json()) as Archive).count).toBe(listed.count + 1);
  });

  it("is written by the hourly cron on its first run of the day", async () => {
    await enroll({ country_code: "LT" });
    expect((await call("/api/v2/probes/archive/?date=2026-04-10")).status).toBe(404);
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ scheduledTime: new Date("2026-04-10T00:05:00Z"), cron: "5 * * * *" }), env, ctx);
    await waitOnExecutionContext(ctx);
    const day = (await (await call("/api/v2/probes/archive/?date=2026-04-10")).json()) as Archive;
    expect(day.results.some((p) => p.country_code === "LT")).toBe(true);
  });

  it("says what is wrong with a date, and which days it does not have", async () => {
    for (const date of ["2026-13-01", "2026-02-30", "yesterday", "2026-3-1"]) {
      const r = await call(`/api/v2/probes/archive/?date=${date}`);
      expect(r.status, date).toBe(400);
      expect((await errorOf(r)).errors[0]!.source.parameter).toBe("date");
    }
    const missing = await call("/api/v2/probes/archive/?date=2001-01-01");
    expect(missing.status).toBe(404);
    expect((await errorOf(missing)).detail).toContain("No probe archive for 2001-01-01");
    expect((await errorOf(await call("/api/v2/probes/archive/?date=2999-01-01"))).detail).toContain("has not come yet");
    expect((await call("/api/v2/probes/archive/?country_code=FI")).status).toBe(400);
  });
});
