// Typed loader for the ICMP addon (native/icmp.cc), built by node-gyp on `npm install`.
import { createRequire } from "node:module";
import { join } from "node:path";
import { AGENT_DIR } from "../dir.ts";

/**
 * What a ping train brought back. `replies`: (seq, rtt ms, ttl or -1, dup 0/1) for each echo reply, four numbers
 * each, in arrival order.
 */
export type PingTrain = { mode: "dgram" | "raw" | ""; src_addr: string; sent: number; replies: Float64Array; error?: string };
export type PingTrainSpec = { af: 4 | 6; dst: string; packets: number; size: number; interval_ms: number; timeout_ms: number };

export type TraceReply = {
  hop: number; probe: number; timeout: boolean; late?: number; from: string; rtt: number; size: number; ttl: number; ittl?: number;
  icmp_type: number; icmp_code: number; from_destination: boolean; tcp_flags: number;
  /** RFC 4884 extension structure of an ICMP error, raw, and whether the error declared its position. */
  ext?: Buffer; rfc4884?: boolean;
};
export type TraceRun = { src_addr: string; replies: TraceReply[]; error?: string };
export type TraceSpec = {
  proto: "ICMP" | "UDP" | "TCP"; dst: string; first_hop: number; max_hops: number; packets: number; size: number; port: number;
  paris: number; response_timeout: number; dont_fragment: boolean;
};

type Cancellable = { cancel_id?: number };
type Addon = {
  ping(spec: PingTrainSpec & Cancellable): Promise<PingTrain>;
  traceroute(spec: TraceSpec & Cancellable): Promise<TraceRun>;
  cancel(id: number): boolean;
  mask(source: Uint8Array, mask: Uint8Array, output: Uint8Array, offset: number, length: number): void;
  unmask(buffer: Uint8Array, mask: Uint8Array): void;
};

const addon = createRequire(import.meta.url)(join(AGENT_DIR, "native/build/Release/vantage_icmp.node")) as Addon;

let nextCancelId = 1;

/**
 * Runs a native measurement that stops at once when `signal` aborts (its thread is woken: an eventfd). Sets the
 * spec's `cancel_id`: callers pass a spec object of their own.
 */
async function cancellable<S, R>(run: (spec: S & Cancellable) => Promise<R>, spec: S, signal?: AbortSignal): Promise<R> {
  if (!signal) return run(spec as S & Cancellable);
  const cancel_id = nextCancelId = nextCancelId >= 0x7fffffff ? 1 : nextCancelId + 1;
  const onAbort = () => addon.cancel(cancel_id);
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    (spec as S & Cancellable).cancel_id = cancel_id;
    const pending = run(spec as S & Cancellable);
    if (signal.aborted) onAbort();
    return await pending;
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

export function pingTrain(spec: PingTrainSpec, signal?: AbortSignal): Promise<PingTrain> {
  return cancellable((s) => addon.ping(s), spec, signal);
}

export function traceTrain(spec: TraceSpec, signal?: AbortSignal): Promise<TraceRun> {
  return cancellable((s) => addon.traceroute(s), spec, signal);
}

/** WebSocket masking for ws, in place of its optional bufferutil addon (probe-agent/build.ts aliases it here). */
export const { mask, unmask } = addon;
