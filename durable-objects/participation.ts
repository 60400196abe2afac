// Atlas's participation requests on a running measurement (POST /measurements/{id}/participation-requests/): probes
// added from sources, as at creation (their first day's cost set aside first), or removed by id; and the record of
// every request, the creation's sources included, as Atlas lists them.
import { type ProbeSource, STATUS } from "../protocol/index.ts";
import type { MeasurementRow, ParticipationRecord, ParticipationRequest, Refusal } from "./brain-types.ts";
import { groupBy } from "./group-by.ts";
import { firstDayCost } from "./measurement-cost.ts";
import type { Participant } from "./probe-attachment.ts";
import { assignmentOf, type ProbeDispatch } from "./probe-dispatch.ts";
import { checkMsmSources, quota, type QuotaHost, quotas, rateLimited } from "./quotas.ts";
import { controllerStub, shardByName } from "./shards.ts";
import { type Sql, Where } from "./sql.ts";

export type ParticipationHost = { env: () => Env; sql: Sql; quotaHost: QuotaHost; get: (id: number) => MeasurementRow | null; probes: ProbeDispatch };

/** Adds or removes probes of a running measurement of `owner`'s, within the same limits as creation. */
export async function participate(h: ParticipationHost, id: number, owner: string, requests: ParticipationRequest[]):
  Promise<{ ok: true; request_ids: number[]; added: number[]; removed: number[] } | Refusal | { ok: false; status: 403 | 404 | 409; detail: string }> {
  const row = h.get(id);
  if (!row) return { ok: false, status: 404, detail: `No measurement with id ${id}.` };
  if (row.owner !== owner) return { ok: false, status: 403, detail: `Measurement ${id} belongs to another account.` };
  if (row.status_id > STATUS.ongoing.id) return { ok: false, status: 409, detail: `Measurement ${id} is no longer running.` };
  // The same limits as creation: the rate of requests, reusable probes, and the probes a measurement may have.
  const now = Math.floor(Date.now() / 1000);
  const adding = requests.filter((r) => r.action === "add") as (ProbeSource & { action: "add" })[];
  const refused = rateLimited(h.quotaHost, owner, now) ?? checkMsmSources(h.quotaHost, adding, owner, "");
  if (refused) return refused;
  const more = adding.reduce((n, s) => n + s.requested, 0);
  if (row.probes_requested + more > quotas(h.env()).probesPerMeasurement) {
    return quota(`Measurement ${id} has ${row.probes_requested} probes requested and asks for ${more} more; a measurement may have at most ${quotas(h.env()).probesPerMeasurement}.`);
  }
  h.sql("INSERT INTO creations (owner, at) VALUES (?, ?)", owner, now);
  let participants = JSON.parse(row.participants) as Participant[];
  const added: number[] = [], removed: number[] = [];
  const adds = requests.filter((r) => r.action === "add").map(({ action: _, ...source }) => source as ProbeSource);
  if (adds.length) {
    const perProbe = firstDayCost({ ...row, probes_requested: 1 });
    const wanted = perProbe * adds.reduce((n, s) => n + s.requested, 0);
    const outcome = await h.env().LEDGER.getByName(owner).reserve(`participate:${id}:${row.probes_requested}:${Date.now()}`, id, wanted);
    if (!outcome.ok) {
      return { ok: false, status: 402, detail: `Not enough credits: adding these probes needs ${wanted} credits set aside, and the account has ${"available" in outcome ? outcome.available : 0} free.` };
    }
    const got = await h.probes.dispatch(id, assignmentOf(row), adds, participants.map((p) => p.probe_id));
    participants = [...participants, ...got.participants];
    added.push(...got.participants.map((p) => p.probe_id));
  }
  for (const r of requests.filter((r) => r.action === "remove")) {
    const ids = new Set(r.value.split(",").map(Number));
    const leaving = participants.filter((p) => ids.has(p.probe_id));
    for (const [shard, ps] of groupBy(leaving, (p) => p.shard)) {
      const s = shardByName(shard);
      if (s) await controllerStub(h.env().CONTROLLER, s).stop(id, ps.map((p) => p.probe_id));
    }
    participants = participants.filter((p) => !ids.has(p.probe_id));
    removed.push(...leaving.map((p) => p.probe_id));
  }
  h.sql("UPDATE measurements SET participants = ?, probes_scheduled = ?, probes_requested = probes_requested + ? WHERE id = ?",
    JSON.stringify(participants), participants.length, added.length, id);
  return { ok: true, request_ids: recordParticipation(h.sql, id, requests, Math.floor(Date.now() / 1000)), added, removed };
}

/** Records requests (the creation's sources as "add" requests too); their ids, in order. */
export function recordParticipation(sql: Sql, msmId: number, requests: ParticipationRequest[], at: number): number[] {
  return requests.map((r) => sql<{ id: number }>(
    "INSERT INTO participation_requests (msm_id, action, type, value, requested, tags, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
    msmId, r.action, r.type, r.value, r.requested ?? null, "tags" in r && r.tags ? JSON.stringify(r.tags) : null, at)[0]!.id);
}

/** A measurement's participation requests, oldest first; or one by its id (`id`). */
export function listParticipation(sql: Sql, f: { msm_id?: number; id?: number }, offset: number, limit: number): { count: number; requests: ParticipationRecord[] } {
  const where = new Where().eq("msm_id", f.msm_id).eq("id", f.id);
  const count = sql<{ n: number }>(`SELECT COUNT(*) AS n FROM participation_requests ${where}`, ...where.binds)[0]!.n;
  const rows = sql<Omit<ParticipationRecord, "tags" | "measurement"> & { msm_id: number; tags: string | null }>(
    `SELECT * FROM participation_requests ${where} ORDER BY id LIMIT ? OFFSET ?`, ...where.binds, limit, offset);
  return { count, requests: rows.map(({ msm_id, tags, ...r }) => ({ ...r, measurement: msm_id, tags: tags ? JSON.parse(tags) as ParticipationRecord["tags"] : null })) };
}
