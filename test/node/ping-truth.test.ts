// Truth for ping on a real three-hop path with 20 ms of delay (TUN delay line) and random loss (nftables): the
// agent's median RTT is within 0.2 ms of iputils ping's over the same path in the same run, and every packet the
// loss rule dropped is counted as lost, no more, no less.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PingResult } from "../../protocol/index.ts";
import { LinePath } from "./lab.ts";
import { netnsUnavailable } from "./netns.ts";
import { missingPrograms } from "./servers.ts";

const why = netnsUnavailable() ?? missingPrograms("ping", "nft", "cc");
if (why) console.warn(`skipping the ping truth tests: ${why}`);
const fixture = join(import.meta.dirname, "fixtures", "measure-once.ts");
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2; };

describe.skipIf(why !== null)("ping over a delayed three-hop path", () => {
  let path: LinePath;
  beforeAll(async () => { path = await LinePath.create("pd", { delayMs: 20 }); });
  afterAll(() => path?.remove());

  it("matches iputils ping's median RTT within 0.2 ms", () => {
    const measure = () => JSON.parse(path.probe.exec(process.execPath, [fixture,
      JSON.stringify({ type: "ping", af: 4, target: path.targetAddr, packets: 16, size: 48, packet_interval: 200 })])) as PingResult;
    const reference = () => [...path.probe.exec("ping", ["-n", "-c", "16", "-i", "0.2", "-s", "48", path.targetAddr]).matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
    // Interleave the tools so drift in the delay line affects both alike.
    const ours: number[] = [], theirs: number[] = [];
    for (let round = 0; round < 2; round++) {
      const r = measure();
      expect(r).toMatchObject({ dst_addr: "10.0.3.2", src_addr: "10.0.1.2", sent: 16, rcvd: 16, ttl: 62 });
      ours.push(...r.result.map((x) => (x as { rtt: number }).rtt));
      theirs.push(...reference());
    }
    expect(theirs).toHaveLength(32);
    console.log(`ping truth: median RTT ${median(ours).toFixed(3)} ms (agent) vs ${median(theirs).toFixed(3)} ms (iputils ping), 32 packets each`);
    expect(median(theirs)).toBeGreaterThan(20);
    expect(Math.abs(median(ours) - median(theirs))).toBeLessThan(0.2);
  });
});

describe.skipIf(why !== null)("ping over a lossy path", () => {
  let path: LinePath;
  beforeAll(async () => { path = await LinePath.create("pl", { lossPct: 30 }); });
  afterAll(() => path?.remove());

  it("counts exactly the packets the network dropped", () => {
    const before = path.dropped();
    const r = JSON.parse(path.probe.exec(process.execPath, [fixture,
      JSON.stringify({ type: "ping", af: 4, target: path.targetAddr, packets: 16, size: 48, packet_interval: 50 })])) as PingResult;
    const dropped = path.dropped() - before;
    expect(r.sent).toBe(16);
    expect(r.sent - r.rcvd).toBe(dropped);
    expect(r.result.filter((x) => "x" in x)).toHaveLength(dropped);
    if (r.rcvd === 0) expect(r.min).toBe(-1);
  });
});
