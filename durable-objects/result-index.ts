// Where a controller's results are, for readers (durable-objects/results.ts, the results API): the keys of the R2
// batches its index lists, plus the results not yet flushed, straight from the outbox (JSON lines). Readers pick a
// measurement's or a type's lines out of what they get: a batch holds many measurements (built-ins are indexed
// together), and an outbox row a commit's results of every type.
import { USER_MSM_MIN } from "../protocol/index.ts";
import { BUILTINS_INDEX } from "./batches.ts";
import type { Sql } from "./sql.ts";

export type ResultIndex = { keys: string[]; pending: string };

/** A measurement's results between `start` and `stop` (unix seconds, either open). */
export function resultIndex(sql: Sql, msmId: number, start: number | null, stop: number | null): ResultIndex {
  const lo = start ?? 0, hi = stop ?? Number.MAX_SAFE_INTEGER;
  const keys = sql<{ key: string }>(
    "SELECT DISTINCT key FROM batches WHERE msm_id IN (?, ?) AND max_ts >= ? AND min_ts <= ? ORDER BY key",
    msmId, msmId < USER_MSM_MIN ? BUILTINS_INDEX : msmId, lo, hi).map((r) => r.key);
  const pending = sql<{ body: string }>(
    "SELECT body FROM outbox WHERE ',' || msm_ids || ',' LIKE ? AND max_ts >= ? AND min_ts <= ? ORDER BY id",
    `%,${msmId},%`, lo, hi).map((r) => r.body).join("");
  return { keys, pending };
}

/**
 * Every batch key holding results of `type` (any, if null) that started between `start` and `stop`, and the
 * results not yet flushed in that range: what a query across measurements reads.
 */
export function resultsIn(sql: Sql, start: number, stop: number, type: string | null): ResultIndex {
  const keys = sql<{ key: string }>(
    "SELECT DISTINCT key FROM batches WHERE max_ts >= ? AND min_ts <= ? AND key LIKE ? ORDER BY key", start, stop, `results/type=${type ?? ""}%`).map((r) => r.key);
  const pending = sql<{ body: string }>(
    "SELECT body FROM outbox WHERE max_ts >= ? AND min_ts <= ? AND (? IS NULL OR ',' || parts LIKE ?) ORDER BY id",
    start, stop, type, `%,${type}|%`).map((r) => r.body).join("");
  return { keys, pending };
}
