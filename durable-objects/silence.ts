// Probes that went silent: a cut link sends no FIN, so nothing but time tells a controller a probe is gone. Sockets
// silent past SILENT_AFTER_S are closed and their probes reported gone (sweep), and an alarm is kept armed for the
// moment the quietest connected probe would pass that limit (watch), so a lone probe whose link died does not stay
// Connected for want of another message, dispatch or flush to sweep it.
import { SILENT_AFTER_S } from "./assign.ts";
import type { ConnectedProbes } from "./connected.ts";

export class SilenceWatch {
  private sweptAt = 0;
  private readonly ctx: DurableObjectState;
  private readonly connected: ConnectedProbes;
  private readonly gone: (ws: WebSocket) => void;

  /** `gone` is what the controller does when a socket leaves (it reports the probe disconnected). */
  constructor(ctx: DurableObjectState, connected: ConnectedProbes, gone: (ws: WebSocket) => void) {
    this.ctx = ctx;
    this.connected = connected;
    this.gone = gone;
  }

  /**
   * Closes the sockets of probes silent past SILENT_AFTER_S (but `except`, the one that just spoke). At most every
   * 30 s unless `always` (before every dispatch, and on the alarm).
   */
  sweep(always = false, except?: WebSocket): void {
    const now = Math.floor(Date.now() / 1000);
    if (!always && now - this.sweptAt < 30) return;
    this.sweptAt = now;
    for (const [ws, a] of this.connected.all()) {
      if (ws === except || ws.readyState !== WebSocket.OPEN || now - a.last_seen <= SILENT_AFTER_S) continue;
      try { ws.close(4001, "silent for too long"); } catch { /* already closing */ }
      this.gone(ws);
    }
  }

  /**
   * Arms the alarm for when the quietest probe would pass SILENT_AFTER_S (an earlier alarm already set stays). With
   * probes speaking every 30 s this is an alarm every minute or so, a wake the heartbeats cause anyway. Without
   * `quietest` (on the alarm) every socket is looked at; a hello passes its own probe's, in O(1).
   */
  async watch(quietest = Infinity): Promise<void> {
    if (quietest === Infinity) for (const [ws, a] of this.connected.all()) if (ws.readyState === WebSocket.OPEN) quietest = Math.min(quietest, a.last_seen);
    if (quietest === Infinity) return;
    const at = (quietest + SILENT_AFTER_S + 1) * 1000;
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > at) await this.ctx.storage.setAlarm(at);
  }
}
