// One entry point for every measurement type: the agent hands it a spec and gets an Atlas result back.
import { FIRMWARE_VERSION, MEASUREMENT_CODE_VERSION, type MeasurementSpec, type Result } from "../../protocol/probe.ts";
import type { RunContext } from "./context.ts";
import { ping } from "./ping.ts";
import { traceroute } from "./traceroute.ts";

export type { RunContext } from "./context.ts";

/**
 * Runs a measurement. Ping and traceroute, which every probe runs as built-ins, are loaded with the agent; the other
 * types load with their first measurement, so a probe that runs none never pays for them (the DNS codec and dgram
 * sockets: ~0.5 MB of RSS).
 */
export function runMeasurement(spec: MeasurementSpec, ctx: RunContext): Promise<Result> {
  switch (spec.type) {
    case "ping": return ping(spec, ctx);
    case "traceroute": return traceroute(spec, ctx);
    case "dns": return import("./dns.ts").then((m) => m.dns(spec, ctx));
    case "ntp": return import("./ntp.ts").then((m) => m.ntp(spec, ctx));
    case "http": return import("./http.ts").then((m) => m.httpGet(spec, ctx));
    case "sslcert": return import("./sslcert.ts").then((m) => m.sslcert(spec, ctx));
  }
}

/**
 * The Atlas result of a command this probe cannot run (its spec failed validation), in the shape of the type it
 * names, so the user sees why instead of silence.
 */
export function errorResult(raw: { type: string; af?: unknown; target?: unknown }, ctx: Pick<RunContext, "msmId" | "probeId" | "lts" | "step">, message: string): Result | null {
  const af = raw.af === 6 ? 6 : 4;
  const target = typeof raw.target === "string" ? raw.target.slice(0, 253) : "";
  const now = Math.floor(Date.now() / 1000);
  const common = { fw: FIRMWARE_VERSION, mver: MEASUREMENT_CODE_VERSION, lts: ctx.lts, msm_id: ctx.msmId, prb_id: ctx.probeId, timestamp: now, from: "" };
  const addressed = { ...common, af: af as 4 | 6, src_addr: "", dst_addr: "", dst_name: target };
  switch (raw.type) {
    case "ping":
      return { ...addressed, type: "ping", msm_name: "Ping", proto: "ICMP", size: 0, sent: 0, rcvd: 0, dup: 0, min: -1, avg: -1, max: -1, step: ctx.step, result: [{ error: message }] };
    case "traceroute":
      return { ...addressed, type: "traceroute", msm_name: "Traceroute", proto: "ICMP", paris_id: 0, size: 0, endtime: now, result: [{ hop: 1, error: message }] };
    case "dns":
      return { ...common, type: "dns", msm_name: "Tdig", af, proto: "UDP", error: { socket: message } };
    case "ntp":
      return { ...addressed, type: "ntp", msm_name: "Ntp", proto: "UDP", result: [], error: message };
    case "http":
      return { ...common, type: "http", msm_name: "HTTPGet", uri: target, result: [{ af, method: "GET", err: message }] };
    case "sslcert":
      return { ...common, type: "sslcert", msm_name: "SSLCert", af, dst_name: target, dst_port: "", err: message };
    default:
      return null;
  }
}
