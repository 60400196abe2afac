// Truth for traceroute on real paths built in namespaces: hop addresses identical to Linux traceroute(8) and to
// scamper for ICMP, UDP and TCP; Paris keeps every probe on one branch of an ECMP diamond where classic
// traceroute wanders over both.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TracerouteResult } from "../../protocol/index.ts";
import { LinePath } from "./lab.ts";
import { netnsUnavailable } from "./netns.ts";
import { missingPrograms } from "./servers.ts";

const why = netnsUnavailable() ?? missingPrograms("traceroute", "scamper", "cc");
if (why) console.warn(`skipping the traceroute truth tests: ${why}`);
const fixture = join(import.meta.dirname, "fixtures", "measure-once.ts");

/** Hop number → first responding address ("*" for none), from the text of traceroute(8) or scamper. */
function hopsFromText(text: string): string[] {
  const hops: string[] = [];
  for (const line of text.split("\n")) {
    const m = line.match(/^\s*(\d+)\s+(\S+)/);
    if (m) hops[Number(m[1]) - 1] = m[2]!;
  }
  return hops;
}

function ourHops(r: TracerouteResult): string[] {
  return r.result.map((h) => ("result" in h ? (h.result.find((x) => "from" in x) as { from?: string } | undefined)?.from ?? "*" : "*"));
}

describe.skipIf(why !== null)("traceroute on a three-hop path", () => {
  let path: LinePath;
  beforeAll(async () => { path = await LinePath.create("tr", { delayMs: 5 }); });
  afterAll(() => path?.remove());

  const measure = (spec: Record<string, unknown>) => TracerouteResult.parse(JSON.parse(path.probe.exec(process.execPath, [fixture,
    JSON.stringify({ type: "traceroute", af: 4, target: path.targetAddr, packets: 2, response_timeout: 1000, max_hops: 8, ...spec })])));

  it.each([
    ["ICMP", ["-I"], "icmp-paris"],
    ["UDP", ["-U"], "udp-paris"],
    ["TCP", ["-T", "-p", "80"], "tcp"],
  ] as const)("%s: the same hops as traceroute(8) and scamper", (protocol, flags, method) => {
    const r = measure({ protocol });
    const linux = hopsFromText(path.probe.exec("traceroute", ["-n", "-q", "1", "-w", "1", "-m", "8", ...flags, path.targetAddr]));
    const scamper = hopsFromText(path.probe.exec("scamper", ["-c", `trace -P ${method} -q 1 -w 1 -m 8${protocol === "TCP" ? " -d 80" : ""}`, "-i", path.targetAddr]));
    expect(ourHops(r)).toEqual(["10.0.1.1", "10.0.2.2", "10.0.3.2"]);
    expect(linux).toEqual(ourHops(r));
    expect(scamper).toEqual(ourHops(r));
    expect(r).toMatchObject({ proto: protocol, src_addr: "10.0.1.2", dst_addr: "10.0.3.2", paris_id: 16, size: 48, msm_name: "Traceroute" });
    const last = (r.result[2] as { result: Record<string, unknown>[] }).result[0]!;
    expect(last.rtt as number).toBeGreaterThan(5);
    expect(last.ttl).toBe(62);
    if (protocol === "TCP") expect(last.flags).toBe("RA");
    if (protocol === "ICMP") expect(last).not.toHaveProperty("err");
    const first = (r.result[0] as { result: Record<string, unknown>[] }).result[0]!;
    expect(first).toMatchObject({ from: "10.0.1.1", ttl: 64, size: protocol === "TCP" ? 48 : 76 });
    expect(r.endtime).toBeGreaterThanOrEqual(r.timestamp);
  });

  it.each([["UDP", "-U"], ["ICMP", "-I"]] as const)("%s without privileges (IP_RECVERR): the same hops as traceroute(8) as nobody", (protocol, flag) => {
    // Let nobody (gid 65534) open ICMP ping sockets in the probe's namespace, as a distribution would for a group.
    path.probe.exec("sysctl", ["-qw", "net.ipv4.ping_group_range=0 2147483647"]);
    const asNobody = (cmd: string, args: string[]) => path.probe.exec("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", cmd, ...args]);
    const r = TracerouteResult.parse(JSON.parse(asNobody(process.execPath, [fixture,
      JSON.stringify({ type: "traceroute", af: 4, target: path.targetAddr, protocol, packets: 2, response_timeout: 1000, max_hops: 8 })])));
    // traceroute -I over ping sockets loses hops with its 16 probes in flight; -N 1 sends one at a time.
    const linux = hopsFromText(asNobody("traceroute", ["-n", "-q", "1", "-w", "1", "-m", "8", "-N", "1", flag, path.targetAddr]));
    expect(ourHops(r)).toEqual(["10.0.1.1", "10.0.2.2", "10.0.3.2"]);
    expect(linux).toEqual(ourHops(r));
    const first = (r.result[0] as { result: Record<string, unknown>[] }).result[0]!;
    expect(first).toMatchObject({ from: "10.0.1.1", ttl: 64, size: 76 });
    expect(first.rtt as number).toBeGreaterThan(0);
    // TCP cannot be done without raw sockets: said plainly, not silently skipped.
    const tcp = TracerouteResult.parse(JSON.parse(asNobody(process.execPath, [fixture,
      JSON.stringify({ type: "traceroute", af: 4, target: path.targetAddr, protocol: "TCP", packets: 1, max_hops: 3 })])));
    expect(tcp.result).toEqual([{ hop: 1, error: "TCP traceroute needs CAP_NET_RAW (raw sockets)" }]);
  });

  it("is cut off promptly when cancelled", async () => {
    // Inside the probe's namespace through the agent's own code: hops past the target never answer here because
    // the target is unreachable beyond r2 for 10.0.9.9; 30 hops × 3 probes × 1 s would take 90 s uncancelled.
    const started = Date.now();
    const out = await new Promise<string>((resolve) => {
      const child = spawn("ip", ["netns", "exec", path.probe.name, process.execPath, join(import.meta.dirname, "fixtures", "measure-once.ts"),
        JSON.stringify({ type: "traceroute", af: 4, target: "10.0.3.99", protocol: "ICMP", packets: 3, response_timeout: 1000, max_hops: 30 }),
        JSON.stringify({ abortAfterMs: 1500 })]);
      let text = "";
      child.stdout.on("data", (d) => (text += d));
      child.on("exit", () => resolve(text));
    });
    expect(Date.now() - started).toBeLessThan(6000);
    const r = TracerouteResult.parse(JSON.parse(out));
    expect(r.result).toEqual([{ hop: 1, error: "cancelled" }]);
  });

  // scamper 20211212's udp-paris gets no answers over IPv6 on this path (its probes are dropped before the first
  // hop), so the IPv6 UDP comparison uses its classic udp method.
  it.each([
    ["ICMP", ["-I"], "icmp-paris"],
    ["UDP", ["-U"], "udp"],
    ["TCP", ["-T", "-p", "80"], "tcp"],
  ] as const)("IPv6 %s: the same hops as traceroute -6 and scamper", (protocol, flags, method) => {
    const r = measure({ af: 6, target: path.targetAddr6, protocol });
    const linux = hopsFromText(path.probe.exec("traceroute", ["-6", "-n", "-q", "1", "-w", "1", "-m", "8", ...flags, path.targetAddr6]));
    const scamper = hopsFromText(path.probe.exec("scamper", ["-c", `trace -P ${method} -q 1 -w 1 -m 8${protocol === "TCP" ? " -d 80" : ""}`, "-i", path.targetAddr6]));
    expect(ourHops(r)).toEqual(["fd00:1::1", "fd00:2::2", "fd00:3::2"]);
    expect(linux).toEqual(ourHops(r));
    expect(scamper).toEqual(ourHops(r));
    expect(r).toMatchObject({ af: 6, proto: protocol, src_addr: "fd00:1::2", dst_addr: "fd00:3::2" });
    const first = (r.result[0] as { result: Record<string, unknown>[] }).result[0]!;
    expect(first).toMatchObject({ from: "fd00:1::1", ttl: 64 });
    expect(first.rtt as number).toBeLessThan(50);
    const last = (r.result[2] as { result: Record<string, unknown>[] }).result[0]!;
    if (protocol === "TCP") expect(last.flags).toBe("RA");
    else expect(last).not.toHaveProperty("err");
  });

  it("starts at first_hop and stops at max_hops with timeouts as {x:*}", () => {
    const r = measure({ protocol: "ICMP", first_hop: 2, max_hops: 2, packets: 1 });
    expect(r.result).toEqual([{ hop: 2, result: [expect.objectContaining({ from: "10.0.2.2" })] }]);
  });
});

describe.skipIf(why !== null)("traceroute through an ECMP diamond", () => {
  let path: LinePath;
  beforeAll(async () => { path = await LinePath.create("ec", { ecmp: true }); });
  afterAll(() => path?.remove());

  const hop2 = (spec: Record<string, unknown>) => {
    const r = TracerouteResult.parse(JSON.parse(path.probe.exec(process.execPath, [fixture,
      JSON.stringify({ type: "traceroute", af: 4, target: path.targetAddr, protocol: "UDP", packets: 16, response_timeout: 1000, max_hops: 8, ...spec })])));
    // The routers answered probes (a probe lost to ICMP rate limiting is not a branch).
    return new Set((r.result[1] as { result: { from?: string }[] }).result.flatMap((x) => (x.from ? [x.from] : [])));
  };

  it("Paris keeps one branch; classic traceroute sees both", () => {
    const paris = hop2({ paris: 7 });
    expect(paris.size).toBe(1);
    expect(["10.0.2.2", "10.0.4.2"]).toContain([...paris][0]);
    // 16 classic probes with changing ports land on one branch only with probability 2^-15.
    expect(hop2({ paris: 0 })).toEqual(new Set(["10.0.2.2", "10.0.4.2"]));
  });
});

describe.skipIf(why !== null)("traceroute through an MPLS router (RFC 4884/4950 ICMP extensions)", () => {
  let path: LinePath;
  beforeAll(async () => { path = await LinePath.create("mp", { mplsLabel: 24005 }); });
  afterAll(() => path?.remove());

  it.each(["ICMP", "UDP", "TCP"] as const)("%s: reports the label stack as traceroute -e and scamper read it", (protocol) => {
    const r = TracerouteResult.parse(JSON.parse(path.probe.exec(process.execPath, [fixture,
      JSON.stringify({ type: "traceroute", af: 4, target: path.targetAddr, protocol, packets: 1, response_timeout: 1000, max_hops: 8 })])));
    const hop2 = (r.result[1] as { result: Record<string, unknown>[] }).result[0]!;
    expect(hop2).toMatchObject({ from: "10.0.2.2", icmpext: { version: 2, rfc4884: 1, obj: [{ class: 1, type: 1, mpls: [{ label: 24005, exp: 0, s: 1, ttl: 1 }] }] } });
    expect((r.result[0] as { result: Record<string, unknown>[] }).result[0]).not.toHaveProperty("icmpext");
    const linux = path.probe.exec("traceroute", ["-n", "-q", "1", "-e", "-I", path.targetAddr]).match(/2 {2}10\.0\.2\.2 <MPLS:L=(\d+),E=(\d+),S=(\d+),T=(\d+)>/);
    expect(linux?.slice(1).map(Number)).toEqual([24005, 0, 1, 1]);
    const scamper = path.probe.exec("scamper", ["-c", "trace -P icmp-paris -q 1 -w 1", "-O", "json", "-i", path.targetAddr]);
    const label = JSON.parse(scamper.split("\n").find((l) => l.includes('"type":"trace"'))!).hops.find((h: { probe_ttl: number }) => h.probe_ttl === 2).icmpext[0].mpls_labels[0];
    expect([label.mpls_label, label.mpls_exp, label.mpls_s, label.mpls_ttl]).toEqual([24005, 0, 1, 1]);
  });
});

describe.skipIf(why !== null)("traceroute replies that come after their probe timed out", () => {
  let path: LinePath;
  beforeAll(async () => { path = await LinePath.create("lt", { delayMs: 300 }); });
  afterAll(() => path?.remove());

  it("reports them as late, without an RTT, under the hop they answer", () => {
    const r = TracerouteResult.parse(JSON.parse(path.probe.exec(process.execPath, [fixture,
      JSON.stringify({ type: "traceroute", af: 4, target: path.targetAddr, protocol: "ICMP", packets: 2, response_timeout: 200, max_hops: 2 })])));
    // Hop 1 answers at once; hop 2 lies behind the 300 ms delay line, past the 200 ms wait.
    expect((r.result[0] as { result: unknown[] }).result).toEqual([expect.objectContaining({ from: "10.0.1.1" }), expect.objectContaining({ from: "10.0.1.1" })]);
    const hop2 = (r.result[1] as { result: Record<string, unknown>[] }).result;
    expect(hop2.filter((x) => "x" in x)).toHaveLength(2);
    const late = hop2.filter((x) => "late" in x);
    expect(late.length).toBeGreaterThanOrEqual(1);
    expect(late[0]).toEqual({ from: "10.0.2.2", late: 1, size: 76, ttl: 63 });
  });
});

describe.skipIf(why !== null)("traceroute to an unreachable network", () => {
  let path: LinePath;
  beforeAll(async () => { path = await LinePath.create("un"); });
  afterAll(() => path?.remove());

  it("marks an unreachable destination with Atlas's err letter, as traceroute(8) does with !N", () => {
    // r1 has no route to 10.0.9.0/24: it answers "network unreachable" and the trace ends there.
    const r = TracerouteResult.parse(JSON.parse(path.probe.exec(process.execPath, [fixture,
      JSON.stringify({ type: "traceroute", af: 4, target: "10.0.9.9", protocol: "UDP", packets: 1, response_timeout: 1000, max_hops: 8 })])));
    expect(r.result).toEqual([{ hop: 1, result: [expect.objectContaining({ from: "10.0.1.1", err: "N" })] }]);
    // A router sends "unreachable" from a per-source token bucket (ip_error: 5 at once, then one a second) that is
    // global to the host (net.ipv4.route.error_cost has no per-namespace copy), so the agent's probes can spend it
    // all; traceroute(8) asks from an address of its own, with its own bucket.
    path.probe.ip("addr", "replace", "10.0.1.3/24", "dev", "p-r1");
    expect(path.probe.exec("traceroute", ["-n", "-s", "10.0.1.3", "-q", "1", "-w", "3", "-m", "3", "10.0.9.9"])).toMatch(/1 {2}10\.0\.1\.1 {2}[\d.]+ ms !N/);
  });
});
