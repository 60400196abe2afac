// Atlas's measurement tagging: each account tags measurements it can see (its own, or public ones) with its own
// tags, reads the results of all it tagged so at once (`/measurements/tags/{tag}/results/`) and stops its own
// tagged ones together (`/measurements/my-tags/{tag}/stop/`). One table in the brain; a tag is the account's alone.
import type { Sql } from "./sql.ts";

/** A tag as Atlas spells them: lower-case letters, digits, `-` and `_`, up to 64. */
export const TAG = /^[a-z0-9_-]{1,64}$/;

/** At most this many measurements under one tag of one account (the results of all of them are read at once). */
export const MAX_TAGGED = 200;

export const MEASUREMENT_TAGS_SCHEMA = `CREATE TABLE measurement_tags (account TEXT NOT NULL, tag TEXT NOT NULL, msm_id INTEGER NOT NULL,
   PRIMARY KEY (account, tag, msm_id));`;

export function addTag(sql: Sql, account: string, tag: string, msmId: number): "tagged" | "full" {
  const n = sql<{ n: number }>("SELECT COUNT(*) AS n FROM measurement_tags WHERE account = ? AND tag = ?", account, tag)[0]!.n;
  const already = sql("SELECT 1 FROM measurement_tags WHERE account = ? AND tag = ? AND msm_id = ?", account, tag, msmId).length > 0;
  if (!already && n >= MAX_TAGGED) return "full";
  sql("INSERT OR IGNORE INTO measurement_tags (account, tag, msm_id) VALUES (?, ?, ?)", account, tag, msmId);
  return "tagged";
}

/** Whether the tag was there to remove. */
export function removeTag(sql: Sql, account: string, tag: string, msmId: number): boolean {
  return sql("DELETE FROM measurement_tags WHERE account = ? AND tag = ? AND msm_id = ? RETURNING msm_id", account, tag, msmId).length > 0;
}

/** The measurements an account tagged so, oldest first. */
export function taggedWith(sql: Sql, account: string, tag: string): number[] {
  return sql<{ msm_id: number }>("SELECT msm_id FROM measurement_tags WHERE account = ? AND tag = ? ORDER BY msm_id", account, tag).map((r) => r.msm_id);
}

/** The account's own tags on a measurement, by name. */
export function tagsOn(sql: Sql, account: string, msmId: number): string[] {
  return sql<{ tag: string }>("SELECT tag FROM measurement_tags WHERE account = ? AND msm_id = ? ORDER BY tag", account, msmId).map((r) => r.tag);
}
