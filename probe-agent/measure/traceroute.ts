// traceroute: ICMP, UDP or TCP probes with rising TTL through the native addon (raw sockets), Paris by default so
// every probe follows one path through per-flow load balancers. Result format: Atlas "Traceroute".
import { FIRMWARE_VERSION, MEASUREMENT_CODE_VERSION, type TracerouteResult, type TracerouteSpec } from "../../protocol/probe.ts";
import { traceTrain } from "../native/index.ts";
import type { RunContext } from "./context.ts";
import { resolveTarget } from "./resolve.ts";
import { ms3 } from "./timing.ts";

/** Atlas's letters for ICMP destination-unreachable codes. */
function errOf(code: number): string | number {
  switch (code) {
    case 0: return "N";
    case 1: return "H";
    case 2: return "P";
    case 3: return "p";
    case 9: case 10: case 13: return "A";
    default: return code;
  }
}

type IcmpExt = NonNullable<Extract<Extract<TracerouteResult["result"][number], { result: unknown }>["result"][number], { from: string }>["icmpext"]>;

/** Atlas's `icmpext` from an RFC 4884 extension structure: its objects, with MPLS label stacks (RFC 4950) decoded. */
export function icmpExtensions(ext: Buffer, rfc4884: boolean): IcmpExt {
  const obj: IcmpExt["obj"] = [];
  for (let at = 4; at + 4 <= ext.length;) {
    const len = ext.readUInt16BE(at);
    if (len < 4 || at + len > ext.length) break;
    const o: IcmpExt["obj"][number] = { class: ext[at + 2]!, type: ext[at + 3]! };
    if (o.class === 1 && o.type === 1) {
      o.mpls = [];
      for (let e = at + 4; e + 4 <= at + len; e += 4) {
        const word = ext.readUInt32BE(e);
        o.mpls.push({ label: word >>> 12, exp: (word >>> 9) & 7, s: (word >>> 8) & 1, ttl: word & 0xff });
      }
    }
    obj.push(o);
    at += len;
  }
  return { version: ext[0]! >> 4, rfc4884: rfc4884 ? 1 : 0, obj };
}

function tcpFlags(bits: number): string {
  return [[0x01, "F"], [0x02, "S"], [0x04, "R"], [0x08, "P"], [0x10, "A"], [0x20, "U"], [0x40, "E"], [0x80, "C"]]
    .filter(([b]) => bits & (b as number)).map(([, f]) => f).join("");
}

export async function traceroute(spec: TracerouteSpec, ctx: RunContext): Promise<TracerouteResult> {
  const timestamp = Math.floor(Date.now() / 1000);
  const base = {
    fw: FIRMWARE_VERSION, mver: MEASUREMENT_CODE_VERSION, lts: ctx.lts, msm_id: ctx.msmId, msm_name: "Traceroute" as const,
    prb_id: ctx.probeId, timestamp, type: "traceroute" as const, af: spec.af, proto: spec.protocol, paris_id: spec.paris,
    size: spec.size, dst_name: spec.target,
  };
  const failed = (error: string, dst_addr = "", src_addr = ""): TracerouteResult =>
    ({ ...base, from: src_addr, src_addr, dst_addr, endtime: Math.floor(Date.now() / 1000), result: [{ hop: spec.first_hop, error }] });
  const resolved = await resolveTarget(spec.target, spec.af, ctx, spec.resolve_on_probe);
  if (!resolved.ok) return failed(resolved.error);
  const run = await traceTrain({
    proto: spec.protocol, dst: resolved.addr, first_hop: spec.first_hop, max_hops: spec.max_hops, packets: spec.packets,
    size: spec.size, port: spec.port ?? (spec.protocol === "TCP" ? 80 : 33434), paris: spec.paris,
    response_timeout: spec.response_timeout, dont_fragment: spec.dont_fragment,
  }, ctx.signal);
  if (run.error) return failed(run.error, resolved.addr, run.src_addr);
  const hops = new Map<number, TracerouteResult["result"][number] & { result: unknown[] }>();
  for (const r of run.replies) {
    const hop = hops.get(r.hop) ?? { hop: r.hop, result: [] };
    hops.set(r.hop, hop);
    if (r.timeout) { hop.result.push({ x: "*" }); continue; }
    // A late reply (to a probe already counted as a timeout) has no RTT: Atlas reports how many probes late it was.
    const reply: Record<string, unknown> = r.late ? { from: r.from, late: r.late, size: r.size, ttl: r.ttl } : { from: r.from, rtt: ms3(r.rtt), size: r.size, ttl: r.ttl };
    const arrivedAtTarget = r.from === resolved.addr && spec.protocol === "UDP" && r.icmp_type === 3 && r.icmp_code === 3;
    if (r.icmp_type === 3 && !arrivedAtTarget) reply.err = errOf(r.icmp_code);
    if (r.ittl !== undefined && r.ittl > 1) reply.ittl = r.ittl;
    if (r.tcp_flags) reply.flags = tcpFlags(r.tcp_flags);
    if (r.ext) reply.icmpext = icmpExtensions(r.ext, r.rfc4884 ?? false);
    hop.result.push(reply);
  }
  const out: TracerouteResult = {
    ...base, from: run.src_addr, src_addr: run.src_addr, dst_addr: resolved.addr, endtime: Math.floor(Date.now() / 1000),
    result: [...hops.values()] as TracerouteResult["result"],
  };
  if (resolved.ttr !== undefined) out.ttr = resolved.ttr;
  return out;
}
