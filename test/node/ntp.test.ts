// Truth for the NTP measurement: against a real chronyd in a test namespace, the header matches what Debian's sntp
// reads from the same server, and the offset agrees with sntp's (same clock on both ends, so both are ~0).
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NtpResult } from "../../protocol/index.ts";
import { netnsUnavailable, Netns, silentLink } from "./netns.ts";
import { missingPrograms, type Server, startChrony } from "./servers.ts";

const why = netnsUnavailable() ?? missingPrograms("chronyd", "sntp");
if (why) console.warn(`skipping the NTP truth tests: ${why}`);
const fixture = join(import.meta.dirname, "fixtures", "measure-once.ts");

describe.skipIf(why !== null)("ntp against chronyd, compared with sntp", () => {
  let ns: Netns;
  let chrony: Server;
  beforeAll(async () => {
    ns = new Netns("ntp");
    chrony = await startChrony(ns);
  });
  afterAll(async () => {
    await chrony?.stop();
    ns?.remove();
  });

  it("reports Atlas's NTP fields, agreeing with sntp", () => {
    const r = JSON.parse(ns.exec(process.execPath, [fixture, JSON.stringify({ type: "ntp", af: 4, target: "127.0.0.1", packets: 4, timeout: 1000 })])) as NtpResult;
    // sntp prints e.g. "2026-11-26 07:03:20.123456 (+0000) +0.000012 +/- 0.000123 127.0.0.1 s5 no-leap"
    const ref = ns.exec("sntp", ["-t", "2", "127.0.0.1"]);
    const m = ref.match(/([+-]\d+\.\d+) \+\/- (\d+\.\d+) 127\.0\.0\.1 s(\d+) (\S+)/);
    expect(m, ref).not.toBeNull();
    const [, sntpOffset, sntpError, sntpStratum, sntpLeap] = m!;
    expect(r).toMatchObject({
      type: "ntp", msm_name: "Ntp", proto: "UDP", af: 4, dst_addr: "127.0.0.1", dst_name: "127.0.0.1", src_addr: "127.0.0.1",
      version: 4, mode: "server", stratum: Number(sntpStratum), li: sntpLeap === "no-leap" ? "no" : "unknown",
    });
    expect(r.result).toHaveLength(4);
    for (const p of r.result) {
      if ("x" in p) throw new Error("a packet went unanswered on loopback");
      expect(p["receive-ts"]).toBeLessThanOrEqual(p["transmit-ts"]);
      expect(p["origin-ts"]).toBeLessThanOrEqual(p["final-ts"]);
      expect(p.rtt).toBeGreaterThanOrEqual(0);
      expect(p.rtt).toBeLessThan(0.05);
      // Each offset is only known to within half its round trip; the two tools must agree within both bounds.
      expect(Math.abs(p.offset - Number(sntpOffset))).toBeLessThanOrEqual(p.rtt / 2 + Number(sntpError) + 0.001);
      expect(Math.abs(p["origin-ts"] - (Date.now() / 1000 + 2_208_988_800))).toBeLessThan(60);
    }
    expect(r.precision).toBeGreaterThan(0);
    expect(r.precision).toBeLessThan(1);
    expect(r["ref-id"]).toMatch(/^\d+\.\d+\.\d+\.\d+$|^[A-Z]{1,4}$/);
  });
});

describe.skipIf(netnsUnavailable() !== null)("ntp to a server that never answers", () => {
  it("reports each packet as {x:*}", () => {
    const ns = silentLink("ntpto");
    try {
      const r = JSON.parse(ns.exec(process.execPath, [fixture, JSON.stringify({ type: "ntp", af: 4, target: "10.9.0.2", packets: 2, timeout: 200 })])) as NtpResult;
      expect(r.result).toEqual([{ x: "*" }, { x: "*" }]);
      expect(r.stratum).toBeUndefined();
      expect(r.src_addr).toBe("10.9.0.1");
    } finally {
      ns.remove();
    }
  });
});

describe.skipIf(netnsUnavailable() !== null)("ntp to a host with no NTP server", () => {
  it("reports the refusal, without waiting out the timeouts and without ending the agent", () => {
    // Port 123 closed: the kernel answers with ICMP port unreachable, an 'error' on the connected socket. Unheard, it
    // ended the agent process, which restarted, was given the measurement again, and ended again.
    const ns = new Netns("ntprefused");
    try {
      const started = Date.now();
      const r = JSON.parse(ns.exec(process.execPath, [fixture, JSON.stringify({ type: "ntp", af: 4, target: "127.0.0.1", packets: 3, timeout: 10_000 })])) as NtpResult;
      expect(r.result).toEqual([{ x: "*" }, { x: "*" }, { x: "*" }]);
      expect(r.error).toMatch(/ECONNREFUSED/);
      // Not three 10 s timeouts (30 s); the margin is for starting the process on a busy machine.
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      ns.remove();
    }
  });
});
