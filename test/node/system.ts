// Helpers for tests that run the real system: free ports, polling, and capability checks with printed reasons.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { Spool } from "../../probe-agent/spool.ts";
import type { PingResult } from "../../protocol/index.ts";
import { type LocalSystem, startLocalSystem } from "../../scripts/local.ts";

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `vantage-${prefix}-`));
}

async function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer().once("error", () => resolve(false)).listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

/** A port that is free, and whose +10000 neighbour (wrangler's inspector) is free too. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    if ((await isFree(port)) && (await isFree(port + 10_000))) return port;
  }
}

export async function until<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 60_000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Whether this process may send ICMP echo: as root (CAP_NET_RAW) or with its group inside
 * net.ipv4.ping_group_range. Returns the reason when it may not, for a printed skip.
 */
export function icmpUnavailable(): string | null {
  if (process.getuid?.() === 0) return null;
  try {
    const [lo, hi] = execFileSync("sysctl", ["-n", "net.ipv4.ping_group_range"], { encoding: "utf8" }).trim().split(/\s+/).map(Number);
    const gid = process.getgid?.() ?? -1;
    if (gid >= lo! && gid <= hi!) return null;
    return `not root and gid ${gid} is outside net.ipv4.ping_group_range (${lo} ${hi}): no ICMP socket`;
  } catch {
    return "not root and net.ipv4.ping_group_range is unreadable";
  }
}

export function ipv6LoopbackUnavailable(): string | null {
  try {
    const out = execFileSync("ip", ["-6", "addr", "show", "dev", "lo"], { encoding: "utf8" });
    return out.includes("::1/128") ? null : "no ::1 on lo (IPv6 disabled)";
  } catch {
    return "cannot inspect lo for IPv6";
  }
}

/** The whole local system (edge, HTTPS front, three connected agents) for the tests of one describe block. */
export function useLocalSystem(tag: string): () => LocalSystem {
  let system: LocalSystem | undefined;
  beforeAll(async () => {
    system = await startLocalSystem({ stateDir: tempDir(tag), port: await freePort(), httpsPort: 0 });
  });
  afterAll(async () => {
    await system?.stop();
  });
  return () => {
    if (!system) throw new Error("the local system did not start");
    return system;
  };
}

/** TCP sockets in LISTEN and unconnected UDP sockets that a process holds (from /proc). */
export function listeningSockets(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = readlinkSync(`/proc/${pid}/fd/${fd}`).match(/^socket:\[(\d+)\]$/);
      if (m) inodes.add(m[1]!);
    } catch { /* closed meanwhile */ }
  }
  const found: string[] = [];
  for (const table of ["tcp", "tcp6", "udp", "udp6"]) {
    let lines: string[];
    try {
      lines = readFileSync(`/proc/net/${table}`, "utf8").trim().split("\n").slice(1);
    } catch {
      continue;
    }
    for (const line of lines) {
      const f = line.trim().split(/\s+/);
      const [local, remote, state, inode] = [f[1]!, f[2]!, f[3]!, f[9]!];
      if (!inodes.has(inode)) continue;
      const listening = table.startsWith("tcp") ? state === "0A" : /^0+:0000$/.test(remote);
      if (listening) found.push(`${table} ${local}`);
    }
  }
  return found;
}

/**
 * A probe's journal after an outage: an hourly ping of 127.0.0.1 given to the (running) probe, due tomorrow so it
 * runs nothing itself; the agent is stopped and `count` results of that measurement, one a second from two hours
 * ago, are spooled as the agent spools them. The caller starts the agent again. (The results are fabricated: the
 * edge must run with wide clock-skew and extra-runs tolerances, as admission.ts refuses runs a probe could not make.)
 */
export async function spooledBacklog(o: {
  edge: { url: string }; key: string; probe: { id: number; stateDir: string }; agent: { stop: () => Promise<void> }; count: number; packets?: number; description?: string;
}): Promise<{ id: number; first: number }> {
  const res = await fetch(`${o.edge.url}/api/v2/measurements/`, {
    method: "POST", headers: { "Content-Type": "application/json", Authorization: `Key ${o.key}` },
    body: JSON.stringify({
      definitions: [{ type: "ping", af: 4, target: "127.0.0.1", description: o.description ?? "backlog", interval: 3600, packets: o.packets ?? 3 }],
      probes: [{ type: "probes", value: String(o.probe.id), requested: 1 }], start_time: Math.floor(Date.now() / 1000) + 86_400,
    }),
  });
  if (res.status !== 201) throw new Error(`creating the measurement: ${res.status} ${await res.text()}`);
  const id = ((await res.json()) as { measurements: number[] }).measurements[0]!;
  await until("the probe to be given it", async () => ((await (await fetch(`${o.edge.url}/api/v2/measurements/${id}/`)).json()) as { probes_scheduled: number }).probes_scheduled === 1);
  await o.agent.stop();
  const spool = new Spool(o.probe.stateDir);
  const first = Math.floor(Date.now() / 1000) - 7_200;
  const n = o.packets ?? 3;
  await Promise.all(Array.from({ length: o.count }, (_, i): Promise<unknown> => spool.add({
    fw: 5020, mver: "1.0.0", lts: -1, msm_id: id, msm_name: "Ping", prb_id: o.probe.id, timestamp: first + i, from: "127.0.0.1",
    src_addr: "127.0.0.1", dst_addr: "127.0.0.1", dst_name: "127.0.0.1", af: 4, type: "ping", proto: "ICMP", size: 48, sent: n,
    rcvd: n, dup: 0, min: 0.05, avg: 0.05, max: 0.05, step: 3600, ttl: 64, result: Array.from({ length: n }, () => ({ rtt: 0.05 })),
  } satisfies PingResult)));
  await spool.close();
  return { id, first };
}
