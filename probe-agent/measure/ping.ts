// ping: an ICMP echo train through the native addon, reported in the RIPE Atlas ping result format.
import { FIRMWARE_VERSION, MEASUREMENT_CODE_VERSION, type PingResult, type PingSpec } from "../../protocol/probe.ts";
import { pingTrain } from "../native/index.ts";
import type { RunContext } from "./context.ts";
import { resolveTarget } from "./resolve.ts";

/** How long to wait for a reply to the last packet (ms), as Atlas's evping does. */
export const REPLY_TIMEOUT_MS = 1000;

const ms3 = (x: number) => Math.round(x * 1000) / 1000;

export async function ping(spec: PingSpec, ctx: RunContext): Promise<PingResult> {
  const timestamp = Math.floor(Date.now() / 1000);
  const base = {
    fw: FIRMWARE_VERSION, mver: MEASUREMENT_CODE_VERSION, lts: ctx.lts, msm_id: ctx.msmId, msm_name: "Ping" as const,
    prb_id: ctx.probeId, timestamp, type: "ping" as const, proto: "ICMP" as const, af: spec.af, dst_name: spec.target,
    size: spec.size, step: ctx.step,
  };
  const failed = (error: string, dst_addr = "", src_addr = ""): PingResult => ({
    ...base, from: src_addr, src_addr, dst_addr, sent: 0, rcvd: 0, dup: 0, min: -1, avg: -1, max: -1, result: [{ error }],
  });
  const target = await resolveTarget(spec.target, spec.af, ctx, spec.resolve_on_probe);
  if (!target.ok) return failed(target.error);
  const train = await pingTrain({
    af: spec.af, dst: target.addr, packets: spec.packets, size: spec.size, interval_ms: spec.packet_interval, timeout_ms: REPLY_TIMEOUT_MS,
  }, ctx.signal);
  if (train.error) return failed(train.error, target.addr, train.src_addr);

  // Atlas lists each packet's replies together, in sequence order; the first reply's TTL is the result's.
  const replies = train.replies;
  let firstTtl = -1;
  for (let i = 0; i < replies.length; i += 4) {
    if (replies[i + 3] === 0) {
      firstTtl = replies[i + 2]!;
      break;
    }
  }
  const result: PingResult["result"] = [];
  let rcvd = 0, dup = 0, min = Infinity, max = -Infinity, sum = 0;
  for (let seq = 0; seq < spec.packets; seq++) {
    let answered = false;
    for (let i = 0; i < replies.length; i += 4) {
      if (replies[i] !== seq) continue;
      answered = true;
      const rtt = replies[i + 1]!, ttl = replies[i + 2]!;
      const entry: { rtt: number; ttl?: number; dup?: 1 } = { rtt: ms3(rtt) };
      if (ttl >= 0 && ttl !== firstTtl) entry.ttl = ttl;
      if (replies[i + 3] === 1) {
        entry.dup = 1;
        dup++;
      } else {
        rcvd++;
        sum += rtt;
        if (rtt < min) min = rtt;
        if (rtt > max) max = rtt;
      }
      result.push(entry);
    }
    if (!answered) result.push(seq < train.sent ? { x: "*" } : { error: "sendto failed" });
  }
  const out: PingResult = {
    ...base,
    from: train.src_addr,
    src_addr: train.src_addr,
    dst_addr: target.addr,
    sent: train.sent,
    rcvd,
    dup,
    min: rcvd ? ms3(min) : -1,
    avg: rcvd ? ms3(sum / rcvd) : -1,
    max: rcvd ? ms3(max) : -1,
    result,
  };
  if (firstTtl >= 0) out.ttl = firstTtl;
  if (target.ttr !== undefined) out.ttr = target.ttr;
  return out;
}
