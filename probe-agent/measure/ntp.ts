// ntp: `packets` client-mode NTPv4 exchanges with the target, one after another, each waiting up to `timeout`.
// Result format: Atlas "Ntp" (reference/atlas.md §2): header fields of the last reply; per packet the four
// timestamps in NTP-era seconds, rtt and offset in seconds, or {"x":"*"}.
import dgram from "node:dgram";
import { FIRMWARE_VERSION, isIPv4, isIPv6, MEASUREMENT_CODE_VERSION, type NtpResult, type NtpSpec } from "../../protocol/probe.ts";
import type { RunContext } from "./context.ts";
import { resolveTarget } from "./resolve.ts";

/** Seconds between the NTP era (1900) and the Unix epoch. */
export const NTP_UNIX_OFFSET = 2_208_988_800;
const LEAP = ["no", "61", "59", "unknown"] as const;
const MODES = ["reserved", "symmetric active", "symmetric passive", "client", "server", "broadcast", "control", "private"];

/** Now as NTP-era seconds, with sub-millisecond resolution. */
function ntpNow(): number {
  return (performance.timeOrigin + performance.now()) / 1000 + NTP_UNIX_OFFSET;
}

function readTimestamp(b: Buffer, at: number): number {
  return b.readUInt32BE(at) + b.readUInt32BE(at + 4) / 2 ** 32;
}

function writeTimestamp(b: Buffer, at: number, t: number): void {
  const seconds = Math.floor(t);
  b.writeUInt32BE(seconds >>> 0, at);
  b.writeUInt32BE(Math.floor((t - seconds) * 2 ** 32) >>> 0, at + 4);
}

export type NtpHeader = Pick<NtpResult, "li" | "version" | "mode" | "stratum" | "poll" | "precision" | "root-delay" | "root-dispersion" | "ref-id" | "ref-ts">;

export function parseHeader(b: Buffer): NtpHeader {
  const stratum = b[1]!;
  const refId = stratum <= 1
    ? b.subarray(12, 16).toString("latin1").replace(/\0+$/, "")
    : [...b.subarray(12, 16)].join(".");
  return {
    li: LEAP[b[0]! >> 6]!,
    version: (b[0]! >> 3) & 7,
    mode: MODES[b[0]! & 7]!,
    stratum,
    poll: 2 ** b.readInt8(2),
    precision: 2 ** b.readInt8(3),
    "root-delay": b.readUInt32BE(4) / 65536,
    "root-dispersion": b.readUInt32BE(8) / 65536,
    "ref-id": refId,
    "ref-ts": readTimestamp(b, 16),
  };
}

type Exchange = { header: NtpHeader; reply: NtpResult["result"][number] } | null;

/**
 * One request and its reply, or null (no reply in time, cancelled, or refused). A refusal (ICMP port unreachable on
 * the connected socket, seen as an 'error' event) ends the wait at once and is kept in `refused`.
 */
function exchange(sock: dgram.Socket, timeoutMs: number, signal: AbortSignal, refused: { error?: string }): Promise<Exchange> {
  return new Promise((resolve) => {
    const request = Buffer.alloc(48);
    request[0] = (0 << 6) | (4 << 3) | 3; // LI 0, version 4, mode 3 (client)
    const t1 = ntpNow();
    writeTimestamp(request, 40, t1);
    const origin = request.readBigUInt64BE(40);
    const done = (v: Exchange) => {
      clearTimeout(timer);
      sock.off("message", onMessage);
      sock.off("error", onError);
      signal.removeEventListener("abort", onAbort);
      resolve(v);
    };
    const onError = (e: Error) => { refused.error = e.message; done(null); };
    const onMessage = (msg: Buffer) => {
      const t4 = ntpNow();
      // Only the answer to this request: a server reply whose origin timestamp echoes our transmit timestamp.
      if (msg.length < 48 || (msg[0]! & 7) !== 4 || msg.readBigUInt64BE(24) !== origin) return;
      const t2 = readTimestamp(msg, 32), t3 = readTimestamp(msg, 40);
      done({
        header: parseHeader(msg),
        reply: { "origin-ts": t1, "receive-ts": t2, "transmit-ts": t3, "final-ts": t4, rtt: (t4 - t1) - (t3 - t2), offset: ((t2 - t1) + (t3 - t4)) / 2 },
      });
    };
    const onAbort = () => done(null);
    const timer = setTimeout(() => done(null), timeoutMs);
    signal.addEventListener("abort", onAbort);
    sock.on("message", onMessage);
    sock.on("error", onError);
    sock.send(request);
  });
}

export async function ntp(spec: NtpSpec, ctx: RunContext): Promise<NtpResult> {
  const timestamp = Math.floor(Date.now() / 1000);
  const base = {
    fw: FIRMWARE_VERSION, mver: MEASUREMENT_CODE_VERSION, lts: ctx.lts, msm_id: ctx.msmId, msm_name: "Ntp" as const,
    prb_id: ctx.probeId, timestamp, type: "ntp" as const, proto: "UDP" as const, af: spec.af, dst_name: spec.target,
  };
  const resolved = await resolveTarget(spec.target, spec.af, ctx, spec.resolve_on_probe);
  if (!resolved.ok) return { ...base, from: "", src_addr: "", dst_addr: "", result: [], error: resolved.error };
  const sock = dgram.createSocket(spec.af === 6 ? "udp6" : "udp4");
  // Never without an 'error' listener: an ICMP error on the connected socket is an 'error' event, and one nobody
  // listens to ends the agent (a measurement to a host with no NTP server crashed every probe that ran it).
  sock.on("error", () => {});
  try {
    const connected = await new Promise<string | null>((resolve) => {
      sock.once("error", (e) => resolve(e.message));
      sock.connect(123, resolved.addr, () => resolve(null));
    });
    if (connected) return { ...base, from: "", src_addr: "", dst_addr: resolved.addr, result: [], error: connected };
    const src = sock.address().address;
    const result: NtpResult["result"] = [];
    let header: NtpHeader | undefined;
    const refused: { error?: string } = {};
    for (let i = 0; i < spec.packets && !ctx.signal.aborted; i++) {
      const x = await exchange(sock, spec.timeout, ctx.signal, refused);
      if (x) { header = x.header; result.push(x.reply); } else result.push({ x: "*" });
    }
    const out: NtpResult = { ...base, from: src, src_addr: src, dst_addr: resolved.addr, ...header, result };
    // Each refused packet is a "*" as a lost one is; the result says why.
    if (refused.error && !header) out.error = refused.error;
    if (resolved.ttr !== undefined) out.ttr = resolved.ttr;
    if (isIPv4(spec.target) || isIPv6(spec.target)) out.dst_name = spec.target;
    return out;
  } finally {
    sock.close();
  }
}
