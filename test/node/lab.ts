// A real multi-hop path on one machine, built by the tests (root only), dual-stack:
//
//   probe 10.0.1.2 ── 10.0.1.1 r1 10.0.2.1 ── 10.0.2.2 r2 10.0.3.1 ── 10.0.3.2 target
//         fd00:1::2 ─ fd00:1::1    fd00:2::1 ─ fd00:2::2    fd00:3::1 ─ fd00:3::2
//
// Optional one-way delay (probe → target) from a TUN delay line in r1 (test/lab/tundelay.c, since this kernel has
// no netem), and random loss from an nftables rule in r2 on the way to the target, with a counter of what it dropped.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Netns } from "./netns.ts";
import { tempDir } from "./system.ts";

let tundelayBinary: string | null = null;
/** Compiles the delay line once per test process. */
function tundelay(): string {
  if (tundelayBinary && existsSync(tundelayBinary)) return tundelayBinary;
  const out = join(tempDir("tundelay"), "tundelay");
  execFileSync("cc", ["-O2", "-Wall", "-o", out, join(import.meta.dirname, "..", "lab", "tundelay.c")]);
  tundelayBinary = out;
  return out;
}

/**
 * delayMs: one-way delay probe → target. lossPct: random loss on the way into the target.
 * ecmp: a second r1–r2 link (10.0.4.1–10.0.4.2) and an ECMP route over both, hashed on L4 (an ECMP diamond:
 * hop 2 answers as 10.0.2.2 or 10.0.4.2 depending on the flow).
 * mplsLabel: r2 answers expiring IPv4 probes like an MPLS router, its time exceeded carrying this label (RFC 4950).
 */
export type PathOptions = { delayMs?: number; lossPct?: number; ecmp?: boolean; mplsLabel?: number };

export class LinePath {
  readonly probe: Netns;
  readonly r1: Netns;
  readonly r2: Netns;
  readonly target: Netns;
  readonly targetAddr = "10.0.3.2";
  readonly targetAddr6 = "fd00:3::2";
  private delay: ChildProcess | null = null;

  private constructor(tag: string) {
    this.probe = new Netns(`${tag}p`);
    this.r1 = new Netns(`${tag}1`);
    this.r2 = new Netns(`${tag}2`);
    this.target = new Netns(`${tag}t`);
  }

  static async create(tag: string, o: PathOptions = {}): Promise<LinePath> {
    const path = new LinePath(tag);
    try {
      await path.build(o);
    } catch (e) {
      path.remove();
      throw e;
    }
    return path;
  }

  private link(a: Netns, aIf: string, aAddr: string, b: Netns, bIf: string, bAddr: string): void {
    execFileSync("ip", ["link", "add", aIf, "netns", a.name, "type", "veth", "peer", "name", bIf, "netns", b.name]);
    a.ip("addr", "add", aAddr, "dev", aIf);
    b.ip("addr", "add", bAddr, "dev", bIf);
    // The IPv6 twin of the IPv4 /24: 10.0.N.x ↔ fd00:N::x, usable at once (no duplicate address detection).
    const six = (v4: string) => v4.replace(/^10\.0\.(\d+)\.(\d+)\/24$/, "fd00:$1::$2/64");
    a.ip("-6", "addr", "add", six(aAddr), "dev", aIf, "nodad");
    b.ip("-6", "addr", "add", six(bAddr), "dev", bIf, "nodad");
    a.ip("link", "set", aIf, "up");
    b.ip("link", "set", bIf, "up");
  }

  private async build(o: PathOptions): Promise<void> {
    // No duplicate address detection on the new links (their link-local addresses included), so IPv6 neighbour
    // discovery and forwarding work from the first packet instead of a second or two later.
    for (const ns of [this.probe, this.r1, this.r2, this.target]) {
      ns.exec("sysctl", ["-qw", "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0"]);
    }
    this.link(this.probe, "p-r1", "10.0.1.2/24", this.r1, "r1-p", "10.0.1.1/24");
    this.link(this.r1, "r1-r2", "10.0.2.1/24", this.r2, "r2-r1", "10.0.2.2/24");
    this.link(this.r2, "r2-t", "10.0.3.1/24", this.target, "t-r2", "10.0.3.2/24");
    for (const r of [this.r1, this.r2]) r.exec("sysctl", ["-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]);
    // No ICMP rate limiting on the path: every probe of every tool in a test gets its answer.
    for (const ns of [this.r1, this.r2, this.target]) {
      ns.exec("sysctl", ["-qw", "net.ipv4.icmp_ratelimit=0", "net.ipv4.icmp_msgs_per_sec=100000", "net.ipv6.icmp.ratelimit=0"]);
    }
    this.probe.ip("-6", "route", "add", "default", "via", "fd00:1::1");
    this.r1.ip("-6", "route", "add", "fd00:3::/64", "via", "fd00:2::2");
    this.r2.ip("-6", "route", "add", "fd00:1::/64", "via", "fd00:2::1");
    this.target.ip("-6", "route", "add", "default", "via", "fd00:3::1");
    this.probe.ip("route", "add", "default", "via", "10.0.1.1");
    if (o.ecmp) {
      this.link(this.r1, "r1-r2b", "10.0.4.1/24", this.r2, "r2-r1b", "10.0.4.2/24");
      this.r1.exec("sysctl", ["-qw", "net.ipv4.fib_multipath_hash_policy=1"]);
      this.r2.exec("sysctl", ["-qw", "net.ipv4.icmp_errors_use_inbound_ifaddr=1"]);
      this.r1.ip("route", "add", "10.0.3.0/24", "nexthop", "via", "10.0.2.2", "nexthop", "via", "10.0.4.2");
    } else {
      this.r1.ip("route", "add", "10.0.3.0/24", "via", "10.0.2.2");
    }
    this.r2.ip("route", "add", "10.0.1.0/24", "via", "10.0.2.1");
    this.target.ip("route", "add", "default", "via", "10.0.3.1");
    // Warm the path up (neighbour discovery, ARP) so the first probe of a test does not pay for it.
    for (const [flag, addr] of [["-4", this.targetAddr], ["-6", this.targetAddr6]]) {
      try { this.probe.exec("ping", [flag!, "-c", "1", "-W", "3", addr!]); } catch { /* measured by the test itself */ }
    }
    if (o.delayMs !== undefined || o.mplsLabel !== undefined) {
      // Traffic arriving from the probe goes through the delay line; what it writes back is forwarded normally.
      this.r1.ip("tuntap", "add", "dev", "dly0", "mode", "tun");
      this.r1.ip("link", "set", "dly0", "up");
      this.r1.exec("sysctl", ["-qw", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.dly0.rp_filter=0"]);
      this.r1.ip("rule", "add", "iif", "r1-p", "lookup", "100", "pref", "100");
      this.r1.ip("route", "add", "default", "dev", "dly0", "table", "100");
      const mpls = o.mplsLabel === undefined ? [] : ["mpls", String(o.mplsLabel), "10.0.2.2"];
      const child = spawn("ip", ["netns", "exec", this.r1.name, tundelay(), "dly0", String(o.delayMs ?? 0), ...mpls], { stdio: ["ignore", "pipe", "inherit"] });
      this.delay = child;
      await new Promise<void>((resolve, reject) => {
        child.stdout!.once("data", () => resolve());
        child.once("exit", (code) => reject(new Error(`tundelay exited (${code})`)));
      });
    }
    if (o.lossPct) {
      this.r2.exec("nft", ["-f", "-"],
        `table inet lab {\n  chain forward {\n    type filter hook forward priority 0;\n    oifname "r2-t" numgen random mod 100 < ${o.lossPct} counter drop\n  }\n}\n`);
    }
  }

  /** Packets the loss rule has dropped so far. */
  dropped(): number {
    const out = this.r2.exec("nft", ["list", "chain", "inet", "lab", "forward"]);
    return Number(out.match(/counter packets (\d+)/)?.[1] ?? NaN);
  }

  remove(): void {
    this.delay?.kill("SIGTERM");
    for (const ns of [this.probe, this.r1, this.r2, this.target]) ns.remove();
  }
}
