// The probes connected to a controller, in memory: each socket's attachment (controller.ts ProbeAttachment) kept in
// a map beside the socket, written through to the attachment (which survives hibernation) and rebuilt from the
// attachments when the object wakes, as partyserver keeps its connections. Dispatch, frames and status reports read
// the map: deserialising every socket's attachment for every order cost sockets × orders (bench:controller).
import type { ProbeAttachment } from "./probe-attachment.ts";

export class ConnectedProbes {
  private readonly ctx: DurableObjectState;
  private byWs: Map<WebSocket, ProbeAttachment> | null = null;

  constructor(ctx: DurableObjectState) {
    this.ctx = ctx;
  }

  private map(): Map<WebSocket, ProbeAttachment> {
    if (!this.byWs) {
      this.byWs = new Map();
      for (const ws of this.ctx.getWebSockets()) {
        const a = ws.deserializeAttachment() as ProbeAttachment | null;
        if (a) this.byWs.set(ws, a);
      }
    }
    return this.byWs;
  }

  /** What the controller keeps about the probe on this socket (null: not one of its probes' sockets). */
  get(ws: WebSocket): ProbeAttachment | null {
    return this.map().get(ws) ?? null;
  }

  /** Records what the controller keeps about the probe on this socket, in memory and in its attachment. */
  set(ws: WebSocket, a: ProbeAttachment): void {
    ws.serializeAttachment(a);
    this.map().set(ws, a);
  }

  /** The socket is gone. */
  delete(ws: WebSocket): void {
    this.byWs?.delete(ws);
  }

  /** Every socket and its probe, open or not (callers check readyState); closed ones are forgotten as they pass. */
  *all(): Generator<[WebSocket, ProbeAttachment]> {
    const map = this.map();
    for (const entry of map) {
      if (entry[0].readyState === WebSocket.CLOSED) map.delete(entry[0]);
      else yield entry;
    }
  }

  /** Sockets known (open, opening, or closed and not yet passed over). */
  get size(): number {
    return this.map().size;
  }

  /** Sockets open or opening. */
  get open(): number {
    let n = 0;
    for (const [ws] of this.all()) if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) n++;
    return n;
  }

  private counted = { at: 0, open: 0 };

  /**
   * `open`, counted at most once a second: every connection and disconnection reports the count (the registry's
   * load figure), and counting each time made a reconnect storm quadratic (8,000 probes: 64 million socket visits).
   */
  get openRecently(): number {
    const now = Date.now();
    if (now - this.counted.at >= 1000) this.counted = { at: now, open: this.open };
    return this.counted.open;
  }
}
