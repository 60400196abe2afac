// Controller: one per region shard. Holds its probes' WebSockets through the hibernation API, hands out work to
// probes with free slots, acknowledges results only once they are durable in its SQLite outbox, and writes the
// outbox to R2 in batches (one object per partition per flush), keeping a per-measurement index of the batches.
import {
  type Assignment, type ControllerMessage, type FrameSubmission, inCidr, type ProbeMessage, ProbeMessage as ProbeMessageSchema,
  creditsPerResult, HOST_SHARE_MILLI_PER_CREDIT, Result as ResultSchema, type Result, SUBPROTOCOL, USER_MSM_MIN,
} from "../protocol/index.ts";
import { inRollout, type ReleaseOffer } from "../protocol/release.ts";
import { admit, type Allowance, type Held, limitsOf, refuseAssigned, refuseBuiltin } from "./admission.ts";
import { giveProbe, type ProbeState, takeProbe } from "./handover.ts";
import { controllerStub, shardByName } from "./shards.ts";
import { type AggregateGroup, aggregateKey, type BatchAggregate, batchKey, partitionOf } from "../storage/layout.ts";
import { BRAIN_NAME, type Env, flag, REGISTRY_NAME } from "./env.ts";
import { groupBy } from "./group-by.ts";
import { PublicMeasurements } from "./public.ts";
import { SqlDurableObject } from "./sql.ts";
import { type Interest, type ProbeStatusEvent, STREAM_NAME } from "./stream.ts";
import { verifyAssignment } from "./tokens.ts";

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
];

/** Hosts are paid their share once this much is due, or at the first flush an hour after their last payout. */
const HOST_PAYOUT_CREDITS = 1000;
const HOST_PAYOUT_INTERVAL_S = 3600;

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
};

/** The release this controller's probes are offered, with the share of probes the rollout has reached. */
type ReleaseTarget = ReleaseOffer & { percent: number };

export type ProbeFilter = { country?: string; asn?: number; prefix?: string; probe_ids?: number[]; tags?: { include?: string[]; exclude?: string[] } };

/** `busyOk` false: a busy controller (BUSY_FREE_SHARE of its probes' slots free, or less) gives at most half of `want`. */
export type DispatchOrder = { assignment: Assignment; filter: ProbeFilter; want: number; exclude: number[]; busyOk?: boolean };

/** A controller whose connected probes have at most this share of their slots free is busy. */
export const BUSY_FREE_SHARE = 0.25;
/** A probe taking part in a measurement, on `shard`; `was`: shards it ran it on before it moved (they hold results). */
export type Participant = { probe_id: number; shard: string; country_code: string | null; asn_v4: number | null; was?: string[] };

const MAX_FRAME_BYTES = 4 * 1024 * 1024;
/** An R2 call that takes longer is abandoned (and the flush retried): a hung call must not hold results back. */
const R2_TIMEOUT_MS = 30_000;

/** `p`, or an error naming `what` once `ms` have passed. */
function timeLimit<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms); })])
    .finally(() => clearTimeout(timer));
}
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
    if (claims.prev_shard && claims.prev_shard !== this.shard) {
      try {
        await this.adopt(probeId, claims.prev_shard);
      } catch (e) {
        console.error(`controller ${this.shard}: probe ${probeId}: handover from ${claims.prev_shard} failed: ${String(e)}`);
        return new Response(`this probe's previous controller (${claims.prev_shard}) could not hand it over yet; register again`, { status: 503 });
      }
    }
    for (const old of this.ctx.getWebSockets(`probe:${probeId}`)) old.close(4000, "replaced by a newer connection");
    if (this.ctx.getWebSockets().length >= this.capacity) return new Response("controller full", { status: 503 });

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
    server.serializeAttachment(attachment);
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
    const a = ws.deserializeAttachment() as ProbeAttachment | null;
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
    const connected = this.ctx.getWebSockets().filter((w) => w.readyState === WebSocket.OPEN || w.readyState === WebSocket.CONNECTING).length;
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
    const a = ws.deserializeAttachment() as ProbeAttachment;
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
        ws.serializeAttachment(hello);
        this.report(a.probe_id, "connected", a.address, a.connected_since, a);
        this.send(ws, { type: "status_ack", server_time: Date.now() / 1000 });
        for (const assignment of this.activeAssignments(a.probe_id)) {
          if (!m.running.includes(assignment.msm_id)) this.send(ws, { type: "measure", assignment });
        }
        // What the probe still schedules but was stopped (or ended) while it was away is stopped now.
        for (const msm of this.endedOf(a.probe_id, m.running)) this.send(ws, { type: "stop", msm_id: msm });
        this.offerRelease(ws, hello, await this.ctx.storage.get<ReleaseTarget>("release"));
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
        ws.serializeAttachment({ ...a, free_slots: Math.min(m.free_slots, a.slots || m.free_slots) });
        this.send(ws, { type: "status_ack", server_time: Date.now() / 1000 });
        return;
      case "results":
        return this.ingest(ws, a, m.results, raw.length);
    }
  }

  // ── signed agent releases ────────────────────────────────────────────────────────────────────────────────────

  /** The brain's word on what probes should run (null: nothing new); offered at once to the connected ones. */
  async setRelease(target: ReleaseTarget | null): Promise<void> {
    if (target) await this.ctx.storage.put("release", target);
    else await this.ctx.storage.delete("release");
    for (const ws of this.ctx.getWebSockets()) {
      const a = ws.deserializeAttachment() as ProbeAttachment | null;
      if (a) this.offerRelease(ws, a, target ?? undefined);
    }
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
    this.ctx.storage.transactionSync(() => takeProbe(this.sql, probeId, state));
    const msms = state.assignments.map((r) => r.msm_id).filter((m) => m >= USER_MSM_MIN);
    if (msms.length) await this.env.BRAIN.getByName(BRAIN_NAME).moveParticipant(probeId, from, this.shard, msms);
  }

  /** RPC from the shard a probe moved to: its state here, marked as handed over (its socket here, if any, closed). */
  handOver(probeId: number, to: string): ProbeState {
    const state = this.ctx.storage.transactionSync(() => giveProbe(this.sql, probeId, to));
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

  /**
   * Stores a frame of results durably (one outbox row per partition), then acknowledges up to its last seq. Each
   * result is checked on its own (its shape, then admission.ts: an assignment this probe holds and that is live,
   * no more results than the definition allows, a timestamp inside its window; built-ins within their bounds) and
   * refused by itself; a frame past the probe's per-minute allowance is stored only up to it, and the probe is told
   * when to send the rest.
   */
  private async ingest(ws: WebSocket, a: ProbeAttachment, submissions: FrameSubmission[], bytes: number): Promise<void> {
    const stored = this.sql<{ seq: number }>("SELECT seq FROM probe_seq WHERE probe_id = ?", a.probe_id)[0]?.seq ?? 0;
    const limits = limitsOf(this.env);
    const fresh = submissions.filter((s) => s.seq > stored);
    const { allowance, fits, retryAfter } = admit(a.allowance, fresh.length, bytes, Date.now(), limits);
    let upto = stored;
    const accepted: Result[] = [];
    const counted = new Map<number, number>();  // periodic assignments' new results in this frame
    const finishedOneOffs = new Set<number>();
    const builtinLast = { ...a.builtin_last };
    const now = Math.floor(Date.now() / 1000);
    let shareMilli = 0;
    for (const s of fresh.slice(0, fits)) {
      if (s.seq <= upto) continue; // out of order within the frame
      upto = s.seq;
      const parsed = ResultSchema.safeParse(s.result);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        this.refuse(ws, a, s.seq, `invalid result at /${issue.path.join("/")}: ${issue.message}`);
        continue;
      }
      const r = parsed.data;
      if (r.prb_id !== a.probe_id) { this.refuse(ws, a, s.seq, `prb_id ${r.prb_id} is not this probe (${a.probe_id})`); continue; }
      const given = this.sql<{ assignment: string; periodic: number; done: number; stopped: number; results: number; stop_time: number | null; moved_to: string | null }>(
        "SELECT assignment, periodic, done, stopped, results, stop_time, moved_to FROM assignments WHERE msm_id = ? AND probe_id = ?", r.msm_id, a.probe_id)[0];
      let assignment: Assignment | null = null;
      if (given?.moved_to) { this.refuse(ws, a, s.seq, `measurement ${r.msm_id} was handed over to ${given.moved_to} with this probe`); continue; }
      if (given) {
        const held: Held = {
          assignment: JSON.parse(given.assignment) as Assignment, periodic: given.periodic === 1, stopped: given.stopped === 1, stop_time: given.stop_time,
          done: given.done === 1 || finishedOneOffs.has(r.msm_id), results: given.results + (counted.get(r.msm_id) ?? 0),
        };
        const refusal = refuseAssigned(held, r, now, limits);
        if (refusal) { this.refuse(ws, a, s.seq, refusal); continue; }
        assignment = held.assignment;
        if (held.periodic) counted.set(r.msm_id, (counted.get(r.msm_id) ?? 0) + 1);
        else finishedOneOffs.add(r.msm_id);
      } else {
        // Built-in measurements are every probe's own: no assignment, but their type and pace are fixed.
        const refusal = r.msm_id >= USER_MSM_MIN ? `measurement ${r.msm_id} was not given to this probe` : refuseBuiltin(r, builtinLast[r.msm_id], now, limits);
        if (refusal) { this.refuse(ws, a, s.seq, refusal); continue; }
        builtinLast[r.msm_id] = r.timestamp;
      }
      if (a.address) r.from = a.address;
      r.stored_timestamp = now;
      accepted.push(r);
      // Users pay for their results (built-in ones are free), and the probe's host earns a share of it.
      if (assignment && r.msm_id >= USER_MSM_MIN) shareMilli += creditsPerResult(assignment.spec, !given!.periodic) * HOST_SHARE_MILLI_PER_CREDIT;
    }
    ws.serializeAttachment({ ...a, allowance, builtin_last: builtinLast });
    if (upto > stored) {
      const groups = groupBy(accepted, (r) => {
        const p = partitionOf(r.type, r.timestamp);
        return `${p.type}|${p.date}|${p.hour}`;
      });
      this.ctx.storage.transactionSync(() => {
        for (const [k, rs] of groups) {
          const [type, date, hour] = k.split("|");
          const ts = rs.map((r) => r.timestamp);
          this.sql(
            "INSERT INTO outbox (type, date, hour, msm_ids, min_ts, max_ts, count, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            type, date, hour, [...new Set(rs.map((r) => r.msm_id))].join(","), Math.min(...ts), Math.max(...ts), rs.length,
            rs.map((r) => JSON.stringify(r) + "\n").join(""),
          );
        }
        this.sql(`INSERT INTO probe_seq (probe_id, seq, share_milli) VALUES (?, ?, ?)
                    ON CONFLICT (probe_id) DO UPDATE SET seq = excluded.seq, share_milli = share_milli + excluded.share_milli`, a.probe_id, upto, shareMilli);
        for (const msm of finishedOneOffs) this.sql("UPDATE assignments SET done = 1, results = results + 1 WHERE msm_id = ? AND probe_id = ?", msm, a.probe_id);
        for (const [msm, n] of counted) this.sql("UPDATE assignments SET results = results + ? WHERE msm_id = ? AND probe_id = ?", n, msm, a.probe_id);
      });
      if (accepted.length) {
        await this.scheduleFlush();
        this.ctx.waitUntil(this.toStream(accepted));
      }
    }
    // The output gate holds this frame until the writes above are durable: an ack never precedes the data.
    this.send(ws, { type: "ack", upto });
    if (fits < fresh.length) {
      this.refuse(ws, a, null, `over this probe's allowance of ${limits.resultsPerMinute} results and ${limits.bytesPerMinute} bytes a minute: results after ${upto} were not stored; send them again in ${retryAfter} s`, retryAfter);
    }
  }

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

  private async scheduleFlush(): Promise<void> {
    const pending = this.sql<{ n: number | null }>("SELECT SUM(count) AS n FROM outbox")[0]?.n ?? 0;
    const uncharged = this.sql<{ n: number }>("SELECT COUNT(*) AS n FROM charges")[0]!.n;
    if (pending === 0 && uncharged === 0) return;
    const threshold = Number(this.env.FLUSH_RESULTS ?? 1000);
    const at = pending >= threshold ? Date.now() : Date.now() + Number(this.env.FLUSH_INTERVAL_MS ?? 5000);
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > at) await this.ctx.storage.setAlarm(at);
  }

  /**
   * Flushes, and on any failure (R2 down or slow, the brain or registry unreachable) arms the next attempt itself,
   * backing off from 5 s to a minute: the runtime's own alarm retries give up after a few, and results must not wait
   * for new traffic to be written.
   */
  override async alarm(): Promise<void> {
    this.used.requests++;
    try {
      await this.flush();
      if (this.stat("flush_failures")) this.sql("DELETE FROM stats WHERE name = 'flush_failures'");
    } catch (e) {
      const failures = this.stat("flush_failures") + 1;
      this.bump("flush_failures", 1);
      const wait = Math.min(60_000, 5000 * 2 ** Math.min(failures - 1, 4));
      console.error(`controller ${this.shard}: flush failed (${failures} in a row), retrying in ${wait / 1000} s: ${String(e)}`);
      await this.ctx.storage.setAlarm(Date.now() + wait);
    }
  }

  /** Asks the brain to charge the results stored since the last charge; what it could not reach is retried later. */
  private async charge(): Promise<void> {
    const rows = this.sql<{ request_id: string; msm_id: number; results: number }>("SELECT request_id, msm_id, results FROM charges LIMIT 500");
    if (rows.length === 0) return;
    try {
      const done = await this.env.BRAIN.getByName(BRAIN_NAME).charge(rows);
      this.ctx.storage.transactionSync(() => { for (const id of done) this.sql("DELETE FROM charges WHERE request_id = ?", id); });
    } catch (e) {
      console.error(`controller ${this.shard}: charging results failed, will retry: ${String(e)}`);
    }
    await this.scheduleFlush();
  }

  /**
   * Pays hosts their share in whole credits (registry → the owner's ledger): a probe's due payout is first marked
   * (`paying_milli`), then sent under a request id made from that mark, then recorded as paid; a retry after any
   * failure sends the same payout again, which the registry and the ledger take once.
   */
  private async payHosts(): Promise<void> {
    const now = Math.floor(Date.now() / 1000);
    this.sql(`UPDATE probe_seq SET paying_milli = paid_milli + (share_milli - paid_milli) / 1000 * 1000
                WHERE paying_milli IS NULL AND share_milli - paid_milli >= 1000 AND (share_milli - paid_milli >= ? OR paid_at <= ?)`,
      HOST_PAYOUT_CREDITS * 1000, now - HOST_PAYOUT_INTERVAL_S);
    const due = this.sql<{ probe_id: number; paid_milli: number; paying_milli: number }>(
      "SELECT probe_id, paid_milli, paying_milli FROM probe_seq WHERE paying_milli IS NOT NULL LIMIT 500");
    if (due.length === 0) return;
    try {
      await this.env.REGISTRY.getByName(REGISTRY_NAME).resultShares(due.map((d) => ({
        request_id: `results:${this.shard}:${d.probe_id}:${d.paying_milli}`, probe_id: d.probe_id, credits: (d.paying_milli - d.paid_milli) / 1000,
      })));
      this.ctx.storage.transactionSync(() => {
        for (const d of due) this.sql("UPDATE probe_seq SET paid_milli = paying_milli, paying_milli = NULL, paid_at = ? WHERE probe_id = ?", now, d.probe_id);
      });
    } catch (e) {
      console.error(`controller ${this.shard}: paying hosts their share failed, will retry: ${String(e)}`);
    }
  }

  private flushing: Promise<{ objects: number; results: number }> | null = null;

  /** One flush at a time: the alarm and an operator's flush must not both write the same sealed batches. */
  async flush(): Promise<{ objects: number; results: number }> {
    while (this.flushing) await this.flushing.catch(() => undefined);
    this.flushing = this.writeBatches();
    try {
      return await this.flushing;
    } finally {
      this.flushing = null;
    }
  }

  /**
   * Writes the outbox to R2. Rows are first sealed into named batches in one transaction (a batch: its partition and
   * the range of outbox ids it covers), so a flush that dies after the PUT retries the same key with the same content
   * (write-once, If-None-Match: *), never a new copy.
   */
  private async writeBatches(): Promise<{ objects: number; results: number }> {
    const upto = this.stat("sealed_upto");
    const unsealed = this.sql<{ id: number; type: string; date: string; hour: string }>(
      "SELECT id, type, date, hour FROM outbox WHERE id > ? ORDER BY id", upto);
    if (unsealed.length) {
      this.ctx.storage.transactionSync(() => {
        for (const rows of groupBy(unsealed, (r) => `${r.type}|${r.date}|${r.hour}`).values()) {
          const { type, date, hour } = rows[0]!;
          const [first, last] = [rows[0]!.id, rows[rows.length - 1]!.id];
          this.sql("INSERT INTO sealed (key, type, date, hour, first_id, last_id) VALUES (?, ?, ?, ?, ?, ?)",
            batchKey({ type, date, hour }, this.shard, first, last, this.epoch()), type, date, hour, first, last);
        }
        this.sql("INSERT OR REPLACE INTO stats (name, value) VALUES ('sealed_upto', ?)", unsealed[unsealed.length - 1]!.id);
      });
    }
    let objects = 0, results = 0;
    const batches = this.sql<{ key: string; type: string; date: string; hour: string; first_id: number; last_id: number }>("SELECT * FROM sealed ORDER BY first_id");
    for (const { key, type, date, hour, first_id: first, last_id: last } of batches) {
      const inBatch = "id BETWEEN ? AND ? AND type = ? AND date = ? AND hour = ?";
      const rows = this.sql<{ id: number; msm_ids: string; min_ts: number; max_ts: number; count: number; body: string }>(
        `SELECT id, msm_ids, min_ts, max_ts, count, body FROM outbox WHERE ${inBatch} ORDER BY id`, first, last, type, date, hour);
      const count = rows.reduce((n, r) => n + r.count, 0);
      const body = rows.map((r) => r.body).join("");
      const put = await timeLimit(this.env.RESULTS.put(key, body, {
        onlyIf: new Headers({ "If-None-Match": "*" }),
        httpMetadata: { contentType: "application/x-ndjson" },
        customMetadata: { results: String(count), shard: this.shard },
      }), R2_TIMEOUT_MS, `PUT ${key}`);
      if (put === null) {
        // The key exists: this batch's own earlier PUT (a flush that died before indexing it) is the same bytes.
        // Anything else is a collision, and the rows stay until it is understood: never index what R2 does not hold.
        const there = await timeLimit(this.env.RESULTS.head(key), R2_TIMEOUT_MS, `HEAD ${key}`);
        if (!there || there.size !== new TextEncoder().encode(body).byteLength || there.customMetadata?.results !== String(count)) {
          throw new Error(`batch key ${key} holds another object (${there?.size ?? "?"} bytes); its ${count} results stay in the outbox`);
        }
      }
      const perMsm = new Map<number, { min: number; max: number; count: number }>();
      const rtts: { msm_id: number; prb_id: number; target: string; rtt: number }[] = [];
      for (const r of rows) {
        for (const line of r.body.split("\n")) {
          if (!line) continue;
          const res = JSON.parse(line) as Result;
          const e = perMsm.get(res.msm_id) ?? { min: res.timestamp, max: res.timestamp, count: 0 };
          perMsm.set(res.msm_id, { min: Math.min(e.min, res.timestamp), max: Math.max(e.max, res.timestamp), count: e.count + 1 });
          if (res.type === "ping" && res.avg >= 0 && res.dst_addr) rtts.push({ msm_id: res.msm_id, prb_id: res.prb_id, target: res.dst_addr, rtt: res.avg });
        }
      }
      // Public measurements only: an aggregate names its targets, and a private measurement's target is its owner's.
      const publicRtts = type === "ping" ? await this.publicMeasurements.only(rtts) : [];
      const aggregated = publicRtts.length > 0;
      if (aggregated) {
        const aggregate: BatchAggregate = { type: "ping", date, hour, groups: await this.aggregateByAs(publicRtts) };
        await timeLimit(this.env.RESULTS.put(aggregateKey(key), JSON.stringify(aggregate), { httpMetadata: { contentType: "application/json" } }), R2_TIMEOUT_MS, `PUT ${aggregateKey(key)}`);
      }
      this.ctx.storage.transactionSync(() => {
        for (const [msm, e] of perMsm) {
          this.sql("INSERT OR REPLACE INTO batches (msm_id, key, min_ts, max_ts, count) VALUES (?, ?, ?, ?, ?)", msm, key, e.min, e.max, e.count);
          // Users' measurements are paid for; built-in ones are not.
          if (msm >= USER_MSM_MIN) this.sql("INSERT OR IGNORE INTO charges (request_id, msm_id, results) VALUES (?, ?, ?)", `results:${key}:${msm}`, msm, e.count);
        }
        this.sql(`DELETE FROM outbox WHERE ${inBatch}`, first, last, type, date, hour);
        this.sql("DELETE FROM sealed WHERE key = ?", key);
        this.bump("r2_writes", aggregated ? 2 : 1);  // the batch, and its aggregate
        this.bump("results_written", count);
      });
      objects++;
      results += count;
    }
    await this.charge();
    await this.payHosts();
    this.saveUsage();
    return { objects, results };
  }

  /**
   * RTT samples grouped by the probe's ASN and the target, as the Atlas talk's per-AS aggregates: the ASN from the
   * probe's socket, or the registry for a probe that is not connected here.
   */
  private async aggregateByAs(rtts: { prb_id: number; target: string; rtt: number }[]): Promise<AggregateGroup[]> {
    const asn = new Map<number, number | null>();
    for (const ws of this.ctx.getWebSockets()) {
      const a = ws.deserializeAttachment() as ProbeAttachment | null;
      if (a) asn.set(a.probe_id, a.asn_v4);
    }
    const missing = [...new Set(rtts.map((r) => r.prb_id))].filter((id) => !asn.has(id));
    if (missing.length) {
      const { probes } = await this.env.REGISTRY.getByName(REGISTRY_NAME).listProbes({ ids: missing }, 0, missing.length);
      for (const p of probes) asn.set(p.id, p.asn_v4);
    }
    return [...groupBy(rtts, (r) => `${asn.get(r.prb_id) ?? ""}|${r.target}`).values()].map((g) => ({
      asn: asn.get(g[0]!.prb_id) ?? null, target: g[0]!.target, samples: g.map((r) => r.rtt),
    }));
  }

  // ── RPC from the brain and the API ─────────────────────────────────────────────────────────────────────────

  /**
   * Gives each order's measurement to up to `want` matching probes with a free slot, diverse ASNs first; the orders
   * in turn (each sees the slots the ones before took). The brain sends the orders it makes together in one call,
   * so a probe given many measurements gets their frames back to back.
   */
  dispatch(orders: DispatchOrder[]): Participant[][] {
    const frames: [WebSocket, Assignment][] = [];
    const given = orders.map((order) => this.dispatchOne(order, frames));
    for (const [ws, assignment] of frames) this.send(ws, { type: "measure", assignment });
    return given;
  }

  /** One order: the probes picked (their slots taken, their rows written); their frames are added to `frames`. */
  private dispatchOne(order: DispatchOrder, frames: [WebSocket, Assignment][]): Participant[] {
    const candidates: { ws: WebSocket; a: ProbeAttachment }[] = [];
    const now = Math.floor(Date.now() / 1000);
    let slots = 0, free = 0;
    for (const ws of this.ctx.getWebSockets()) {
      const a = ws.deserializeAttachment() as ProbeAttachment | null;
      if (a && ws.readyState === WebSocket.OPEN) { slots += a.slots; free += a.free_slots; }
      if (!a || ws.readyState !== WebSocket.OPEN || a.free_slots < 1) continue;
      if (now - a.last_seen > SILENT_AFTER_S) {
        ws.close(4001, "silent for too long");
        continue;
      }
      if (order.exclude.includes(a.probe_id) || !matches(a, order.filter)) continue;
      candidates.push({ ws, a });
    }
    // Diversity first: round-robin over ASNs (the i-th probe of every ASN before the (i+1)-th of any), each ASN's
    // probes in turn round-robin over cities (a probe of every city before a second of any), and among a city's
    // probes the least loaded (most free slots) first.
    const byLoad = (xs: typeof candidates) => [...xs].sort((x, y) => y.a.free_slots - x.a.free_slots);
    const queues = [...groupBy(candidates, (c) => c.a.asn_v4).values()].map((asn) => interleave([...groupBy(asn, (c) => c.a.cell ?? null).values()].map(byLoad)));
    // Load-aware: a busy shard gives at most half on the brain's first pass (explicit probe ids are always given).
    const busy = !order.busyOk && !order.filter.probe_ids && slots > 0 && free / slots <= BUSY_FREE_SHARE;
    const picked = interleave(queues).slice(0, busy ? Math.ceil(order.want / 2) : order.want);
    const as = order.assignment;
    this.ctx.storage.transactionSync(() => {
      for (const { a } of picked) {
        this.sql(
          "INSERT OR REPLACE INTO assignments (msm_id, probe_id, assignment, periodic, start_time, stop_time) VALUES (?, ?, ?, ?, ?, ?)",
          as.msm_id, a.probe_id, JSON.stringify(as), as.interval === null ? 0 : 1, as.start_time, as.stop_time);
      }
    });
    for (const { ws, a } of picked) {
      ws.serializeAttachment({ ...a, free_slots: a.free_slots - 1 });
      frames.push([ws, as]);
    }
    return picked.map(({ a }) => ({ probe_id: a.probe_id, shard: this.shard, country_code: a.country_code, asn_v4: a.asn_v4 }));
  }

  /** Stops a measurement on every probe of this shard that runs it. */
  /** Closes a probe's socket (an operator disabled it: it cannot register again until enabled). */
  drop(probeId: number, reason: string): number {
    const sockets = this.ctx.getWebSockets(`probe:${probeId}`);
    for (const ws of sockets) ws.close(4003, reason.slice(0, 120));
    return sockets.length;
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
    const keys = this.sql<{ key: string }>(
      "SELECT key FROM batches WHERE msm_id = ? AND max_ts >= ? AND min_ts <= ? ORDER BY key", msmId, lo, hi).map((r) => r.key);
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
    const pending = this.sql<{ body: string }>(
      "SELECT body FROM outbox WHERE max_ts >= ? AND min_ts <= ? AND (? IS NULL OR type = ?) ORDER BY id", start, stop, type, type).map((r) => r.body).join("");
    return { keys, pending };
  }

  /**
   * This storage's incarnation, in every batch key it writes: outbox ids restart at 1 if a controller's storage is
   * ever lost while R2 keeps its objects, and a batch must never take an earlier one's key.
   */
  private epoch(): string {
    let e = this.stat("epoch");
    if (!e) {
      e = crypto.getRandomValues(new Uint32Array(1))[0]! || 1;
      this.sql("INSERT OR REPLACE INTO stats (name, value) VALUES ('epoch', ?)", e);
    }
    return e.toString(16).padStart(8, "0");
  }

  private stat(name: string): number {
    return this.sql<{ value: number }>("SELECT value FROM stats WHERE name = ?", name)[0]?.value ?? 0;
  }

  private bump(name: string, by: number): void {
    this.sql("INSERT INTO stats (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value", name, by);
  }

  load(): { shard: string; connected: number; capacity: number; pending_results: number; r2_writes: number; results_written: number } {
    const pending = this.sql<{ n: number | null }>("SELECT SUM(count) AS n FROM outbox")[0]?.n ?? 0;
    return {
      shard: this.shard, connected: this.ctx.getWebSockets().length, capacity: this.capacity, pending_results: pending,
      r2_writes: this.stat("r2_writes"), results_written: this.stat("results_written"),
    };
  }
}

/** The first of each list, then the second of each, and so on. */
function interleave<T>(lists: T[][]): T[] {
  const out: T[] = [];
  for (let i = 0; out.length < lists.reduce((n, l) => n + l.length, 0); i++) for (const l of lists) if (i < l.length) out.push(l[i]!);
  return out;
}

function matches(a: ProbeAttachment, f: ProbeFilter): boolean {
  if (f.probe_ids && !f.probe_ids.includes(a.probe_id)) return false;
  if (f.country && a.country_code?.toUpperCase() !== f.country.toUpperCase()) return false;
  if (f.asn !== undefined && a.asn_v4 !== f.asn) return false;
  if (f.prefix && !inPrefix(a, f.prefix)) return false;
  if (f.tags?.include?.some((t) => !(a.tags ?? []).includes(t))) return false;
  if (f.tags?.exclude?.some((t) => (a.tags ?? []).includes(t))) return false;
  return true;
}

function inPrefix(a: ProbeAttachment, prefix: string): boolean {
  if (a.prefix_v4 === prefix) return true;
  return [a.address, a.prefix_v4?.split("/")[0]].some((ip) => !!ip && inCidr(ip, prefix));
}
