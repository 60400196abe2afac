// DNS traffic for the statistics collector's truth test and benchmark: dnsperf (Debian) against NSD in a network
// namespace, captured on its loopback by tcpdump. A realistic mix: A/AAAA mostly, some MX/TXT/NS/SOA/PTR/ANY/SRV,
// names that exist, NXDOMAIN under random labels (upper case too), REFUSED for a zone NSD does not serve; plain,
// EDNS and DO queries; UDP and TCP; IPv4 and IPv6; several client addresses in two /24s; and queries to an address
// where nothing answers (unanswered).
import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import type { Netns } from "../netns.ts";

export function queryFile(path: string, count: number, seed = 1): void {
  let x = seed;
  const rand = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const pick = <T>(a: T[]) => a[Math.floor(rand() * a.length)]!;
  const types = [...Array(50).fill("A"), ...Array(25).fill("AAAA"), "MX", "MX", "TXT", "TXT", "TXT", "NS", "NS", "SOA", "PTR", "ANY", "SRV", "DS", "DNSKEY"];
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const r = rand();
    const name = r < 0.55 ? pick(["www.example.test", "txt.example.test", "example.test", "ns1.example.test", "big.example.test", "WWW.Example.TEST"])
      : r < 0.85 ? `${Math.floor(rand() * 1e6).toString(36)}.example.test`
      : r < 0.95 ? `host${Math.floor(rand() * 50)}.other.test`
      : pick(["example.com", "a.root-servers.net", "test", "localhost", "_sip._udp.example.test"]);
    lines.push(`${name} ${pick(types)}`);
  }
  writeFileSync(path, lines.join("\n") + "\n");
}

/** Starts tcpdump on the namespace's loopback (DNS only); `stop()` waits until the file is complete. */
export async function capture(ns: Netns, file: string): Promise<{ stop: () => Promise<void> }> {
  const child: ChildProcess = spawn("ip", ["netns", "exec", ns.name, "tcpdump", "-i", "lo", "-U", "-w", file, "port", "53"], { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on("data", (d) => { err += d; if (err.includes("listening on")) resolve(); });
    child.once("exit", (code) => reject(new Error(`tcpdump exited (${code}): ${err}`)));
  });
  return {
    stop: async () => {
      const done = new Promise((r) => child.once("exit", r));
      child.kill("SIGINT");
      await done;
    },
  };
}

export type TrafficRun = { server: string; client?: string; transport?: "udp" | "tcp"; edns?: boolean; dnssecOk?: boolean; seconds: number; qps: number; timeoutS?: number };

/** One dnsperf run inside the namespace; returns its report. */
export function dnsperf(ns: Netns, queries: string, run: TrafficRun): string {
  const args = ["-s", run.server, "-d", queries, "-l", String(run.seconds), "-Q", String(run.qps), "-c", "2", "-t", String(run.timeoutS ?? 2)];
  if (run.client) args.push("-a", run.client);
  if (run.transport === "tcp") args.push("-m", "tcp");
  if (run.edns) args.push("-e");
  if (run.dnssecOk) args.push("-D");
  return ns.exec("dnsperf", args);
}

/** The mix the truth test and the benchmark both use, scaled by `seconds` and `qps`. */
export function standardMix(seconds: number, qps: number): TrafficRun[] {
  return [
    { server: "127.0.0.1", client: "127.0.0.1", seconds, qps },
    { server: "127.0.0.1", client: "127.0.0.10", edns: true, seconds, qps },
    { server: "127.0.0.1", client: "127.0.5.7", edns: true, dnssecOk: true, seconds, qps: Math.ceil(qps / 2) },
    { server: "127.0.0.1", client: "127.0.0.11", transport: "tcp", seconds, qps: Math.ceil(qps / 4) },
    { server: "::1", seconds, qps: Math.ceil(qps / 2) },
    // Nothing listens on 127.0.0.2: every one of these is unanswered.
    { server: "127.0.0.2", client: "127.0.0.12", seconds: 1, qps: 50, timeoutS: 1 },
  ];
}
