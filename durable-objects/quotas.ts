// Per-account limits on what the brain is asked: Atlas's quotas (measurements running, probes per measurement,
// results and credits a day, measurements of one target), the rate of creations and participation requests, and
// which measurements' probes an `msm` source may reuse. Read-only but for the rate's own table.
import { type CreateMeasurements, creditsPerResult, type Definition, type ProbeSource, specOf, STATUS } from "../protocol/index.ts";
import type { MeasurementRow, Refusal } from "./brain-types.ts";
import type { Sql } from "./sql.ts";

/** Atlas's default interval for periodic pings (seconds). */
export const DEFAULT_INTERVAL = 240;

/** What the checks read of the brain. */
export type QuotaHost = {
  env: () => Env;
  sql: Sql;
  get: (id: number) => MeasurementRow | null;
};

/** Atlas's per-account quotas, each overridable by the operator with a QUOTA_* variable (docs/api.md). */
export function quotas(env: Env) {
  const q = (name: string, fallback: number) => {
    const v = Number(env[`QUOTA_${name}` as keyof Env]);
    return Number.isFinite(v) && v > 0 ? v : fallback;
  };
  return {
    concurrent: q("CONCURRENT", 100), probesPerMeasurement: q("PROBES_PER_MEASUREMENT", 1000), resultsPerDay: q("RESULTS_PER_DAY", 100_000),
    creditsPerDay: q("CREDITS_PER_DAY", 1_000_000), sameTarget: q("SAME_TARGET", 25), createsPerMinute: q("CREATES_PER_MINUTE", 60),
  };
}

/**
 * An `msm` source reuses another measurement's probes, which says where a private measurement ran: only the
 * owner's own or public measurements may be named. Another account's private one is answered as if it did not
 * exist, so its existence is not revealed either.
 */
export function checkMsmSources(h: QuotaHost, sources: ProbeSource[], owner: string, pointer: string): Refusal | null {
  for (const [i, s] of sources.entries()) {
    if (s.type !== "msm") continue;
    const row = h.get(Number(s.value));
    if (!row || (row.is_public === 0 && row.owner !== owner)) {
      return { ok: false, status: 400, pointer: `${pointer}/${i}/value`, detail: `${pointer}/${i}/value: No measurement with id ${s.value} whose probes you may reuse.` };
    }
  }
  return null;
}

/** The creation rate limit, shared by creations and participation requests: null, or the refusal with its wait. */
export function rateLimited(h: QuotaHost, owner: string, now: number): Refusal | null {
  const q = quotas(h.env());
  h.sql("DELETE FROM creations WHERE at <= ?", now - 60);
  const recent = h.sql<{ n: number; first: number | null }>("SELECT COUNT(*) AS n, MIN(at) AS first FROM creations WHERE owner = ?", owner)[0]!;
  if (recent.n < q.createsPerMinute) return null;
  const retry = Math.max(1, recent.first! + 60 - now);
  return { ok: false, status: 429, retry_after: retry, detail: `Too many measurements created or changed: at most ${q.createsPerMinute} requests a minute per account; retry in ${retry} s.` };
}

/**
 * The account's quotas against what it runs now plus this request, and the creation rate limit. Counts the
 * request toward the rate only when it passes and `count` (a price asked before creating is not a creation).
 */
export function checkQuotas(h: QuotaHost, req: CreateMeasurements, owner: string, now: number, count = true): Refusal | null {
  const q = quotas(h.env());
  const limited = rateLimited(h, owner, now);
  if (limited) return limited;
  const requested = req.probes.reduce((n, s) => n + s.requested, 0);
  if (requested > q.probesPerMeasurement) return quota(`${requested} probes requested; a measurement may have at most ${q.probesPerMeasurement}.`);
  const running = h.sql<MeasurementRow>(
    `SELECT * FROM measurements WHERE owner = ? AND (status_id IN (0, 1, 2) OR (is_oneoff = 1 AND creation_time > ?))`, owner, now - 86_400);
  const live = running.filter((r) => r.status_id <= STATUS.ongoing.id);
  if (live.length + req.definitions.length > q.concurrent) {
    return quota(`The account runs ${live.length} measurements and asked for ${req.definitions.length} more; at most ${q.concurrent} at once.`);
  }
  const perDay = (r: Pick<MeasurementRow, "is_oneoff" | "interval" | "probes_requested">) =>
    r.probes_requested * (r.is_oneoff ? 1 : Math.ceil(86_400 / (r.interval ?? DEFAULT_INTERVAL)));
  const newRows = req.definitions.map((def) => {
    const isOneoff = def.is_oneoff ?? req.is_oneoff ?? false;
    return { definition: JSON.stringify(def), is_oneoff: isOneoff ? 1 : 0, interval: isOneoff ? null : def.interval ?? DEFAULT_INTERVAL, probes_requested: requested };
  });
  const all = [...running.filter((r) => r.status_id <= STATUS.ongoing.id || r.is_oneoff), ...newRows];
  const results = all.reduce((n, r) => n + perDay(r), 0);
  if (results > q.resultsPerDay) return quota(`These measurements would bring the account to ${results} results a day; at most ${q.resultsPerDay}.`);
  const credits = all.reduce((n, r) => n + perDay(r) * creditsPerResult(specOf(JSON.parse(r.definition) as Definition), r.is_oneoff === 1), 0);
  if (credits > q.creditsPerDay) return quota(`These measurements would cost the account ${credits} credits a day; at most ${q.creditsPerDay}.`);
  for (const def of req.definitions) {
    const oneoff = def.is_oneoff ?? req.is_oneoff ?? false;
    const same = live.filter((r) => r.type === def.type && r.is_oneoff === (oneoff ? 1 : 0) && (JSON.parse(r.definition) as Definition).target === def.target).length
      + req.definitions.filter((d) => d.type === def.type && d.target === def.target && (d.is_oneoff ?? req.is_oneoff ?? false) === oneoff).length;
    if (def.target !== undefined && same > q.sameTarget) {
      return quota(`${same} ${oneoff ? "one-off" : "ongoing"} ${def.type} measurements of ${def.target} for this account; at most ${q.sameTarget}.`);
    }
  }
  if (count) h.sql("INSERT INTO creations (owner, at) VALUES (?, ?)", owner, now);
  return null;
}

export function quota(detail: string): Refusal {
  return { ok: false, status: 400, detail: `Quota exceeded: ${detail}` };
}
