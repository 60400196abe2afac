// Brain: accepts measurements, splits each probe source across controller shards (asking each what it can give,
// then the next, until the request is filled: probe-dispatch.ts), and drives each measurement's status over time with
// one DO alarm multiplexing many timers (measurement-lifecycle.ts). One instance, named "brain". Its RPC methods are
// the surface; participation requests, tags, listing and rollouts are modules of their own.
import {
  builtinPublic, builtinType, type CreateMeasurements, creditsPerResult, type Definition, type ProbeSource, runSeconds, specOf, type Status, STATUS,
} from "../protocol/index.ts";
import type { ReleaseManifest } from "../protocol/release.ts";
import { listMeasurements } from "./measurement-list.ts";
import { addTag, removeTag, taggedWith, tagsOn } from "./measurement-tags.ts";
import type { Participant } from "./probe-attachment.ts";
import { Lifecycle } from "./measurement-lifecycle.ts";
import { assignmentOf, ProbeDispatch } from "./probe-dispatch.ts";
import { listParticipation, participate, recordParticipation } from "./participation.ts";
import { firstDayCost, scheduleOf } from "./measurement-cost.ts";
import { checkMsmSources, checkQuotas, type QuotaHost } from "./quotas.ts";
import { type Rollout, Rollouts } from "./rollouts.ts";
import { MIGRATIONS } from "./brain-schema.ts";
import type { Alert, MeasurementFilter, MeasurementRow, ParticipationRecord, ParticipationRequest, Refusal, Warning } from "./brain-types.ts";
import { SqlDurableObject } from "./sql.ts";
import { earlierAnswers, questionOf, REUSE_WINDOW_S } from "./reuse.ts";

/** The crowd signal: this many distinct accounts measuring one target within the window raise an alert. */
const CROWD_ACCOUNTS = 5;
const CROWD_WINDOW_S = 600;

/** After a one-off's last packet is due, how long its results may still come in before it is Stopped. */
const ONEOFF_GRACE_S = 60;

export class Brain extends SqlDurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, MIGRATIONS);
  }

  /** Each measurement's status over time and its end (measurement-lifecycle.ts). */
  private readonly lifecycle = new Lifecycle({ ctx: this.ctx, env: () => this.env, sql: this.sql, get: (id) => this.get(id) });
  /** Finding probes for measurements (probe-dispatch.ts). */
  private readonly probes = new ProbeDispatch({ env: () => this.env, get: (id) => this.get(id) });

  /** What the quota checks (quotas.ts) read. */
  private readonly quotaHost: QuotaHost = { env: () => this.env, sql: this.sql, get: (id) => this.get(id) };

  /**
   * Creates one measurement per definition (ids in definition order), sets credits aside for each in the owner's
   * ledger (its results' cost for the first day: every requested probe, once for a one-off), and schedules it on
   * probes. If the account cannot cover them all, nothing is created.
   */
  async create(req: CreateMeasurements, owner: string): Promise<{ ok: true; ids: number[]; warnings: Warning[] } | Refusal> {
    const now = Math.floor(Date.now() / 1000);
    // The tenth user asking the same question: an identical public one-off answered recently is named, and with
    // "reuse": true taken instead of a new measurement, at no cost.
    const earlier = earlierAnswers(this.sql, req, now, Number(this.env.REUSE_WINDOW_S ?? REUSE_WINDOW_S));
    const warnings: Warning[] = earlier.map((e) => e.warning);
    // definition index → the measurement whose answer it takes
    const reused = new Map<number, number>(req.reuse ? earlier.map((e) => [e.index, e.measurement]) : []);
    const fresh = req.definitions.filter((_, i) => !reused.has(i));
    if (fresh.length === 0) return { ok: true, ids: req.definitions.map((_, i) => reused.get(i)!), warnings };
    const asked = { ...req, definitions: fresh };
    const refused = checkMsmSources(this.quotaHost, req.probes, owner, "/probes") ?? checkQuotas(this.quotaHost, asked, owner, now);
    if (refused) return refused;
    const rows = fresh.map((def) => {
      const { isOneoff, start, stop, interval, spread, requested } = scheduleOf(req, def, now);
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
    for (const r of rows) recordParticipation(this.sql, r.id, req.probes.map((source) => ({ action: "add" as const, ...source })), now);
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

  /**
   * What creating would answer, short of creating (nothing is written, nothing counted toward the rate limit): the
   * duplicate warnings, and the refusal a quota or an `msm` source would give. The credits are the ledger's to say.
   */
  preview(req: CreateMeasurements, owner: string): { warnings: Warning[]; reuses: (number | null)[]; refusal: Refusal | null } {
    const now = Math.floor(Date.now() / 1000);
    const earlier = earlierAnswers(this.sql, req, now, Number(this.env.REUSE_WINDOW_S ?? REUSE_WINDOW_S));
    // Per definition, the earlier measurement whose answer it would take (with "reuse": true), else null.
    const reuses = req.definitions.map((_, i) => (req.reuse ? earlier.find((e) => e.index === i)?.measurement : undefined) ?? null);
    const fresh = req.definitions.filter((_, i) => reuses[i] === null);
    const refusal = fresh.length === 0 ? null
      : checkMsmSources(this.quotaHost, req.probes, owner, "/probes") ?? checkQuotas(this.quotaHost, { ...req, definitions: fresh }, owner, now, false);
    return { warnings: earlier.map((e) => e.warning), reuses, refusal };
  }

  /** Gives a new measurement to probes; returns how many took it. */
  private async schedule(row: MeasurementRow): Promise<number> {
    const assignment = assignmentOf(row);
    const { participants, failures, asked } = await this.probes.dispatch(row.id, assignment, JSON.parse(row.sources) as ProbeSource[], []);
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
    if (status === STATUS.scheduled) this.lifecycle.timer(row.id, row.start_time, "start");
    if (row.is_oneoff) {
      this.lifecycle.timer(row.id, row.start_time + runSeconds(assignment.spec) + ONEOFF_GRACE_S, "finish");
    } else if (row.stop_time !== null) {
      this.lifecycle.timer(row.id, row.stop_time, "stop");
    }
    await this.lifecycle.armAlarm();
    return participants.length;
  }

  /**
   * POST /measurements/{id}/participation-requests/: adds probes (from sources, as at creation; their first day's
   * cost is set aside first) or removes probes (by id) from a running measurement of the caller's account.
   */
  participate(id: number, owner: string, requests: ParticipationRequest[]): ReturnType<typeof participate> {
    return participate({ env: () => this.env, sql: this.sql, quotaHost: this.quotaHost, get: (x) => this.get(x), probes: this.probes }, id, owner, requests);
  }

  /** A measurement's participation requests, oldest first; or one by its id (`id`). */
  participationRequests(f: { msm_id?: number; id?: number }, offset: number, limit: number): { count: number; requests: ParticipationRecord[] } {
    return listParticipation(this.sql, f, offset, limit);
  }

  override async alarm(): Promise<void> {
    await this.lifecycle.fire();
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
          await this.lifecycle.end(c.msm_id, STATUS.forcedToStop);
          await this.lifecycle.armAlarm();
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
    await this.lifecycle.end(id, STATUS.stopped);
    await this.lifecycle.armAlarm();
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
   * Which of these measurements are public (built-ins are, data sources when their hosts said so): archive bundles and the stream hold only those. null for
   * one that does not exist (yet): not public now, but it may be created later, so nobody may remember it as private.
   */
  publicFlags(ids: number[]): Record<number, boolean | null> {
    const out: Record<number, boolean | null> = {};
    for (const id of ids) {
      const row = builtinType(id) ? null : this.get(id);
      out[id] = builtinType(id) !== null ? builtinPublic(id) : row === null ? null : (JSON.parse(row.definition) as Definition).is_public !== false;
    }
    return out;
  }

  list(f: MeasurementFilter, offset: number, limit: number): { count: number; rows: MeasurementRow[] } {
    return listMeasurements(this.sql, f, offset, limit);
  }
}
