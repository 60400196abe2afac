// The real RIPE Atlas client, unmodified: Debian's cousteau 1.4.2 (https only, `?key=`, no trailing slashes on
// results/stop, follows `next`) creates, reads, lists and stops measurements on the local edge's HTTPS front.
import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { PingResult } from "../../protocol/index.ts";
import { icmpUnavailable, useLocalSystem } from "./system.ts";

function cousteauUnavailable(): string | null {
  try {
    execFileSync("/usr/bin/python3", ["-c", "import ripe.atlas.cousteau"], { stdio: "ignore" });
    return null;
  } catch {
    return "Debian's python3-ripe-atlas-cousteau is not installed (npm test installs it when run as root)";
  }
}

const why = icmpUnavailable() ?? cousteauUnavailable();
if (why) console.warn(`skipping the cousteau test: ${why}`);

describe.skipIf(why !== null)("RIPE's cousteau client against the local edge", () => {
  const local = useLocalSystem("cousteau");

  it("creates, reads, lists and stops measurements", async () => {
    const { front, probes, key } = local();
    const server = new URL(front.url).host;
    // Asynchronously: the HTTPS front lives in this process and must keep serving while cousteau runs.
    const { stdout } = await promisify(execFile)("/usr/bin/python3", [join(import.meta.dirname, "fixtures/cousteau_client.py"), server, key, "3"], {
      encoding: "utf8", timeout: 120_000,
    });
    const out = JSON.parse(stdout) as {
      create: { ok: boolean; response: { measurements: number[] } };
      results: PingResult[];
      latest_probes: string[];
      measurement: { type: string; status: string; target: string; is_oneoff: boolean; result_url: string };
      probes: { id: number; country_code: string; asn_v4: number }[];
      probe: { id: number; status: string; country_code: string };
      stop: { ok: boolean; status: string };
      listed: number[];
      periodic_id: number;
      refused: { ok: boolean; response: { error: { status: number; errors: { source: { pointer: string } }[] } } };
    };
    expect(out.create.ok).toBe(true);
    const id = out.create.response.measurements[0]!;
    expect(out.results.map((r) => r.prb_id).sort()).toEqual(probes.map((p) => p.id).sort());
    for (const r of out.results) expect(r).toMatchObject({ msm_id: id, type: "ping", sent: 2, rcvd: 2, dst_addr: "127.0.0.1" });
    expect(out.latest_probes).toEqual(probes.map((p) => String(p.id)).sort());
    expect(out.measurement).toMatchObject({ type: "ping", target: "127.0.0.1", is_oneoff: true });
    expect(out.measurement.result_url).toMatch(new RegExp(`/api/v2/measurements/${id}/results/$`));
    // page_size=1 forces cousteau to follow three `next` links.
    expect(out.probes.map((p) => p.id)).toEqual(probes.map((p) => p.id).sort());
    expect(out.probe).toMatchObject({ status: "Connected" });
    expect(out.stop).toEqual({ ok: true, status: "Stopped" });
    expect(out.listed).toContain(out.periodic_id);
    expect(out.refused.ok).toBe(false);
    expect(out.refused.response.error.status).toBe(400);
    expect(out.refused.response.error.errors[0]!.source.pointer).toBe("/definitions/0/packets");
  });
});
