// Reusing answers: a public one-off that asks what another public one-off asked a few minutes ago (same type, target,
// options and probe sources; not its description) is named in a warning, and with `"reuse": true` taken instead of a
// new measurement. Used by the brain when creating, and when pricing a request before it is sent (the console).
import { type CreateMeasurements, type Definition, specOf, STATUS } from "../protocol/index.ts";
import type { Warning } from "./brain-types.ts";
import type { Sql } from "./sql.ts";

/** A one-off asked again within this many seconds gets the earlier one's id in a warning (REUSE_WINDOW_S overrides). */
export const REUSE_WINDOW_S = 900;

/**
 * What a public one-off asks, as a key: its type, target, measurement options and probe sources (not its
 * description, tags or start time). Null for what is never reused: periodic or private measurements, or one-offs
 * scheduled for later.
 */
export function questionOf(req: CreateMeasurements, def: Definition): string | null {
  const oneoff = def.is_oneoff ?? req.is_oneoff ?? false;
  if (!oneoff || def.is_public === false || (def.start_time ?? req.start_time) !== undefined) return null;
  return JSON.stringify([specOf(def), def.target ?? null, req.probes]);
}

/** For each definition an earlier measurement answered within the window: its index, the earlier id, and the warning. */
export function earlierAnswers(sql: Sql, req: CreateMeasurements, now: number, window: number): { index: number; measurement: number; warning: Warning }[] {
  return req.definitions.flatMap((def, index) => {
    const question = questionOf(req, def);
    if (!question) return [];
    const earlier = sql<{ id: number; creation_time: number }>(
      `SELECT id, creation_time FROM measurements WHERE question = ? AND creation_time >= ? AND status_id NOT IN (?, ?)
       ORDER BY id DESC LIMIT 1`, question, now - window, STATUS.noSuitableProbes.id, STATUS.failed.id)[0];
    if (!earlier) return [];
    const warning: Warning = { code: "duplicate", measurement: earlier.id,
      detail: `Measurement ${earlier.id} asked the same question ${now - earlier.creation_time} s ago (same type, target, options and probes)${req.reuse ? "; its results are yours, at no cost" : "; send \"reuse\": true to take its results instead"}.` };
    return [{ index, measurement: earlier.id, warning }];
  });
}
