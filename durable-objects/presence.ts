// Where a controller says its probes came and went: the registry (each probe's session, and the shard's load, which
// registration balances on) and, while someone subscribes to probe status, the result stream. Neither holds up a
// probe's connection. The registry is one object for the whole network, so its reports are coalesced: one call at
// a time per controller, carrying every event since the last, in order. A lone connection goes at once; a reconnect
// storm of thousands of probes is a few calls a second instead of one per probe (and one transaction for each).
import { REGISTRY_NAME } from "./env.ts";
import type { ProbeAttachment } from "./probe-attachment.ts";
import { type Interest, type ProbeStatusEvent, STREAM_NAME } from "./stream.ts";

/** One probe's connection or disconnection, as the registry records it. */
export type SessionEvent = { probe_id: number; event: "connected" | "disconnected"; address: string | null; at: number };

export type PresenceHost = {
  ctx: DurableObjectState;
  env: () => Env;
  shard: () => string;
  /** Probes connected to the shard now (counted at most once a second: connected.ts openRecently). */
  connected: () => number;
  capacity: () => number;
  /** What the stream's subscribers want (stream-feed.ts). */
  interest: () => Promise<Interest | null | undefined>;
};

/** Events in one call at most (a call's size stays bounded whatever the backlog). */
const MAX_BATCH = 2000;
/** A batch the registry failed to take is tried again this many times, waiting 1, 2, 4… s, then given up (logged). */
const ATTEMPTS = 5;

export class PresenceReports {
  private readonly h: PresenceHost;
  private readonly queue: SessionEvent[] = [];
  private sending = false;

  constructor(h: PresenceHost) {
    this.h = h;
  }

  report(event: SessionEvent["event"], a: ProbeAttachment, at = Math.floor(Date.now() / 1000)): void {
    const h = this.h;
    const status: ProbeStatusEvent = {
      prb_id: a.probe_id, event: event === "connected" ? "connect" : "disconnect", timestamp: at, asn: a.asn_v4, country_code: a.country_code, prefix: a.prefix_v4,
    };
    h.ctx.waitUntil(h.interest().then((i) => (i?.probestatus ? h.env().STREAM.getByName(STREAM_NAME).probeStatus(status) : undefined))
      .catch((e: unknown) => console.error(`controller ${h.shard()}: probe status to the stream failed: ${String(e)}`)));
    this.queue.push({ probe_id: a.probe_id, event, address: a.address, at });
    if (!this.sending) {
      this.sending = true;
      h.ctx.waitUntil(this.send());
    }
  }

  /** Sends what is queued, call after call, until nothing is left. */
  private async send(): Promise<void> {
    try {
      await Promise.resolve();  // the events of this turn go in the same call
      while (this.queue.length) {
        const batch = this.queue.splice(0, MAX_BATCH);
        for (let attempt = 1; ; attempt++) {
          try {
            const load = { shard: this.h.shard(), connected: this.h.connected(), capacity: this.h.capacity() };
            await this.h.env().REGISTRY.getByName(REGISTRY_NAME).probeSessions(batch, load);
            break;
          } catch (e) {
            const last = attempt >= ATTEMPTS;
            console.error(`controller ${this.h.shard()}: ${batch.length} probe sessions to the registry failed${last ? ", given up" : ", will retry"}: ${String(e)}`);
            if (last) break;
            await new Promise((r) => setTimeout(r, 1000 * 2 ** (attempt - 1)));
          }
        }
      }
    } finally {
      this.sending = false;
    }
  }
}
