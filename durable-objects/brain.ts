// Brain: accepts measurements, splits each probe source across controller shards (asking each what it can give,
// then the next, until the request is filled), and drives each measurement's status over time with one DO alarm
// multiplexing many timers. One instance, named "brain".
import {
  type Assignment, builtinType, type CreateMeasurements, creditsPerResult, type Definition, type ProbeSource, runSeconds, specOf, type Status, STATUS, toUnix,
} from "../protocol/index.ts";
import type { ReleaseManifest } from "../protocol/release.ts";
import type { DispatchOrder, ProbeFilter } from "./dispatch.ts";
import { listMeasurements } from "./measurement-list.ts";
import { addTag, removeTag, taggedWith, tagsOn } from "./measurement-tags.ts";
import type { Participant } from "./probe-attachment.ts";
import { controllerStub, type Shard, shardByName, shardsForSource } from "./shards.ts";
import { groupBy } from "./group-by.ts";
import { checkMsmSources, checkQuotas, DEFAULT_INTERVAL, quota, type QuotaHost, quotas, rateLimited } from "./quotas.ts";
import { type Rollout, Rollouts } from "./rollouts.ts";
import { MIGRATIONS } from "./brain-schema.ts";
import type { Alert, MeasurementFilter, MeasurementRow, ParticipationRecord, ParticipationRequest, Refusal, Warning } from "./brain-types.ts";
import { SqlDurableObject, Where } from "./sql.ts";

/** A one-off asked again within this many seconds gets the earlier one's id in a warning (REUSE_WINDOW_S overrides). */
const REUSE_WINDOW_S = 900;

/** The crowd signal: this many distinct accounts measuring one target within the window raise an alert. */
const CROWD_ACCOUNTS = 5;
const CROWD_WINDOW_S = 600;

/** How long after a failed settling (reservation freed, controllers told) it is tried again (seconds). */
const SETTLE_RETRY_S = 30;

/** After a one-off's last packet is due, how long its results may still come in before it is Stopped. */
const ONEOFF_GRACE_S = 60;

/** Timers: start a scheduled measurement, stop it at its stop time, finish a one-off, settle an ended one. */
type Action = "start" | "stop" | "finish" | "settle";

export class Brain extends SqlDurableObject<Env> {
  /** Dispatch orders made in the current turn, per shard, not yet sent (see order()). */
  private readonly orders = new Map<string, { orders: DispatchOrder[]; waiters: PromiseWithResolvers<Participant[]>[] }>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, MIGRATIONS);
  }

  /** What the quota checks (quotas.ts) read. */
  private readonly quotaHost: QuotaHost = { env: () => this.env, sql: this.sql, get: (id) => this.get(id) };

  /**
   * Asks a shard's controller for probes. Orders made in one turn (the measurements of one request) go to each
   * controller in one call when the turn's microtasks run: one round trip, and a probe's measurement frames back to back.
   */
  private order(shard: Shard, order: DispatchOrder): Promise<Participant[]> {
    let batch = this.orders.get(shard.name);
    if (!batch) {
      const b = batch = { orders: [] as DispatchOrder[], waiters: [] as PromiseWithResolvers<Participant[]>[] };
      this.orders.set(shard.name, b);
      queueMicrotask(() => {
        this.orders.delete(shard.name);
        controllerStub(this.env.CONTROLLER, shard).dispatch(b.orders).then(
          (given) => b.waiters.forEach((w, i) => w.resolve(given[i]!)),
          (e: unknown) => b.waiters.forEach((w) => w.reject(e)));
      });
    }
    const waiter = Promise.withResolvers<Participant[]>();
    batch.orders.push(order);
    batch.waiters.push(waiter);
    return waiter.promise;
  }

  /**
   * Creates one measurement per definition (ids in definition order), sets credits aside for each in the owner's
   * ledger (its results' cost for the first day: every requested probe, once for a one-off), and schedules it on
   * probes. If the account cannot cover them all, nothing is created.
   */
  async create(req: CreateMeasurements, owner: string): Promise<{ ok: true; ids: number[]; warnings: Warning[] } | Refusal> {
    const now = Math.floor(Date.now() / 1000);
    // The tenth user asking the same question: an identical public one-off answered recently is named, and with
    // "reuse": true taken instead of a new measurement, at no cost.
    const warnings: Warning[] = [];
    const reused = new Map<number, number>();  // definition index → the measurement whose answer it takes
    const window = Number(this.env.REUSE_WINDOW_S ?? REUSE_WINDOW_S);
    req.definitions.forEach((def, i) => {
      const question = questionOf(req, def);
      if (!question) return;
      const earlier = this.sql<{ id: number; creation_time: number }>(
        `SELECT id, creation_time FROM measurements WHERE question = ? AND creation_time >= ? AND status_id NOT IN (?, ?)
         ORDER BY id DESC LIMIT 1`, question, now - window, STATUS.noSuitableProbes.id, STATUS.failed.id)[0];
      if (!earlier) return;
      warnings.push({ code: "duplicate", measurement: earlier.id,
        detail: `Measurement ${earlier.id} asked the same question ${now - earlier.creation_time} s ago (same type, target, options and probes)${req.reuse ? "; its results are yours, at no cost" : "; send \"reuse\": true to take its results instead"}.` });
      if (req.reuse) reused.set(i, earlier.id);
    });
    const fresh = req.definitions.filter((_, i) => !reused.has(i));
    if (fresh.length === 0) return { ok: true, ids: req.definitions.map((_, i) => reused.get(i)!), warnings };
    const asked = { ...req, definitions: fresh };
    const refused = checkMsmSources(this.quotaHost, req.probes, owner, "/probes") ?? checkQuotas(this.quotaHost, asked, owner, now);
    if (refused) return refused;
    const rows = fresh.map((def) => {
      const isOneoff = def.is_oneoff ?? req.is_oneoff ?? false;
      const start = toUnixOr(def.start_time ?? req.start_time, now);
      const stop = isOneoff ? null : toUnixOr(def.stop_time ?? req.stop_time, null);
      const interval = isOneoff ? null : def.interval ?? DEFAULT_INTERVAL;
      const spread = interval === null ? null : def.spread ?? Math.min(Math.floor(interval / 2), 400);
      const requested = req.probes.reduce((n, s) => n + s.requested, 0);
      return this.sql<MeasurementRow>(
        `INSERT INTO measurements (type, definition, sources, status_id, status_when, creation_time, start_time, stop_time,
           interval, spread, is_oneoff, probes_requested, owner, question, target, is_public) VALUES (?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
        def.type, JSON.stringify(def), JSON.stringify(req.probes), now, now, Math.max(start, now), stop, interval, spread,
        isOneoff ? 1 : 0, requested, owner, questionOf(req, def), def.is_public === false ? null : def.target?.toLowerCase() ?? null,
        def.is_public === false ? 0 : 1)[0]!;
    });
    if (rows.length > 1) {
      // One request, one group, led by its first measurement (as Atlas): listed and stopped together.
      this.sql(`UPDATE measurements SET group_id = ? WHERE id IN (${rows.map(() => "?").join(",")})`, rows[0]!.id, ...rows.map((r) => r.id));
      for (const r of rows) r.group_id = rows[0]!.id;
    }
    const ledger = this.env.LEDGER.getByName(owner);
    const estimates = rows.map((r) => firstDayCost(r));
    // Undoes the rows and any reservation made for them (releasing one never made changes nothing) when the request
    // cannot go ahead.
    const undo = async () => {
      for (const r of rows) await ledger.release(`release:${r.id}`, r.id).catch(() => undefined);
      this.sql(`DELETE FROM measurements WHERE id IN (${rows.map(() => "?").join(",")})`, ...rows.map((r) => r.id));
      this.sql(`DELETE FROM participation_requests WHERE msm_id IN (${rows.map(() => "?").join(",")})`, ...rows.map((r) => r.id));
    };
    for (const r of rows) this.recordParticipation(r.id, req.probes.map((source) => ({ action: "add" as const, ...source })), now);
    for (let i = 0; i < rows.length; i++) {
      let outcome;
      try {
        outcome = await ledger.reserve(`reserve:${rows[i]!.id}`, rows[i]!.id, estimates[i]!);
      } catch (e) {
        await undo();  // the ledger could not answer: nothing is created (a reservation it made is freed); retry
        throw e;
      }
      if (outcome.ok) continue;
      // Not enough for all of them: undo, and say how much was wanted against what is free.
      await undo();
      const available = ("available" in outcome ? outcome.available : 0) + estimates.slice(0, i).reduce((a, b) => a + b, 0);
      const wanted = estimates.reduce((a, b) => a + b, 0);
      return {
        ok: false, status: 402,
        detail: `Not enough credits: these measurements need ${wanted} credits set aside for their first day's results, and the account has ${available} free. Credits are earned by hosting probes, or transferred.`,
      };
    }
    // The request's measurements are given out together, not one after another: a 100-definition request takes one
    // round trip to the controllers instead of 100, and a controller sends a probe its assignments back to back
    // (the agent reads them in one turn of its event loop).
    const scheduled = await Promise.all(rows.map((row) => this.schedule(row)));
    rows.forEach((row, i) => {
      // A request that cannot be fully met gets what exists, and says so.
      if (scheduled[i]! < row.probes_requested) {
        warnings.push({ code: "fewer_probes", measurement: row.id, detail: `${scheduled[i]} of the ${row.probes_requested} probes requested could be given.` });
      }
    });
    for (const target of new Set(rows.map((r) => r.target).filter((t): t is string => t !== null))) this.crowd(target, now);
    let next = 0;
    return { ok: true, ids: req.definitions.map((_, i) => reused.get(i) ?? rows[next++]!.id), warnings };
  }

  /** Gives a new measurement to probes; returns how many took it. */
  private async schedule(row: MeasurementRow): Promise<number> {
    const def = JSON.parse(row.definition) as Definition;
    const sources = JSON.parse(row.sources) as ProbeSource[];
    const assignment: Assignment = {
      msm_id: row.id,
      spec: specOf(def),
      interval: row.interval,
      spread: row.spread ?? 0,
      start_time: row.start_time,
      stop_time: row.stop_time,
    };
    const { participants, failures, asked } = await this.dispatch(row.id, assignment, sources, []);
    const now = Math.floor(Date.now() / 1000);
    let status: Status;
    if (participants.length === 0) status = asked > 0 && failures === asked ? STATUS.failed : STATUS.noSuitableProbes;
    else if (row.start_time > now) status = STATUS.scheduled;
    else status = STATUS.ongoing;
    this.sql("UPDATE measurements SET participants = ?, probes_scheduled = ?, status_id = ?, status_when = ? WHERE id = ?",
      JSON.stringify(participants), participants.length, status.id, now, row.id);
    if (participants.length === 0) {
      await this.env.LEDGER.getByName(row.owner).release(`release:${row.id}`, row.id);
      return 0;
    }
    if (status === STATUS.scheduled) this.timer(row.id, row.start_time, "start");
    if (row.is_oneoff) {
      this.timer(row.id, row.start_time + runSeconds(assignment.spec) + ONEOFF_GRACE_S, "finish");
    } else if (row.stop_time !== null) {
      this.timer(row.id, row.stop_time, "stop");
    }
    await this.armAlarm();
    return participants.length;
  }

  /** Asks the shards of each source, in order, for probes until the source is filled; `exclude`: already taking part. */
  private async dispatch(msmId: number, assignment: Assignment, sources: ProbeSource[], exclude: number[]): Promise<{ participants: Participant[]; failures: number; asked: number }> {
    const participants: Participant[] = [];
    let failures = 0, asked = 0;
    for (const given of sources) {
      // An "msm" source reuses the probes of that measurement.
      const source: ProbeSource = given.type === "msm"
        ? { ...given, type: "probes", value: (JSON.parse(this.get(Number(given.value))?.participants ?? "[]") as Participant[]).map((p) => p.probe_id).join(",") || "0" }
        : given;
      let want = source.requested;
      // Busy controllers give fewer on the first pass, so the load spreads over shards; what is still missing is
      // asked for again with nothing held back, so no probe that exists is left out.
      for (const busyOk of [false, true]) {
        for (const shard of shardsForSource(source)) {
          if (want <= 0) break;
          asked++;
          try {
            const got = await this.order(shard, {
              assignment, filter: filterOf(source), want, exclude: [...exclude, ...participants.map((p) => p.probe_id)], busyOk,
            });
            participants.push(...got);
            want -= got.length;
          } catch (e) {
            failures++;
            console.error(`brain: dispatch of ${msmId} to ${shard.name} failed: ${String(e)}`);
          }
        }
        if (want <= 0) break;
      }
    }
    return { participants, failures, asked };
  }

  /**
   * POST /measurements/{id}/participation-requests/: adds probes (from sources, as at creation; their first day's
   * cost is set aside first) or removes probes (by id) from a running measurement of the caller's account.
   */
  async participate(id: number, owner: string, requests: ParticipationRequest[]): Promise<{ ok: true; request_ids: number[]; added: number[]; removed: number[] } | Refusal | { ok: false; status: 403 | 404 | 409; detail: string }> {
    const row = this.get(id);
    if (!row) return { ok: false, status: 404, detail: `No measurement with id ${id}.` };
    if (row.owner !== owner) return { ok: false, status: 403, detail: `Measurement ${id} belongs to another account.` };
    if (row.status_id > STATUS.ongoing.id) return { ok: false, status: 409, detail: `Measurement ${id} is no longer running.` };
    // The same limits as creation: the rate of requests, reusable probes, and the probes a measurement may have.
    const now = Math.floor(Date.now() / 1000);
    const adding = requests.filter((r) => r.action === "add") as (ProbeSource & { action: "add" })[];
    const refused = rateLimited(this.quotaHost, owner, now) ?? checkMsmSources(this.quotaHost, adding, owner, "");
    if (refused) return refused;
    const more = adding.reduce((n, s) => n + s.requested, 0);
    if (row.probes_requested + more > quotas(this.env).probesPerMeasurement) {
      return quota(`Measurement ${id} has ${row.probes_requested} probes requested and asks for ${more} more; a measurement may have at most ${quotas(this.env).probesPerMeasurement}.`);
    }
    this.sql("INSERT INTO creations (owner, at) VALUES (?, ?)", owner, now);
    let participants = JSON.parse(row.participants) as Participant[];
    const added: number[] = [], removed: number[] = [];
    const adds = requests.filter((r) => r.action === "add").map(({ action: _, ...source }) => source as ProbeSource);
    if (adds.length) {
      const perProbe = firstDayCost({ ...row, probes_requested: 1 });
      const wanted = perProbe * adds.reduce((n, s) => n + s.requested, 0);
      const outcome = await this.env.LEDGER.getByName(owner).reserve(`participate:${id}:${row.probes_requested}:${Date.now()}`, id, wanted);
      if (!outcome.ok) {
        return { ok: false, status: 402, detail: `Not enough credits: adding these probes needs ${wanted} credits set aside, and the account has ${"available" in outcome ? outcome.available : 0} free.` };
      }
      const def = JSON.parse(row.definition) as Definition;
      const assignment: Assignment = { msm_id: id, spec: specOf(def), interval: row.interval, spread: row.spread ?? 0, start_time: row.start_time, stop_time: row.stop_time };
      const got = await this.dispatch(id, assignment, adds, participants.map((p) => p.probe_id));
      participants = [...participants, ...got.participants];
      added.push(...got.participants.map((p) => p.probe_id));
    }
    for (const r of requests.filter((r) => r.action === "remove")) {
      const ids = new Set(r.value.split(",").map(Number));
      const leaving = participants.filter((p) => ids.has(p.probe_id));
      for (const [shard, ps] of groupBy(leaving, (p) => p.shard)) {
        const s = shardByName(shard);
        if (s) await controllerStub(this.env.CONTROLLER, s).stop(id, ps.map((p) => p.probe_id));
      }
      participants = participants.filter((p) => !ids.has(p.probe_id));
      removed.push(...leaving.map((p) => p.probe_id));
    }
    this.sql("UPDATE measurements SET participants = ?, probes_scheduled = ?, probes_requested = probes_requested + ? WHERE id = ?",
      JSON.stringify(participants), participants.length, added.length, id);
    return { ok: true, request_ids: this.recordParticipation(id, requests, Math.floor(Date.now() / 1000)), added, removed };
  }

  private recordParticipation(msmId: number, requests: ParticipationRequest[], at: number): number[] {
    return requests.map((r) => this.sql<{ id: number }>(
      "INSERT INTO participation_requests (msm_id, action, type, value, requested, tags, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
      msmId, r.action, r.type, r.value, r.requested ?? null, "tags" in r && r.tags ? JSON.stringify(r.tags) : null, at)[0]!.id);
  }

  /** A measurement's participation requests, oldest first; or one by its id (`id`). */
  participationRequests(f: { msm_id?: number; id?: number }, offset: number, limit: number): { count: number; requests: ParticipationRecord[] } {
    const where = new Where().eq("msm_id", f.msm_id).eq("id", f.id);
    const count = this.sql<{ n: number }>(`SELECT COUNT(*) AS n FROM participation_requests ${where}`, ...where.binds)[0]!.n;
    const rows = this.sql<Omit<ParticipationRecord, "tags" | "measurement"> & { msm_id: number; tags: string | null }>(
      `SELECT * FROM participation_requests ${where} ORDER BY id LIMIT ? OFFSET ?`, ...where.binds, limit, offset);
    return { count, requests: rows.map(({ msm_id, tags, ...r }) => ({ ...r, measurement: msm_id, tags: tags ? JSON.parse(tags) as ParticipationRecord["tags"] : null })) };
  }

  private timer(msmId: number, at: number, action: Action): void {
    this.sql("INSERT OR REPLACE INTO timers (msm_id, at, action) VALUES (?, ?, ?)", msmId, at, action);
  }

  private async armAlarm(): Promise<void> {
    const next = this.sql<{ at: number | null }>("SELECT MIN(at) AS at FROM timers")[0]?.at;
    if (next === null || next === undefined) await this.ctx.storage.deleteAlarm();
    else await this.ctx.storage.setAlarm(next * 1000);
  }

  override async alarm(): Promise<void> {
    const now = Math.floor(Date.now() / 1000);
    for (const t of this.sql<{ msm_id: number; action: Action }>("SELECT msm_id, action FROM timers WHERE at <= ? ORDER BY at", now)) {
      // A settle timer is the settling's own: it goes when everything happened, and stays (later) when not.
      if (t.action === "settle") { await this.settle(t.msm_id); continue; }
      if (t.action === "start") this.setStatus(t.msm_id, STATUS.ongoing, [STATUS.scheduled.id]);
      else await this.end(t.msm_id, STATUS.stopped);
      this.sql("DELETE FROM timers WHERE msm_id = ? AND action = ?", t.msm_id, t.action);
    }
    await this.armAlarm();
  }

  private setStatus(id: number, status: Status, from: number[]): boolean {
    const now = Math.floor(Date.now() / 1000);
    return this.sql(`UPDATE measurements SET status_id = ?, status_when = ? WHERE id = ? AND status_id IN (${from.join(",")}) RETURNING id`,
      status.id, now, id).length > 0;
  }

  // ── signed agent releases (rollouts.ts) ─────────────────────────────────────────────────────────────────────

  private readonly rollouts = new Rollouts({ ctx: this.ctx, env: () => this.env, sql: this.sql });

  /** Starts (or widens) the staged rollout of a release (rollouts.ts). */
  startRollout(manifest: ReleaseManifest, percent: number, maxFailures: number): Promise<Rollout> {
    return this.rollouts.start(manifest, percent, maxFailures);
  }

  haltRollout(reason: string): Promise<Rollout | null> {
    return this.rollouts.halt(reason);
  }

  /** A probe's report on the release it was offered (its controller checked it was offered). */
  releaseReport(r: { rollout: number; probe_id: number; version: string; state: "running" | "refused" | "rolled_back"; detail: string }): Promise<void> {
    return this.rollouts.report(r);
  }

  currentRollout(): Rollout | null {
    return this.rollouts.current();
  }

  /**
   * Moves a running measurement to a final status, frees what is left of its credits' reservation (results still
   * on their way are charged to the free balance), and tells its controllers to stop it on their probes.
   */
  private async end(id: number, status: Status): Promise<void> {
    const row = this.get(id);
    if (!row || !this.setStatus(id, status, [STATUS.specified.id, STATUS.scheduled.id, STATUS.ongoing.id])) return;
    // The end is recorded with a settle timer in the same step: what follows (the reservation freed, every controller
    // told) is retried by the alarm until it has all happened, whatever fails or dies halfway.
    this.ctx.storage.transactionSync(() => {
      this.sql("DELETE FROM timers WHERE msm_id = ? AND action != 'settle'", id);
      this.timer(id, Math.floor(Date.now() / 1000) + SETTLE_RETRY_S, "settle");
    });
    await this.settle(id);
  }

  /**
   * Frees what is left of an ended measurement's reservation and tells each controller it ran on to stop it (both
   * idempotent); done, the settle timer goes, else it is set to try again. Returns whether all of it happened.
   */
  private async settle(id: number): Promise<boolean> {
    const row = this.get(id);
    if (!row) return true;
    let failed = 0;
    try {
      await this.env.LEDGER.getByName(row.owner).release(`release:${id}`, id);
    } catch (e) {
      failed++;
      console.error(`brain: freeing ${id}'s reservation failed, will retry: ${String(e)}`);
    }
    const shards = [...new Set((JSON.parse(row.participants) as Participant[]).map((p) => p.shard))];
    await Promise.all(shards.map(async (name) => {
      const shard = shardByName(name);
      if (!shard) return;
      try {
        await controllerStub(this.env.CONTROLLER, shard).stop(id);
      } catch (e) {
        failed++;
        console.error(`brain: stopping ${id} on ${name} failed, will retry: ${String(e)}`);
      }
    }));
    if (failed === 0) this.sql("DELETE FROM timers WHERE msm_id = ? AND action = 'settle'", id);
    else this.timer(id, Math.floor(Date.now() / 1000) + SETTLE_RETRY_S, "settle");
    return failed === 0;
  }

  /**
   * Charges results a controller has stored (each charge under its own request id, so a redelivery charges once) to
   * their measurements' owners. A measurement whose owner cannot pay is forced to stop. Returns the ids settled.
   */
  async charge(charges: { request_id: string; msm_id: number; results: number }[]): Promise<string[]> {
    this.used.requests++;
    const settled: string[] = [];
    for (const c of charges) {
      const row = this.get(c.msm_id);
      if (row) {
        const perResult = creditsPerResult(specOf(JSON.parse(row.definition) as Definition), row.is_oneoff === 1);
        const outcome = await this.env.LEDGER.getByName(row.owner).charge(c.request_id, c.msm_id, perResult * c.results, `${c.results} results`);
        if (!outcome.ok && outcome.reason === "insufficient") {
          await this.end(c.msm_id, STATUS.forcedToStop);
          await this.armAlarm();
        }
      }
      settled.push(c.request_id);
    }
    return settled;
  }

  /**
   * The crowd signal (the talk's "the crowd says something is going on with X"): when public measurements of one
   * target from CROWD_ACCOUNTS distinct accounts were created within CROWD_WINDOW_S, an alert is raised — once per
   * window and target.
   */
  private crowd(target: string, now: number): void {
    const window = Number(this.env.CROWD_WINDOW_S ?? CROWD_WINDOW_S), threshold = Number(this.env.CROWD_ACCOUNTS ?? CROWD_ACCOUNTS);
    const recent = this.sql<{ id: number; owner: string }>("SELECT id, owner FROM measurements WHERE target = ? AND creation_time > ? ORDER BY id", target, now - window);
    const accounts = new Set(recent.map((r) => r.owner)).size;
    if (accounts < threshold) return;
    if (this.sql("SELECT 1 FROM alerts WHERE target = ? AND time > ?", target, now - window).length) return;
    this.sql("INSERT INTO alerts (type, target, accounts, window_s, time, measurements) VALUES ('crowd', ?, ?, ?, ?, ?)",
      target, accounts, window, now, JSON.stringify(recent.map((r) => r.id)));
  }

  /** GET /api/v2/alerts/: newest first. */
  alerts(offset: number, limit: number): { count: number; alerts: Alert[] } {
    const count = this.sql<{ n: number }>("SELECT COUNT(*) AS n FROM alerts")[0]!.n;
    const rows = this.sql<Omit<Alert, "measurements"> & { measurements: string }>("SELECT * FROM alerts ORDER BY id DESC LIMIT ? OFFSET ?", limit, offset);
    return { count, alerts: rows.map((r) => ({ ...r, measurements: JSON.parse(r.measurements) as number[] })) };
  }

  /** DELETE /measurements/{id}/: stop by its owner. */
  async stop(id: number, owner: string): Promise<"stopped" | "not-found" | "not-owner"> {
    const row = this.get(id);
    if (!row) return "not-found";
    if (row.owner !== owner) return "not-owner";
    await this.end(id, STATUS.stopped);
    await this.armAlarm();
    return "stopped";
  }

  /**
   * PATCH /api/v2/measurements/{id}/: its owner changes the description, or makes it public (Atlas: a public one
   * cannot be made private again, its results having been public).
   */
  patch(id: number, owner: string, change: { description?: string; is_public?: boolean }): "patched" | "not-found" | "not-owner" | "stays-public" {
    const row = this.get(id);
    if (!row) return "not-found";
    if (row.owner !== owner) return "not-owner";
    const def = JSON.parse(row.definition) as Definition;
    if (change.is_public === false && def.is_public !== false) return "stays-public";
    const next = { ...def, ...(change.description !== undefined ? { description: change.description } : {}), ...(change.is_public !== undefined ? { is_public: change.is_public } : {}) };
    this.sql("UPDATE measurements SET definition = ?, is_public = ? WHERE id = ?", JSON.stringify(next), next.is_public === false ? 0 : 1, id);
    return "patched";
  }

  /** The members of the group this measurement leads (none if it leads none), by id. */
  group(id: number): MeasurementRow[] {
    return this.sql<MeasurementRow>("SELECT * FROM measurements WHERE group_id = ? ORDER BY id", id);
  }

  /** Stops every running member of a group (Atlas: only the owner's; a group is one request, so one owner). */
  async stopGroup(id: number, owner: string): Promise<"stopped" | "not-found" | "not-owner"> {
    const members = this.group(id);
    if (members.length === 0) return "not-found";
    if (members[0]!.owner !== owner) return "not-owner";
    for (const m of members) await this.stop(m.id, owner);
    return "stopped";
  }

  /** An account tags a measurement it can see (its own or a public one). */
  tag(id: number, account: string, tag: string): "tagged" | "full" | "not-found" {
    const row = this.get(id);
    if (!row || (row.is_public !== 1 && row.owner !== account)) return "not-found";
    return addTag(this.sql, account, tag, id);
  }

  untag(id: number, account: string, tag: string): boolean {
    return removeTag(this.sql, account, tag, id);
  }

  /** The account's own tags on a measurement (shown with its definition's tags in the measurement object it reads). */
  tagsOn(id: number, account: string): string[] {
    return tagsOn(this.sql, account, id);
  }

  /** The measurements an account tagged so that it can still see. */
  tagged(account: string, tag: string): number[] {
    return taggedWith(this.sql, account, tag).filter((id) => { const r = this.get(id); return !!r && (r.is_public === 1 || r.owner === account); });
  }

  /** Stops every measurement of the account's own that it tagged so; the ids stopped. */
  async stopTagged(account: string, tag: string): Promise<number[]> {
    const stopped: number[] = [];
    for (const id of taggedWith(this.sql, account, tag)) if ((await this.stop(id, account)) === "stopped") stopped.push(id);
    return stopped;
  }

  /** A probe's measurements now run on another shard (a controller took it over): their stops go there. */
  moveParticipant(probeId: number, from: string, to: string, msmIds: number[]): void {
    this.ctx.storage.transactionSync(() => {
      for (const id of msmIds) {
        const row = this.get(id);
        if (!row) continue;
        const participants = (JSON.parse(row.participants) as Participant[])
          .map((p) => (p.probe_id === probeId && p.shard === from ? { ...p, shard: to, was: [...new Set([...(p.was ?? []), from])] } : p));
        this.sql("UPDATE measurements SET participants = ? WHERE id = ?", JSON.stringify(participants), id);
      }
    });
  }

  get(id: number): MeasurementRow | null {
    return this.sql<MeasurementRow>("SELECT * FROM measurements WHERE id = ?", id)[0] ?? null;
  }

  /**
   * Which of these measurements are public (built-ins are): archive bundles and the stream hold only those. null for
   * one that does not exist (yet): not public now, but it may be created later, so nobody may remember it as private.
   */
  publicFlags(ids: number[]): Record<number, boolean | null> {
    const out: Record<number, boolean | null> = {};
    for (const id of ids) {
      const row = builtinType(id) ? null : this.get(id);
      out[id] = builtinType(id) !== null ? true : row === null ? null : (JSON.parse(row.definition) as Definition).is_public !== false;
    }
    return out;
  }

  list(f: MeasurementFilter, offset: number, limit: number): { count: number; rows: MeasurementRow[] } {
    return listMeasurements(this.sql, f, offset, limit);
  }
}

/**
 * What a public one-off asks, as a key: its type, target, measurement options and probe sources (not its
 * description, tags or start time). Null for what is never reused: periodic or private measurements, or one-offs
 * scheduled for later.
 */
function questionOf(req: CreateMeasurements, def: Definition): string | null {
  const oneoff = def.is_oneoff ?? req.is_oneoff ?? false;
  if (!oneoff || def.is_public === false || (def.start_time ?? req.start_time) !== undefined) return null;
  return JSON.stringify([specOf(def), def.target ?? null, req.probes]);
}

/** Credits a measurement's results cost in its first day (all of a one-off's): what creation sets aside. */
export function firstDayCost(row: Pick<MeasurementRow, "definition" | "is_oneoff" | "interval" | "start_time" | "stop_time" | "probes_requested">): number {
  const perResult = creditsPerResult(specOf(JSON.parse(row.definition) as Definition), row.is_oneoff === 1);
  if (row.is_oneoff === 1) return perResult * row.probes_requested;
  const span = Math.min(86_400, row.stop_time === null ? 86_400 : Math.max(0, row.stop_time - row.start_time));
  return perResult * row.probes_requested * Math.max(1, Math.ceil(span / (row.interval ?? DEFAULT_INTERVAL)));
}

function toUnixOr<T>(v: number | string | undefined, fallback: T): number | T {
  return v === undefined ? fallback : toUnix(v);
}

function filterOf(source: ProbeSource): ProbeFilter {
  const tags = source.tags ? { tags: source.tags } : {};
  switch (source.type) {
    case "country": return { country: source.value, ...tags };
    case "asn": return { asn: Number(source.value), ...tags };
    case "prefix": return { prefix: source.value, ...tags };
    case "probes": return { probe_ids: source.value.split(",").map(Number), ...tags };
    default: return tags;
  }
}
