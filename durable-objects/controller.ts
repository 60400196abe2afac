// Controller: one per region shard. Holds its probes' WebSockets through the hibernation API (connections, tokens,
// their messages, releases offered), and is the RPC surface of the shard. The work is in modules: connected.ts
// (the connected probes in memory), ingest.ts (results frames, admitted by admission.ts) and commits.ts (their
// group commit, with marks.ts), batches.ts (the outbox to R2, charges, hosts' shares), assign.ts and dispatch.ts
// (which probes take a measurement), handover.ts (a probe that moved shards), stream-feed.ts (results to the
// stream), result-index.ts (where results are, for readers), probe-connect.ts (who may connect, resume tokens),
// probe-frame.ts (a probe's frame read), assignments.ts (what a probe saying hello missed, stops), silence.ts
// (probes whose link died), presence.ts (connections told to the registry and the stream), probe-release.ts (agent
// releases offered); controller-schema.ts and probe-attachment.ts hold its tables and what it keeps per socket.
import { type ControllerMessage, type ProbeMessage, SUBPROTOCOL, USER_MSM_MIN } from "../protocol/index.ts";
import { Batches } from "./batches.ts";
import { assign } from "./assign.ts";
import { catchUp, stopAssignments } from "./assignments.ts";
import type { DispatchOrder } from "./dispatch.ts";
import { BRAIN_NAME, flag, REGISTRY_NAME } from "./env.ts";
import { GroupCommit } from "./commits.ts";
import { ConnectedProbes } from "./connected.ts";
import { giveProbe, type ProbeState, takeProbe } from "./handover.ts";
import { ingest, type IngestHost } from "./ingest.ts";
import { ProbeMarks } from "./marks.ts";
import { PublicMeasurements } from "./public.ts";
import { type ResultIndex, resultIndex, resultsIn } from "./result-index.ts";
import { controllerStub, shardByName } from "./shards.ts";
import { MIGRATIONS } from "./controller-schema.ts";
import type { Participant, ProbeAttachment } from "./probe-attachment.ts";
import { SqlDurableObject } from "./sql.ts";
import { admitConnection, dropProbe, newAttachment, resumeClaims, shedLate, undropProbe, UsedTokens } from "./probe-connect.ts";
import { refusedReleaseReport, releaseOfferFor, type ReleaseTarget } from "./probe-release.ts";
import { SilenceWatch } from "./silence.ts";
import { resolverCheck } from "./system-tags.ts";
import { StreamFeed } from "./stream-feed.ts";
import type { Interest } from "./stream.ts";
import { PresenceReports } from "./presence.ts";
import { readProbeFrame } from "./probe-frame.ts";
import { issueAssignment, RESUME_CHAIN_SECONDS, RESUME_TTL_SECONDS } from "./tokens.ts";

export class Controller extends SqlDurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, MIGRATIONS);
  }

  private get shard(): string {
    return this.ctx.id.name ?? "unnamed";
  }

  private get capacity(): number {
    return Number(this.env.CONTROLLER_CAPACITY ?? 20_000);
  }

  // ── connections ────────────────────────────────────────────────────────────────────────────────────────────

  /** The probes connected here, by socket (connected.ts). */
  private readonly connected = new ConnectedProbes(this.ctx);

  private readonly usedTokens = new UsedTokens(this.ctx, this.sql);

  override async fetch(request: Request): Promise<Response> {
    const late = shedLate(request);
    if (late) return late;
    const admitted = await admitConnection({ env: this.env, ctx: this.ctx, sql: this.sql, shard: this.shard, adopt: (id, from) => this.adopt(id, from) }, this.usedTokens, request);
    if (admitted instanceof Response) return admitted;
    const { probeId, claims } = admitted;
    for (const old of this.ctx.getWebSockets(`probe:${probeId}`)) old.close(4000, "replaced by a newer connection");
    if (this.connected.size >= this.capacity) return new Response("controller full", { status: 503 });

    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server, [`probe:${probeId}`]);
    this.connected.set(server, newAttachment(probeId, claims, request));
    const check = resolverCheck(this.env);
    this.send(server, {
      type: "welcome", probe_id: probeId, shard: this.shard, server_time: Date.now() / 1000, allow_private_targets: flag(this.env.ALLOW_PRIVATE_TARGETS),
      ...(check ? { resolver_check: check.name } : {}),
    });
    return new Response(null, { status: 101, webSocket: client, headers: { "Sec-WebSocket-Protocol": SUBPROTOCOL } });
  }

  override async webSocketClose(ws: WebSocket): Promise<void> {
    this.left(ws);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.left(ws);
  }

  private left(ws: WebSocket): void {
    const a = this.connected.get(ws);
    this.connected.delete(ws);
    if (!a) return;
    // A socket replaced by the same probe's newer connection closes after that one opened: the probe is still here.
    const stillHere = this.ctx.getWebSockets(`probe:${a.probe_id}`).some((w) => w !== ws && w.readyState === WebSocket.OPEN);
    if (!stillHere) this.report("disconnected", a);
  }

  /** Closes the sockets of silent probes and keeps an alarm for the next one to fall silent (silence.ts). */
  private readonly silence = new SilenceWatch(this.ctx, this.connected, (ws) => this.left(ws));

  /** Tells the registry and the stream the probe came or went (presence.ts). */
  private readonly presence = new PresenceReports({
    ctx: this.ctx, env: () => this.env, shard: () => this.shard, connected: () => this.connected.openRecently, capacity: () => this.capacity,
    interest: () => this.streamFeed.interest(),
  });

  private report(event: "connected" | "disconnected", a: ProbeAttachment): void {
    this.presence.report(event, a);
  }

  private send(ws: WebSocket, m: ControllerMessage): void {
    try {
      ws.send(JSON.stringify(m));
    } catch {
      // The socket closed under us; the probe will resend whatever was not acknowledged.
    }
  }

  // ── messages from probes ───────────────────────────────────────────────────────────────────────────────────

  override async webSocketMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    this.used.ws_messages++;
    this.silence.sweep(false, ws);  // not the probe that just spoke
    const a = this.connected.get(ws);
    if (!a) return;
    const frame = readProbeFrame(raw);
    if ("refused" in frame) return this.refuse(ws, a, frame.refused);
    await this.onMessage(ws, a, frame.message, frame.text);
  }

  /** Refuses a message that is not a result (results are refused by ingest.ts, one log line per frame). */
  private refuse(ws: WebSocket, a: ProbeAttachment, reason: string): void {
    console.warn(`controller ${this.shard}: probe ${a.probe_id}: refused a message: ${reason}`);
    this.send(ws, { type: "reject", seq: null, reason });
  }

  private async onMessage(ws: WebSocket, attached: ProbeAttachment, m: ProbeMessage, raw: string): Promise<void> {
    const a = { ...attached, last_seen: Math.floor(Date.now() / 1000) };
    switch (m.type) {
      case "hello": {
        // Only now, with its slots known, is the probe ready for work: that is when it counts as Connected.
        const hello = { ...a, slots: m.slots, free_slots: Math.min(m.free_slots, m.slots), version: /\/([^/\s]+)$/.exec(m.agent)?.[1] };
        this.connected.set(ws, hello);
        this.report("connected", a);
        this.send(ws, { type: "status_ack", server_time: Date.now() / 1000 });
        for (const frame of catchUp(this.sql, a.probe_id, m.running)) this.send(ws, frame);
        this.offerRelease(ws, hello, await this.ctx.storage.get<ReleaseTarget>("release"));
        await this.sendResume(ws);
        // This probe just spoke: an alarm already set comes first; without one, arm it for this probe's limit.
        await this.silence.watch(a.last_seen);
        return;
      }
      case "release_status": {
        const refused = refusedReleaseReport(a.probe_id, m, await this.ctx.storage.get<ReleaseTarget>("release"));
        if (refused) return this.refuse(ws, a, refused);
        const brain = this.env.BRAIN.getByName(BRAIN_NAME);
        this.ctx.waitUntil(brain.releaseReport({ rollout: m.rollout, probe_id: a.probe_id, version: m.version, state: m.state, detail: m.detail })
          .catch((e: unknown) => console.error(`controller ${this.shard}: release report failed: ${String(e)}`)));
        return;
      }
      case "status":
        this.connected.set(ws, { ...a, free_slots: Math.min(m.free_slots, a.slots || m.free_slots) });
        this.send(ws, { type: "status_ack", server_time: Date.now() / 1000 });
        if (a.resume_expires !== undefined && a.resume_expires - a.last_seen < RESUME_TTL_SECONDS / 2) await this.sendResume(ws);
        return;
      case "results":
        return ingest(this.ingestHost, ws, a, m.results, raw.length);
    }
  }

  /** Gives the probe a token to reconnect here once without registering (tokens.ts RESUME_TTL_SECONDS). */
  private async sendResume(ws: WebSocket): Promise<void> {
    const a = this.connected.get(ws);
    // A day after its registration the probe is left to register again (tokens.ts RESUME_CHAIN_SECONDS).
    if (!a || Date.now() / 1000 - (a.registered_at ?? 0) > RESUME_CHAIN_SECONDS) return;
    const { token, expires } = await issueAssignment(this.env.EDGE_PRIVATE_JWK, resumeClaims(this.shard, a), Date.now(), RESUME_TTL_SECONDS);
    const now = this.connected.get(ws);
    if (now) this.connected.set(ws, { ...now, resume_expires: expires });
    this.send(ws, { type: "resume", token, expires });
  }

  // ── signed agent releases ────────────────────────────────────────────────────────────────────────────────────

  /** The brain's word on what probes should run (null: nothing new); offered at once to the connected ones. */
  async setRelease(target: ReleaseTarget | null): Promise<void> {
    if (target) await this.ctx.storage.put("release", target);
    else await this.ctx.storage.delete("release");
    for (const [ws, a] of this.connected.all()) this.offerRelease(ws, a, target ?? undefined);
  }

  /** Offers the release to the probe if it is in the rollout's share and runs another version (probe-release.ts). */
  private offerRelease(ws: WebSocket, a: ProbeAttachment, target: ReleaseTarget | undefined): void {
    const offer = releaseOfferFor(a, target);
    if (offer) this.send(ws, { type: "release", ...offer });
  }

  /**
   * Takes over a probe from the shard it was on (handover.ts): its assignments and mark, and the brain's record of
   * where its measurements run, so their stops come here.
   */
  private async adopt(probeId: number, from: string): Promise<void> {
    const old = shardByName(from);
    if (!old) return;
    const state = await controllerStub(this.env.CONTROLLER, old).handOver(probeId, this.shard);
    this.ctx.storage.transactionSync(() => takeProbe(this.sql, this.marks, probeId, state));
    const msms = state.assignments.map((r) => r.msm_id).filter((m) => m >= USER_MSM_MIN);
    if (msms.length) await this.env.BRAIN.getByName(BRAIN_NAME).moveParticipant(probeId, from, this.shard, msms);
  }

  /** RPC from the shard a probe moved to: its state here, marked as handed over (its socket here, if any, closed). */
  handOver(probeId: number, to: string): ProbeState {
    this.commits.commit();  // what its socket here staged is in the mark handed over
    const state = this.ctx.storage.transactionSync(() => giveProbe(this.sql, this.marks, probeId, to));
    for (const ws of this.ctx.getWebSockets(`probe:${probeId}`)) ws.close(4000, `moved to ${to}`);
    return state;
  }

  /** Probes' high-water marks, shares and run counts (marks.ts). */
  private readonly marks = new ProbeMarks(this.sql);

  /** Frames of a commit window written together (commits.ts). */
  private readonly commits = new GroupCommit({
    ctx: this.ctx, sql: this.sql, marks: this.marks,
    send: (ws, m) => this.send(ws, m),
    windowMs: () => Number(this.env.COMMIT_WINDOW_MS ?? 500),
    stored: async (results) => {
      await this.batches.schedule();
      await this.streamFeed.publish(results);
    },
  });

  /** What ingest.ts needs of this controller. */
  private readonly ingestHost: IngestHost = {
    env: () => this.env, sql: this.sql, commits: this.commits,
    send: (ws, m) => this.send(ws, m),
    attach: (ws, a) => this.connected.set(ws, a),
    warn: (line) => console.warn(`controller ${this.shard}: ${line}`),
    systemTagsChanged: (probeId, tags, works) => this.ctx.waitUntil(this.env.REGISTRY.getByName(REGISTRY_NAME).setSystemTags(probeId, tags, works)
      .catch((e: unknown) => console.error(`controller ${this.shard}: probe ${probeId}: system tags to the registry failed: ${String(e)}`))),
  };

  // ── the result stream ──────────────────────────────────────────────────────────────────────────────────────

  private readonly publicMeasurements = new PublicMeasurements(this.env);
  /** What the stream's subscribers want, and the results they want sent to the hub (stream-feed.ts). */
  private readonly streamFeed = new StreamFeed(this.ctx, () => this.env, () => this.shard);

  /** The stream hub tells every controller what is subscribed whenever that changes. */
  setStreamInterest(interest: Interest): Promise<void> {
    return this.streamFeed.setInterest(interest);
  }

  // ── batches to R2 ──────────────────────────────────────────────────────────────────────────────────────────

  /** Writes the outbox to R2 (batches.ts); the alarm runs it. */
  private readonly batches = new Batches({
    ctx: this.ctx, env: () => this.env, shard: () => this.shard, sql: this.sql, marks: this.marks, saveUsage: () => this.saveUsage(),
    publicMeasurements: this.publicMeasurements,
    probeAsns: () => {
      const asn = new Map<number, number | null>();
      for (const [, a] of this.connected.all()) asn.set(a.probe_id, a.asn_v4);
      return asn;
    },
  });

  /** The flush alarm (batches.ts arms its own retries when it fails), which also sweeps silent probes. */
  override async alarm(): Promise<void> {
    this.used.requests++;
    this.silence.sweep(true);
    await this.batches.onAlarm();
    await this.silence.watch();
  }

  /** One flush at a time: the alarm and an operator's flush must not both write the same sealed batches. */
  flush(): Promise<{ objects: number; results: number }> {
    return this.batches.flush();
  }

  // ── RPC from the brain and the API ─────────────────────────────────────────────────────────────────────────

  /**
   * Gives each order's measurement to up to `want` matching probes with a free slot, diverse ASNs first; the orders
   * in turn (each sees the slots the ones before took). The brain sends the orders it makes together in one call,
   * so a probe given many measurements gets their frames back to back.
   */
  dispatch(orders: DispatchOrder[]): Participant[][] {
    this.silence.sweep(true);
    const frames: [WebSocket, string][] = [];
    const host = { ctx: this.ctx, sql: this.sql, connected: this.connected, shard: this.shard };
    const given = orders.map((order) => assign(host, order, frames));
    for (const [ws, frame] of frames) {
      try { ws.send(frame); } catch { /* closed under us: the assignment is re-sent when the probe is back */ }
    }
    return given;
  }

  /** Closes a probe's socket (an operator disabled it: it cannot register again until enabled). */
  drop(probeId: number, reason: string): number {
    dropProbe(this.sql, probeId);
    const sockets = this.ctx.getWebSockets(`probe:${probeId}`);
    for (const ws of sockets) ws.close(4003, reason.slice(0, 120));
    return sockets.length;
  }

  /** The operator enabled the probe again: its tokens connect here again. */
  undrop(probeId: number): void {
    undropProbe(this.sql, probeId);
  }

  /** Stops a measurement on this shard's probes (on those listed, when `probeIds` is given; assignments.ts). */
  stop(msmId: number, probeIds?: number[]): number {
    const { stopped, tell } = stopAssignments(this.sql, msmId, probeIds);
    for (const probeId of tell) for (const ws of this.ctx.getWebSockets(`probe:${probeId}`)) this.send(ws, { type: "stop", msm_id: msmId });
    return stopped;
  }

  /** Where this shard's results of a measurement are: R2 batch keys, plus results not yet flushed (JSONL). */
  resultIndex(msmId: number, start: number | null, stop: number | null): ResultIndex {
    return resultIndex(this.sql, msmId, start, stop);
  }

  /** Where this shard's results of `type` (any, if null) between `start` and `stop` are (result-index.ts). */
  resultsIn(start: number, stop: number, type: string | null): ResultIndex {
    return resultsIn(this.sql, start, stop, type);
  }

  load(): { shard: string; connected: number; capacity: number; pending_results: number; r2_writes: number; results_written: number } {
    const pending = this.sql<{ n: number | null }>("SELECT SUM(count) AS n FROM outbox")[0]?.n ?? 0;
    return {
      shard: this.shard, connected: this.connected.open, capacity: this.capacity, pending_results: pending,
      r2_writes: this.batches.stat("r2_writes"), results_written: this.batches.stat("results_written"),
    };
  }
}

