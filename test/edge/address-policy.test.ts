// The address policy (protocol/address-policy.ts) on 150+ spellings: each row names a spelling, the range it
// reaches (the IANA special-purpose block, by CIDR, or "public") and so whether a measurement may aim at it. Run
// inside workerd, where the edge uses it; the agent uses the same module (test/node/agent.test.ts).
import { describe, expect, it } from "vitest";
import { inCidr, judgeAddress, targetRefusal } from "../../protocol/address-policy.ts";
import { isTarget } from "../../protocol/net.ts";

// [spelling, the range it reaches ("public" when none refuses it)]
const TABLE: [string, string][] = [
  // IPv4 loopback in every form inet_aton accepts
  ["127.0.0.1", "127.0.0.0/8"], ["127.1", "127.0.0.0/8"], ["127.0.1", "127.0.0.0/8"], ["2130706433", "127.0.0.0/8"],
  ["0x7f000001", "127.0.0.0/8"], ["0X7F000001", "127.0.0.0/8"], ["0x7f.0.0.1", "127.0.0.0/8"], ["0x7f.1", "127.0.0.0/8"],
  ["0177.0.0.1", "127.0.0.0/8"], ["0177.1", "127.0.0.0/8"], ["017700000001", "127.0.0.0/8"], ["127.255.255.254", "127.0.0.0/8"],
  ["127.000.000.001", "127.0.0.0/8"], ["0x7f.0x0.0x0.0x1", "127.0.0.0/8"], ["127.0.0.01", "127.0.0.0/8"],
  // this network
  ["0.0.0.0", "0.0.0.0/32"], ["0", "0.0.0.0/32"], ["0x0", "0.0.0.0/32"], ["0.1.2.3", "0.0.0.0/8"], ["00.0.0.0", "0.0.0.0/32"],
  // private use
  ["10.0.0.1", "10.0.0.0/8"], ["10.1", "10.0.0.0/8"], ["167772161", "10.0.0.0/8"], ["0xa000001", "10.0.0.0/8"], ["012.0.0.1", "10.0.0.0/8"],
  ["10.255.255.255", "10.0.0.0/8"], ["172.16.0.1", "172.16.0.0/12"], ["172.31.255.254", "172.16.0.0/12"], ["0xac.0x10.0.1", "172.16.0.0/12"],
  ["192.168.1.1", "192.168.0.0/16"], ["192.168.257", "192.168.0.0/16"], ["3232235777", "192.168.0.0/16"], ["0xc0a80101", "192.168.0.0/16"],
  ["0300.0250.1.1", "192.168.0.0/16"], ["0xc0.0xa8.1.1", "192.168.0.0/16"],
  // CGNAT, link-local and cloud metadata
  ["100.64.0.1", "100.64.0.0/10"], ["100.127.255.255", "100.64.0.0/10"], ["169.254.169.254", "169.254.0.0/16"], ["169.254.43518", "169.254.0.0/16"],
  ["2852039166", "169.254.0.0/16"], ["0xa9fea9fe", "169.254.0.0/16"], ["0251.0376.0251.0376", "169.254.0.0/16"], ["169.254.0.1", "169.254.0.0/16"],
  // IETF, documentation, benchmarking, multicast, reserved, broadcast
  ["192.0.0.1", "192.0.0.0/29"], ["192.0.0.8", "192.0.0.8/32"], ["192.0.0.100", "192.0.0.0/24"], ["192.0.0.170", "192.0.0.170/32"],
  ["192.0.2.1", "192.0.2.0/24"], ["198.51.100.7", "198.51.100.0/24"], ["203.0.113.9", "203.0.113.0/24"], ["198.18.0.1", "198.18.0.0/15"],
  ["198.19.255.1", "198.18.0.0/15"], ["192.88.99.1", "192.88.99.0/24"], ["224.0.0.1", "224.0.0.0/4"], ["239.255.255.250", "224.0.0.0/4"],
  ["0xe0000001", "224.0.0.0/4"], ["240.0.0.1", "240.0.0.0/4"], ["254.1.2.3", "240.0.0.0/4"], ["255.255.255.255", "255.255.255.255/32"],
  ["4294967295", "255.255.255.255/32"], ["0xffffffff", "255.255.255.255/32"],
  // public IPv4, including the globally reachable special blocks
  ["193.0.14.129", "public"], ["8.8.8.8", "public"], ["134744072", "public"], ["0x8080808", "public"], ["010.0.0.1", "public"],
  ["1.1", "public"], ["100.63.255.255", "public"], ["100.128.0.0", "public"], ["172.15.255.255", "public"], ["172.32.0.0", "public"],
  ["169.253.255.255", "public"], ["192.0.0.9", "public"], ["192.0.0.10", "public"], ["192.31.196.1", "public"], ["192.52.193.1", "public"],
  ["192.175.48.6", "public"], ["198.17.255.255", "public"], ["198.20.0.0", "public"], ["223.255.255.255", "public"], ["11.0.0.1", "public"],
  // IPv6 loopback and unspecified in every spelling
  ["::1", "::1/128"], ["0:0:0:0:0:0:0:1", "::1/128"], ["0000:0000:0000:0000:0000:0000:0000:0001", "::1/128"], ["::0:1", "::1/128"],
  ["0::1", "::1/128"], ["::", "::/128"], ["0:0:0:0:0:0:0:0", "::/128"], ["::0", "::/128"],
  // IPv4-mapped, dotted and hex, mixed case
  ["::ffff:127.0.0.1", "127.0.0.0/8"], ["::FFFF:127.0.0.1", "127.0.0.0/8"], ["::ffff:7f00:1", "127.0.0.0/8"], ["::ffff:7F00:0001", "127.0.0.0/8"],
  ["0:0:0:0:0:ffff:127.0.0.1", "127.0.0.0/8"], ["::ffff:10.0.0.1", "10.0.0.0/8"], ["::ffff:a00:1", "10.0.0.0/8"], ["::ffff:169.254.169.254", "169.254.0.0/16"],
  ["::ffff:a9fe:a9fe", "169.254.0.0/16"], ["::ffff:192.168.0.1", "192.168.0.0/16"], ["::ffff:c0a8:1", "192.168.0.0/16"], ["::ffff:0.0.0.0", "0.0.0.0/32"],
  ["::ffff:8.8.8.8", "::ffff:0:0/96"],
  // IPv4-compatible (deprecated)
  ["::127.0.0.1", "127.0.0.0/8"], ["::7f00:1", "127.0.0.0/8"], ["0:0:0:0:0:0:127.0.0.1", "127.0.0.0/8"], ["::10.0.0.1", "10.0.0.0/8"],
  ["::a9fe:a9fe", "169.254.0.0/16"], ["::8.8.8.8", "::/96"],
  // NAT64 (well-known prefix carries its IPv4 address; local-use NAT64 is never public)
  ["64:ff9b::127.0.0.1", "127.0.0.0/8"], ["64:ff9b::7f00:1", "127.0.0.0/8"], ["64:FF9B::A9FE:A9FE", "169.254.0.0/16"], ["64:ff9b::10.0.0.1", "10.0.0.0/8"],
  ["64:ff9b::c0a8:101", "192.168.0.0/16"], ["64:ff9b::808:808", "public"], ["64:ff9b::8.8.8.8", "public"], ["64:ff9b:1::1", "64:ff9b:1::/48"],
  ["64:ff9b:1::808:808", "64:ff9b:1::/48"],
  // 6to4 carrying private, loopback and public addresses
  ["2002:7f00:1::", "127.0.0.0/8"], ["2002:a00:1::1", "10.0.0.0/8"], ["2002:c0a8:101::1", "192.168.0.0/16"], ["2002:a9fe:a9fe::", "169.254.0.0/16"],
  ["2002:808:808::1", "public"], ["2002:0:0::1", "0.0.0.0/32"],
  // Teredo: server and client (inverted) addresses
  ["2001:0:4136:e378:8000:63bf:f5ff:fffe", "10.0.0.0/8"], ["2001:0:a00:1::1", "10.0.0.0/8"], ["2001:0:808:808:0:0:f7f7:f7f7", "public"],
  ["2001:0:808:808::80ff:fffe", "127.0.0.0/8"], ["2001::808:808:0:0:5601:5601", "169.254.0.0/16"],
  // link-local (with zone ids), ULA (cloud metadata), site-local, multicast
  ["fe80::1", "fe80::/10"], ["FE80::1", "fe80::/10"], ["fe80::1%eth0", "fe80::/10"], ["fe80::1%1", "fe80::/10"], ["febf:ffff::1", "fe80::/10"],
  ["fe80:0000:0000:0000:0000:0000:0000:0001", "fe80::/10"], ["fd00:ec2::254", "fc00::/7"], ["FD00:EC2::254", "fc00::/7"], ["fc00::1", "fc00::/7"],
  ["fdff:ffff::1", "fc00::/7"], ["fec0::1", "fec0::/10"], ["ff02::1", "ff00::/8"], ["ff05::1:3", "ff00::/8"], ["FF0E::1", "ff00::/8"],
  // discard-only, IETF, benchmarking, ORCHID, documentation, SRv6, outside global unicast
  ["100::1", "100::/64"], ["100::ffff:ffff:ffff:ffff", "100::/64"], ["2001:2::1", "2001:2::/48"], ["2001:10::1", "2001:10::/28"],
  ["2001:100::1", "2001::/23"], ["2001:db8::1", "2001:db8::/32"], ["2001:DB8:0:0:0:0:0:1", "2001:db8::/32"], ["3fff::1", "3fff::/20"],
  ["5f00::1", "5f00::/16"], ["4000::1", "outside"], ["1::1", "outside"], ["e000::1", "outside"], ["8000::1", "outside"],
  // public IPv6, including the globally reachable special blocks
  ["2001:67c:2e8:22::c100:68b", "public"], ["2001:4860:4860::8888", "public"], ["2001:4860:4860:0:0:0:0:8888", "public"],
  ["2606:4700:4700::1111", "public"], ["2001:1::1", "public"], ["2001:1::2", "public"], ["2001:3::1", "public"], ["2001:4:112::1", "public"],
  ["2001:20::1", "public"], ["2620:4f:8000::1", "public"], ["2a00:1450:4001::200e", "public"], ["3ffe:ffff::1", "public"], ["2c0f:fb50:4003::8a", "public"],
];

describe("the address policy judges an address by its bits, not its spelling", () => {
  it("has at least 150 spellings", () => expect(TABLE.length).toBeGreaterThanOrEqual(150));

  it.each(TABLE)("%s reaches %s", (spelling, reaches) => {
    const v = judgeAddress(spelling);
    expect(v, `${spelling} should parse as an address`).not.toBeNull();
    expect(isTarget(spelling), `${spelling} is a valid target syntax`).toBe(true);
    if (reaches === "public") {
      expect(v!.public, v!.reason).toBe(true);
      expect(targetRefusal(spelling)).toBeNull();
    } else {
      expect(v!.public).toBe(false);
      const refusal = targetRefusal(spelling)!;
      expect(refusal).not.toBeNull();
      if (reaches === "outside") expect(refusal).toContain("2000::/3");
      else expect(refusal).toContain(reaches);
    }
  });

  it.each([
    ["localhost"], ["LOCALHOST."], ["printer.local"], ["db.internal"], ["nas.home.arpa"], ["x.localhost"], ["router.localdomain"],
  ])("refuses the network-local name %s", (name) => expect(targetRefusal(name)).toMatch(/local to the probe's own network/));

  it.each([["example.com"], ["k.root-servers.net"], ["0x7f.example"], ["xn--bcher-kva.example"]])("lets the public-looking name %s through (the probe judges what it resolves to)", (name) => {
    expect(judgeAddress(name)).toBeNull();
    expect(targetRefusal(name)).toBeNull();
  });

  it.each([["1.2.3.4.5"], ["256.1.1.1.1"], ["::1::"], ["1.2.3.4 "], [" ::1"], ["08.0.0.1"], ["[::1]"], ["0x100000000"]])("does not take %s for an address", (s) => {
    expect(judgeAddress(s)).toBeNull();
  });

  it("puts an address in a prefix by its bits, whatever its spelling", () => {
    expect(inCidr("10.1.2.3", "10.0.0.0/8")).toBe(true);
    expect(inCidr("::ffff:10.1.2.3", "10.0.0.0/8")).toBe(true);
    expect(inCidr("0xa010203", "10.0.0.0/8")).toBe(true);
    expect(inCidr("fe80::1%eth0", "fe80::/10")).toBe(true);
    expect(inCidr("2001:DB8::1", "2001:db8::/32")).toBe(true);
    expect(inCidr("11.0.0.1", "10.0.0.0/8")).toBe(false);
    expect(inCidr("10.1.2.3", "not a prefix")).toBe(false);
  });
});
