// Giving one dispatch order's measurement to the probes dispatch.ts chooses among a controller's connected ones:
// their assignment rows written in one transaction, a slot taken from each, and the `measure` frame each is sent
// (added to `frames`, sent by the caller once every order of the call is done).
import type { ConnectedProbes } from "./connected.ts";
import { choose, type DispatchOrder, matches } from "./dispatch.ts";
import type { Participant, ProbeAttachment } from "./probe-attachment.ts";
import type { Sql } from "./sql.ts";

/** A probe silent for this long (three missed 30 s heartbeats) gets no work; its socket is presumed dead. */
export const SILENT_AFTER_S = 95;

export type AssignHost = {
  ctx: DurableObjectState;
  sql: Sql;
  connected: ConnectedProbes;
  shard: string;
};

/** One order: the probes picked (their slots taken, their rows written); their frames are added to `frames`. */
export function assign(h: AssignHost, order: DispatchOrder, frames: [WebSocket, string][]): Participant[] {
  const candidates: { ws: WebSocket; a: ProbeAttachment }[] = [];
  const excluded = new Set(order.exclude);
  const now = Math.floor(Date.now() / 1000);
  let slots = 0, free = 0;
  for (const [ws, a] of h.connected.all()) {
    if (ws.readyState === WebSocket.OPEN) { slots += a.slots; free += a.free_slots; }
    if (ws.readyState !== WebSocket.OPEN || a.free_slots < 1) continue;
    if (now - a.last_seen > SILENT_AFTER_S) continue;  // closed by the controller's sweep
    if (excluded.has(a.probe_id) || !matches(a, order.filter)) continue;
    candidates.push({ ws, a });
  }
  const picked = choose(candidates, order, slots, free);
  const as = order.assignment;
  // Serialised once for all the probes it goes to (the row and the frame), not twice per probe.
  const json = JSON.stringify(as);
  const frame = `{"type":"measure","assignment":${json}}`;
  h.ctx.storage.transactionSync(() => {
    for (const { a } of picked) {
      h.sql(
        "INSERT OR REPLACE INTO assignments (msm_id, probe_id, assignment, periodic, start_time, stop_time) VALUES (?, ?, ?, ?, ?, ?)",
        as.msm_id, a.probe_id, json, as.interval === null ? 0 : 1, as.start_time, as.stop_time);
    }
  });
  for (const { ws, a } of picked) {
    h.connected.set(ws, { ...a, free_slots: a.free_slots - 1 });
    frames.push([ws, frame]);
  }
  return picked.map(({ a }) => ({ probe_id: a.probe_id, shard: h.shard, country_code: a.country_code, asn_v4: a.asn_v4 }));
}
