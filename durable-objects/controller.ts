// Controller: one per region shard. Holds its probes' WebSockets through the hibernation API (connections, their
// messages, releases offered, the stream's interest), and is the RPC surface of the shard. The work is in modules:
// ingest.ts (results frames, admitted by admission.ts), batches.ts (the outbox to R2, charges, hosts' shares),
// dispatch.ts (which probes take a measurement), handover.ts (a probe that moved shards).
import { type Assignment, type ControllerMessage, type ProbeMessage, ProbeMessage as ProbeMessageSchema, type Result, SUBPROTOCOL, USER_MSM_MIN } from "../protocol/index.ts";
import { inRollout, type ReleaseOffer } from "../protocol/release.ts";
import type { Allowance } from "./admission.ts";
import { Batches, BUILTINS_INDEX } from "./batches.ts";
import { choose, type DispatchOrder, matches } from "./dispatch.ts";
import { BRAIN_NAME, type Env, flag, REGISTRY_NAME } from "./env.ts";
import { GroupCommit } from "./commits.ts";
import { ConnectedProbes } from "./connected.ts";
import { giveProbe, type ProbeState, takeProbe } from "./handover.ts";
import { ingest, type IngestHost } from "./ingest.ts";
import { ProbeMarks } from "./marks.ts";
import { PublicMeasurements } from "./public.ts";
import { controllerStub, shardByName } from "./shards.ts";
import { SqlDurableObject } from "./sql.ts";
import { type Interest, type ProbeStatusEvent, STREAM_NAME } from "./stream.ts";
import { audienceFor, issueAssignment, RESUME_TTL_SECONDS, verifyAssignment } from "./tokens.ts";

const MIGRATIONS = [
  `CREATE TABLE assignments (
     msm_id INTEGER NOT NULL, probe_id INTEGER NOT NULL, assignment TEXT NOT NULL,
     periodic INTEGER NOT NULL, start_time INTEGER NOT NULL, stop_time INTEGER,
     done INTEGER NOT NULL DEFAULT 0, stopped INTEGER NOT NULL DEFAULT 0,
     PRIMARY KEY (msm_id, probe_id));
   CREATE INDEX assignments_probe ON assignments (probe_id);
   -- Highest result seq stored per probe: everything at or below it is a resend.
   CREATE TABLE probe_seq (probe_id INTEGER PRIMARY KEY, seq INTEGER NOT NULL);
   -- Results acknowledged but not yet in R2; one row per partition per results frame, never one per result.
   CREATE TABLE outbox (
     id INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, date TEXT NOT NULL, hour TEXT NOT NULL,
     msm_ids TEXT NOT NULL, min_ts INTEGER NOT NULL, max_ts INTEGER NOT NULL, count INTEGER NOT NULL,
     body TEXT NOT NULL, batch_key TEXT);
   -- Per-measurement index of the R2 batches this shard wrote.
   CREATE TABLE batches (msm_id INTEGER NOT NULL, key TEXT NOT NULL, min_ts INTEGER NOT NULL, max_ts INTEGER NOT NULL,
     count INTEGER NOT NULL, PRIMARY KEY (msm_id, key));`,
  // Counters an operator (and the benchmark) reads: R2 objects written and results in them.
  `CREATE TABLE stats (name TEXT PRIMARY KEY, value INTEGER NOT NULL);`,
  // Results stored in R2 and not yet charged to their measurement's account: written in the transaction that
  // indexes the batch, deleted once the brain has charged them (each under its own id, so a retry charges once).
  `CREATE TABLE charges (request_id TEXT PRIMARY KEY, msm_id INTEGER NOT NULL, results INTEGER NOT NULL);`,
  // Sealing names a batch by its partition and id range instead of stamping each outbox row (one SQLite row written
  // per batch, not per results frame): rows up to stats.sealed_upto are sealed, each in the batch of its partition
  // whose range holds it. (outbox.batch_key is what batches were sealed with before; it is carried over here.)
  `CREATE TABLE sealed (key TEXT PRIMARY KEY, type TEXT NOT NULL, date TEXT NOT NULL, hour TEXT NOT NULL,
     first_id INTEGER NOT NULL, last_id INTEGER NOT NULL);
   INSERT INTO sealed (key, type, date, hour, first_id, last_id)
     SELECT batch_key, type, date, hour, MIN(id), MAX(id) FROM outbox WHERE batch_key IS NOT NULL GROUP BY batch_key;
   INSERT OR REPLACE INTO stats (name, value) SELECT 'sealed_upto', COALESCE(MAX(id), 0) FROM outbox WHERE batch_key IS NOT NULL;`,
  // Hosts' share of what their probes' results cost, in thousandths of a credit: accrued in the row each results
  // frame writes anyway (the probe's high-water mark), paid through the registry in whole credits. `paying_milli`
  // marks a payout on its way (its request id is derived from it, so a retry pays once).
  `ALTER TABLE probe_seq ADD COLUMN share_milli INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE probe_seq ADD COLUMN paid_milli INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE probe_seq ADD COLUMN paying_milli INTEGER;
   ALTER TABLE probe_seq ADD COLUMN paid_at INTEGER NOT NULL DEFAULT 0;`,
  // Queries across measurements find a time range's batches (GET /api/v2/results/).
  `CREATE INDEX batches_time ON batches (max_ts, min_ts);`,
  // Results stored per assignment (a periodic measurement's are bounded by its interval, admission.ts), and the
  // assignment tokens already used to connect (each opens one socket; kept until they expire).
  `ALTER TABLE assignments ADD COLUMN results INTEGER NOT NULL DEFAULT 0;
   CREATE TABLE used_tokens (jti TEXT PRIMARY KEY, expires INTEGER NOT NULL);`,
  // The shard an assignment was handed over to with its probe (handover.ts): its results are accepted there.
  `ALTER TABLE assignments ADD COLUMN moved_to TEXT;`,
  // Results stored per periodic assignment of a probe, {msm: n}, in the row each results frame writes anyway.
  `ALTER TABLE probe_seq ADD COLUMN runs TEXT NOT NULL DEFAULT '{}';`,
  // Probes' marks leave their row per probe (a row written per results frame) for memory, made durable by the group
  // commit's outbox rows and snapshot rows (marks.ts, which re-chunks these 64 at its first snapshot); what is left
  // per probe is its payouts (batches.ts).
  `CREATE TABLE mark_chunks (chunk INTEGER PRIMARY KEY, body TEXT NOT NULL);
   INSERT INTO mark_chunks (chunk, body)
     SELECT probe_id % 64, json_group_object(probe_id, json_object('seq', seq, 'share', share_milli, 'runs', json(runs)))
     FROM probe_seq GROUP BY probe_id % 64;
   CREATE TABLE payouts (probe_id INTEGER PRIMARY KEY, paid_milli INTEGER NOT NULL, paying_milli INTEGER, paid_at INTEGER NOT NULL);
   INSERT INTO payouts (probe_id, paid_milli, paying_milli, paid_at)
     SELECT probe_id, paid_milli, paying_milli, paid_at FROM probe_seq WHERE paid_milli > 0 OR paying_milli IS NOT NULL;
   DROP TABLE probe_seq;
   ALTER TABLE outbox ADD COLUMN marks TEXT;`,
  // One outbox row per group commit (commits.ts), listing the partitions its results fall in, without AUTOINCREMENT
  // (its counter was one more row written per commit): a commit takes the next id after the highest in the outbox
  // or sealed, and rows are deleted only once sealed (batches.ts), so no id is given twice.
  `CREATE TABLE outbox_commits (id INTEGER PRIMARY KEY, parts TEXT NOT NULL, msm_ids TEXT NOT NULL,
     min_ts INTEGER NOT NULL, max_ts INTEGER NOT NULL, count INTEGER NOT NULL, body TEXT NOT NULL, marks TEXT);
   INSERT INTO outbox_commits SELECT id, type || '|' || date || '|' || hour, msm_ids, min_ts, max_ts, count, body, marks FROM outbox;
   DROP TABLE outbox;
   ALTER TABLE outbox_commits RENAME TO outbox;`,
  // Probes the operator disconnected, and when: tokens issued before (a resume token above all) no longer connect.
  `CREATE TABLE dropped (probe_id INTEGER PRIMARY KEY, at INTEGER NOT NULL);`,
];


/** What the controller keeps about each connected probe, in the socket attachment (survives hibernation). */
export type ProbeAttachment = {
  probe_id: number;
  country_code: string | null;
  asn_v4: number | null;
  prefix_v4: string | null;
  tags?: string[];
  /** Latitude,longitude to 0.1° (about a city), from the registry; null when unknown. */
  cell?: string | null;
  address: string | null;
  connected_since: number;
  /** When the probe last sent anything (unix seconds); probes send a status at least every heartbeat. */
  last_seen: number;
  slots: number;
  free_slots: number;
  /** The agent's version, from its hello ("vantage-probe/1.2.3"). */
  version?: string;
  /** Its use of the per-minute result allowance (admission.ts). */
  allowance?: Allowance;
  /** Timestamp of the last stored result of each built-in measurement id, which bounds how often they come. */
  builtin_last?: Record<number, number>;
  /** When the resume token the probe holds expires (it is sent a new one at half its life). */
  resume_expires?: number;
};

/** The release this controller's probes are offered, with the share of probes the rollout has reached. */
type ReleaseTarget = ReleaseOffer & { percent: number };



/** A probe taking part in a measurement, on `shard`; `was`: shards it ran it on before it moved (they hold results). */
export type Participant = { probe_id: number; shard: string; country_code: string | null; asn_v4: number | null; was?: string[] };

const MAX_FRAME_BYTES = 4 * 1024 * 1024;
/** A probe silent for this long (three missed 30 s heartbeats) gets no work; its socket is presumed dead. */
export const SILENT_AFTER_S = 95;

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

  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return new Response("expected a WebSocket upgrade", { status: 426 });
    }
    const protocols = (request.headers.get("Sec-WebSocket-Protocol") ?? "").split(",").map((s) => s.trim());
    if (!protocols.includes(SUBPROTOCOL)) {
      return new Response(`unsupported protocol: offer ${SUBPROTOCOL}`, { status: 400 });
    }
    const token = request.headers.get("Authorization")?.match(/^Bearer\s+(\S+)$/)?.[1];
    if (!token) return new Response("missing assignment token", { status: 401 });
    let claims;
    try {
      claims = await verifyAssignment(this.env.EDGE_PUBLIC_JWK, token, this.shard);
    } catch (e) {
      return new Response((e as Error).message, { status: 403 });
    }
    const probeId = Number(claims.sub);
    // A token opens one socket: one seen in transit or in a log cannot be used to push the probe off its controller.
    const jti = (claims as { jti?: string }).jti, exp = (claims as { exp?: number }).exp ?? 0;
    if (!jti) return new Response("assignment token has no id", { status: 403 });
    const now0 = Math.floor(Date.now() / 1000);
    const fresh = this.ctx.storage.transactionSync(() => {
      this.sql("DELETE FROM used_tokens WHERE expires < ?", now0);
      return this.sql("INSERT INTO used_tokens (jti, expires) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING RETURNING jti", jti, exp).length > 0;
    });
    if (!fresh) return new Response("assignment token already used: register again for a new one", { status: 403 });
    const dropped = this.sql<{ at: number }>("SELECT at FROM dropped WHERE probe_id = ?", probeId)[0];
    if (dropped && dropped.at >= ((claims as { iat?: number }).iat ?? 0)) {
      return new Response("this probe was disconnected by the operator: register again", { status: 403 });
    }
    if (claims.prev_shard && claims.prev_shard !== this.shard) {
      try {
        await this.adopt(probeId, claims.prev_shard);
      } catch (e) {
        console.error(`controller ${this.shard}: probe ${probeId}: handover from ${claims.prev_shard} failed: ${String(e)}`);
        return new Response(`this probe's previous controller (${claims.prev_shard}) could not hand it over yet; register again`, { status: 503 });
      }
    }
    for (const old of this.ctx.getWebSockets(`probe:${probeId}`)) old.close(4000, "replaced by a newer connection");
    if (this.connected.size >= this.capacity) return new Response("controller full", { status: 503 });

    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server, [`probe:${probeId}`]);
    const now = Math.floor(Date.now() / 1000);
    const attachment: ProbeAttachment = {
      probe_id: probeId,
      country_code: claims.country_code,
      asn_v4: claims.asn_v4,
      prefix_v4: claims.prefix_v4,
      tags: claims.tags ?? [],
      cell: claims.cell ?? null,
      address: request.headers.get("CF-Connecting-IP"),
      connected_since: now,
      last_seen: now,
      slots: 0,
      free_slots: 0,
    };
    this.connected.set(server, attachment);
    this.send(server, { type: "welcome", probe_id: probeId, shard: this.shard, server_time: Date.now() / 1000, allow_private_targets: flag(this.env.ALLOW_PRIVATE_TARGETS) });
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
    if (!stillHere) this.report(a.probe_id, "disconnected", a.address, Math.floor(Date.now() / 1000), a);
  }

  private report(probeId: number, event: "connected" | "disconnected", address: string | null, at: number, a?: ProbeAttachment): void {
    if (a) {
      const status: ProbeStatusEvent = {
        prb_id: probeId, event: event === "connected" ? "connect" : "disconnect", timestamp: at, asn: a.asn_v4, country_code: a.country_code, prefix: a.prefix_v4,
      };
      this.ctx.waitUntil(this.streamInterest().then((i) => (i?.probestatus ? this.env.STREAM.getByName(STREAM_NAME).probeStatus(status) : undefined))
        .catch((e: unknown) => console.error(`controller ${this.shard}: probe status to the stream failed: ${String(e)}`)));
    }
    const connected = this.connected.open;
    const registry = this.env.REGISTRY.getByName(REGISTRY_NAME);
    this.ctx.waitUntil(
      registry.probeSession({ probe_id: probeId, shard: this.shard, event, address, at, connected, capacity: this.capacity })
        .catch((e: unknown) => console.error(`controller ${this.shard}: registry report failed: ${String(e)}`)),
    );
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
    const a = this.connected.get(ws);
    if (!a) return;
    const text = typeof raw === "string" ? raw : null;
    if (text === null || text.length > MAX_FRAME_BYTES) {
      return this.refuse(ws, a, null, text === null ? "binary frames are not part of the protocol" : "frame too large");
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return this.refuse(ws, a, null, "frame is not JSON");
    }
    const m = ProbeMessageSchema.safeParse(parsed);
    if (!m.success) {
      const issue = m.error.issues[0]!;
      return this.refuse(ws, a, null, `invalid message at /${issue.path.join("/")}: ${issue.message}`);
    }
    await this.onMessage(ws, a, m.data, text);
  }

  private refuse(ws: WebSocket, a: ProbeAttachment, seq: number | null, reason: string, retryAfter?: number): void {
    console.warn(`controller ${this.shard}: probe ${a.probe_id}: refused${seq === null ? "" : ` result ${seq}`}: ${reason}`);
    this.send(ws, retryAfter ? { type: "reject", seq, reason, retry_after: retryAfter } : { type: "reject", seq, reason });
  }

  private async onMessage(ws: WebSocket, attached: ProbeAttachment, m: ProbeMessage, raw: string): Promise<void> {
    const a = { ...attached, last_seen: Math.floor(Date.now() / 1000) };
    switch (m.type) {
      case "hello": {
        // Only now, with its slots known, is the probe ready for work: that is when it counts as Connected.
        const hello = { ...a, slots: m.slots, free_slots: Math.min(m.free_slots, m.slots), version: /\/([^/\s]+)$/.exec(m.agent)?.[1] };
        this.connected.set(ws, hello);
        this.report(a.probe_id, "connected", a.address, a.connected_since, a);
        this.send(ws, { type: "status_ack", server_time: Date.now() / 1000 });
        for (const assignment of this.activeAssignments(a.probe_id)) {
          if (!m.running.includes(assignment.msm_id)) this.send(ws, { type: "measure", assignment });
        }
        // What the probe still schedules but was stopped (or ended) while it was away is stopped now.
        for (const msm of this.endedOf(a.probe_id, m.running)) this.send(ws, { type: "stop", msm_id: msm });
        this.offerRelease(ws, hello, await this.ctx.storage.get<ReleaseTarget>("release"));
        await this.sendResume(ws);
        return;
      }
      case "release_status": {
        // Only a report on the release this probe is being offered counts: a probe cannot halt (or pass) a rollout
        // it is not part of, or report on a version it was never given.
        const target = await this.ctx.storage.get<ReleaseTarget>("release");
        if (!target || target.rollout !== m.rollout || target.version !== m.version || !inRollout(a.probe_id, target.version, target.percent)) {
          return this.refuse(ws, a, null, `release_status for rollout ${m.rollout} (${m.version}): no such release was offered to this probe`);
        }
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
    if (!a) return;
    const { token, expires } = await issueAssignment(this.env.EDGE_PRIVATE_JWK, {
      sub: String(a.probe_id), aud: audienceFor(this.shard), country_code: a.country_code, asn_v4: a.asn_v4, prefix_v4: a.prefix_v4,
      tags: a.tags ?? [], cell: a.cell ?? null, prev_shard: null,
    }, Date.now(), RESUME_TTL_SECONDS);
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

  /** Offers the release to a probe in its rollout's share that says (in its hello) it runs another version. */
  private offerRelease(ws: WebSocket, a: ProbeAttachment, target: ReleaseTarget | undefined): void {
    if (!target || !a.version || a.version === target.version || !inRollout(a.probe_id, target.version, target.percent)) return;
    const { percent: _, ...offer } = target;
    this.send(ws, { type: "release", ...offer });
  }

  /** Of the measurements a probe says it schedules, those this shard knows to be stopped or over. */
  private endedOf(probeId: number, running: number[]): number[] {
    if (!running.length) return [];
    const now = Math.floor(Date.now() / 1000);
    return this.sql<{ msm_id: number }>(
      `SELECT msm_id FROM assignments WHERE probe_id = ? AND msm_id IN (${running.map(Number).join(",")}) AND (stopped = 1 OR stop_time <= ?)`,
      probeId, now).map((r) => r.msm_id);
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

  private activeAssignments(probeId: number): Assignment[] {
    const now = Math.floor(Date.now() / 1000);
    return this.sql<{ assignment: string }>(
      `SELECT assignment FROM assignments WHERE probe_id = ? AND stopped = 0 AND done = 0 AND moved_to IS NULL
         AND (stop_time IS NULL OR stop_time > ?) AND (periodic = 1 OR start_time > ?)`,
      probeId, now, now - 3600,
    ).map((r) => JSON.parse(r.assignment) as Assignment);
  }

  /** The probes connected here, by socket (connected.ts). */
  private readonly connected = new ConnectedProbes(this.ctx);

  /** Probes' high-water marks, shares and run counts (marks.ts). */
  private readonly marks = new ProbeMarks(this.sql);

  /** Frames of a commit window written together (commits.ts). */
  private readonly commits = new GroupCommit({
    ctx: this.ctx, sql: this.sql, marks: this.marks,
    send: (ws, m) => this.send(ws, m),
    windowMs: () => Number(this.env.COMMIT_WINDOW_MS ?? 500),
    stored: async (results) => {
      await this.scheduleFlush();
      await this.toStream(results);
    },
  });

  /** What ingest.ts needs of this controller. */
  private readonly ingestHost: IngestHost = {
    env: () => this.env, sql: this.sql, commits: this.commits,
    send: (ws, m) => this.send(ws, m),
    attach: (ws, a) => this.connected.set(ws, a),
    warn: (line) => console.warn(`controller ${this.shard}: ${line}`),
  };

  // ── the result stream ──────────────────────────────────────────────────────────────────────────────────────

  private interest: Interest | null | undefined;
  private readonly publicMeasurements = new PublicMeasurements(this.env);

  /** What the stream's subscribers want, as the hub last said (kept in storage across evictions). */
  private async streamInterest(): Promise<Interest | null> {
    if (this.interest === undefined) this.interest = (await this.ctx.storage.get<Interest>("stream_interest")) ?? null;
    return this.interest;
  }

  /** The stream hub tells every controller what is subscribed whenever that changes. */
  async setStreamInterest(interest: Interest): Promise<void> {
    this.interest = interest;
    await this.ctx.storage.put("stream_interest", interest);
  }

  /** Sends the hub the stored results someone subscribed to (one copy, whatever the number of subscribers). */
  private async toStream(results: Result[]): Promise<void> {
    const i = await this.streamInterest();
    if (!i || (!i.all && !i.msm.length && !i.prb.length && !i.type.length)) return;
    const wanted = i.all ? results : results.filter((r) => i.msm.includes(r.msm_id) || i.prb.includes(r.prb_id) || i.type.includes(r.type));
    if (!wanted.length) return;
    try {
      await this.env.STREAM.getByName(STREAM_NAME).publish(wanted);
    } catch (e) {
      console.error(`controller ${this.shard}: results to the stream failed: ${String(e)}`);
    }
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

  private scheduleFlush(): Promise<void> {
    return this.batches.schedule();
  }

  /** The flush alarm (batches.ts arms its own retries when it fails). */
  override async alarm(): Promise<void> {
    this.used.requests++;
    await this.batches.onAlarm();
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
    const frames: [WebSocket, string][] = [];
    const given = orders.map((order) => this.dispatchOne(order, frames));
    for (const [ws, frame] of frames) {
      try { ws.send(frame); } catch { /* closed under us: the assignment is re-sent when the probe is back */ }
    }
    return given;
  }

  /** One order: the probes picked (their slots taken, their rows written); their frames are added to `frames`. */
  private dispatchOne(order: DispatchOrder, frames: [WebSocket, string][]): Participant[] {
    const candidates: { ws: WebSocket; a: ProbeAttachment }[] = [];
    const excluded = new Set(order.exclude);
    const now = Math.floor(Date.now() / 1000);
    let slots = 0, free = 0;
    for (const [ws, a] of this.connected.all()) {
      if (ws.readyState === WebSocket.OPEN) { slots += a.slots; free += a.free_slots; }
      if (ws.readyState !== WebSocket.OPEN || a.free_slots < 1) continue;
      if (now - a.last_seen > SILENT_AFTER_S) {
        ws.close(4001, "silent for too long");
        continue;
      }
      if (excluded.has(a.probe_id) || !matches(a, order.filter)) continue;
      candidates.push({ ws, a });
    }
    const picked = choose(candidates, order, slots, free);
    const as = order.assignment;
    // Serialised once for all the probes it goes to (the row and the frame), not twice per probe.
    const json = JSON.stringify(as);
    const frame = `{"type":"measure","assignment":${json}}`;
    this.ctx.storage.transactionSync(() => {
      for (const { a } of picked) {
        this.sql(
          "INSERT OR REPLACE INTO assignments (msm_id, probe_id, assignment, periodic, start_time, stop_time) VALUES (?, ?, ?, ?, ?, ?)",
          as.msm_id, a.probe_id, json, as.interval === null ? 0 : 1, as.start_time, as.stop_time);
      }
    });
    for (const { ws, a } of picked) {
      this.connected.set(ws, { ...a, free_slots: a.free_slots - 1 });
      frames.push([ws, frame]);
    }
    return picked.map(({ a }) => ({ probe_id: a.probe_id, shard: this.shard, country_code: a.country_code, asn_v4: a.asn_v4 }));
  }

  /** Closes a probe's socket (an operator disabled it: it cannot register again until enabled). */
  drop(probeId: number, reason: string): number {
    // Its tokens, resume tokens above all, stop working here: it must register, which the registry refuses.
    const now = Math.floor(Date.now() / 1000);
    this.sql("DELETE FROM dropped WHERE at < ?", now - RESUME_TTL_SECONDS);
    this.sql("INSERT OR REPLACE INTO dropped (probe_id, at) VALUES (?, ?)", probeId, now);
    const sockets = this.ctx.getWebSockets(`probe:${probeId}`);
    for (const ws of sockets) ws.close(4003, reason.slice(0, 120));
    return sockets.length;
  }

  /** The operator enabled the probe again: its tokens connect here again. */
  undrop(probeId: number): void {
    this.sql("DELETE FROM dropped WHERE probe_id = ?", probeId);
  }

  /**
   * Stops a measurement on this shard's probes (on those listed, when `probeIds` is given). A probe whose one-off
   * result is in has nothing left to stop and is not told (a round of one-offs ending would send a frame each).
   */
  stop(msmId: number, probeIds?: number[]): number {
    const only = probeIds ? ` AND probe_id IN (${probeIds.map(Number).join(",") || "NULL"})` : "";
    // The stop time bounds the results still accepted (admission.ts): those measured after it are refused.
    const now = Math.floor(Date.now() / 1000);
    const probes = this.sql<{ probe_id: number; done: number }>(
      `UPDATE assignments SET stopped = 1, stop_time = MIN(COALESCE(stop_time, ?), ?) WHERE msm_id = ?${only} RETURNING probe_id, done`, now, now, msmId);
    for (const { probe_id } of probes.filter((p) => !p.done)) {
      for (const ws of this.ctx.getWebSockets(`probe:${probe_id}`)) this.send(ws, { type: "stop", msm_id: msmId });
    }
    return probes.length;
  }

  /** Where this shard's results of a measurement are: R2 batch keys, plus results not yet flushed (JSONL). */
  resultIndex(msmId: number, start: number | null, stop: number | null): { keys: string[]; pending: string } {
    const lo = start ?? 0, hi = stop ?? Number.MAX_SAFE_INTEGER;
    // Built-ins are indexed together (batches.ts); readers pick a measurement's lines out of a batch.
    const keys = this.sql<{ key: string }>(
      "SELECT DISTINCT key FROM batches WHERE msm_id IN (?, ?) AND max_ts >= ? AND min_ts <= ? ORDER BY key",
      msmId, msmId < USER_MSM_MIN ? BUILTINS_INDEX : msmId, lo, hi).map((r) => r.key);
    const pending = this.sql<{ body: string }>(
      "SELECT body FROM outbox WHERE ',' || msm_ids || ',' LIKE ? AND max_ts >= ? AND min_ts <= ? ORDER BY id",
      `%,${msmId},%`, lo, hi).map((r) => r.body).join("");
    return { keys, pending };
  }

  /**
   * Every batch key holding results of `type` (any, if null) that started between `start` and `stop`, and the
   * matching results not yet flushed: what a query across measurements reads.
   */
  resultsIn(start: number, stop: number, type: string | null): { keys: string[]; pending: string } {
    const prefix = `results/type=${type ?? ""}%`;
    const keys = this.sql<{ key: string }>(
      "SELECT DISTINCT key FROM batches WHERE max_ts >= ? AND min_ts <= ? AND key LIKE ? ORDER BY key", start, stop, prefix).map((r) => r.key);
    // A row holds a commit's results of every type: the caller picks the lines of `type`.
    const pending = this.sql<{ body: string }>(
      "SELECT body FROM outbox WHERE max_ts >= ? AND min_ts <= ? AND (? IS NULL OR ',' || parts LIKE ?) ORDER BY id",
      start, stop, type, `%,${type}|%`).map((r) => r.body).join("");
    return { keys, pending };
  }

  load(): { shard: string; connected: number; capacity: number; pending_results: number; r2_writes: number; results_written: number } {
    const pending = this.sql<{ n: number | null }>("SELECT SUM(count) AS n FROM outbox")[0]?.n ?? 0;
    return {
      shard: this.shard, connected: this.connected.open, capacity: this.capacity, pending_results: pending,
      r2_writes: this.batches.stat("r2_writes"), results_written: this.batches.stat("results_written"),
    };
  }
}

export { BUSY_FREE_SHARE, type DispatchOrder, type ProbeFilter } from "./dispatch.ts";
