// Typed loader for the ICMP addon (native/icmp.cc), built by node-gyp on `npm install`.
import { createRequire } from "node:module";

export type EchoReply = { seq: number; rtt: number; ttl: number; dup: boolean };
export type PingTrain = { mode: "dgram" | "raw" | ""; src_addr: string; sent: number; replies: EchoReply[]; error?: string };
export type PingTrainSpec = { af: 4 | 6; dst: string; packets: number; size: number; interval_ms: number; timeout_ms: number; ttl?: number };

export type TraceReply = {
  hop: number; probe: number; timeout: boolean; from: string; rtt: number; size: number; ttl: number; ittl?: number;
  icmp_type: number; icmp_code: number; from_destination: boolean; tcp_flags: number;
};
export type TraceRun = { src_addr: string; replies: TraceReply[]; error?: string };
export type TraceSpec = {
  proto: "ICMP" | "UDP" | "TCP"; dst: string; first_hop: number; max_hops: number; packets: number; size: number; port: number;
  paris: number; response_timeout: number; dont_fragment: boolean;
};

type Addon = { ping(spec: PingTrainSpec): Promise<PingTrain>; traceroute(spec: TraceSpec): Promise<TraceRun> };

const addon = createRequire(import.meta.url)("./build/Release/vantage_icmp.node") as Addon;

export function pingTrain(spec: PingTrainSpec): Promise<PingTrain> {
  return addon.ping(spec);
}

export function traceTrain(spec: TraceSpec): Promise<TraceRun> {
  return addon.traceroute(spec);
}
