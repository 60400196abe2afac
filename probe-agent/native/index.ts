// Typed loader for the ICMP addon (native/icmp.cc), built by node-gyp on `npm install`.
import { createRequire } from "node:module";

export type EchoReply = { seq: number; rtt: number; ttl: number; dup: boolean };
export type PingTrain = { mode: "dgram" | "raw" | ""; src_addr: string; sent: number; replies: EchoReply[]; error?: string };
export type PingTrainSpec = { af: 4 | 6; dst: string; packets: number; size: number; interval_ms: number; timeout_ms: number; ttl?: number };

type Addon = { ping(spec: PingTrainSpec): Promise<PingTrain> };

const addon = createRequire(import.meta.url)("./build/Release/vantage_icmp.node") as Addon;

export function pingTrain(spec: PingTrainSpec): Promise<PingTrain> {
  return addon.ping(spec);
}
