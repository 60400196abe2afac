// Where a controller says a probe came or went: the registry (the probe's session, and the shard's load, which
// registration balances on) and, while someone subscribes to probe status, the result stream. Both are told in the
// background (waitUntil): a probe's connection never waits on them, and a failure is logged, not retried (the next
// connection or disconnection reports again).
import { REGISTRY_NAME } from "./env.ts";
import type { ProbeAttachment } from "./probe-attachment.ts";
import type { Interest, ProbeStatusEvent } from "./stream.ts";
import { STREAM_NAME } from "./stream.ts";

export type PresenceHost = {
  ctx: DurableObjectState;
  env: Env;
  shard: string;
  /** Probes connected to the shard now (counted at most once a second: connected.ts openRecently). */
  connected: () => number;
  capacity: number;
  /** What the stream's subscribers want (stream-feed.ts). */
  interest: () => Promise<Interest | null | undefined>;
};

export function reportPresence(h: PresenceHost, event: "connected" | "disconnected", a: ProbeAttachment, at = Math.floor(Date.now() / 1000)): void {
  const fail = (what: string) => (e: unknown) => console.error(`controller ${h.shard}: ${what} failed: ${String(e)}`);
  const status: ProbeStatusEvent = {
    prb_id: a.probe_id, event: event === "connected" ? "connect" : "disconnect", timestamp: at, asn: a.asn_v4, country_code: a.country_code, prefix: a.prefix_v4,
  };
  h.ctx.waitUntil(h.interest().then((i) => (i?.probestatus ? h.env.STREAM.getByName(STREAM_NAME).probeStatus(status) : undefined))
    .catch(fail("probe status to the stream")));
  h.ctx.waitUntil(h.env.REGISTRY.getByName(REGISTRY_NAME)
    .probeSession({ probe_id: a.probe_id, shard: h.shard, event, address: a.address, at, connected: h.connected(), capacity: h.capacity })
    .catch(fail("registry report")));
}
