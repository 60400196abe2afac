// The brain's SQLite schema, as the migrations that made it (sql.ts runs them once each, in order).
import { MEASUREMENT_TAGS_SCHEMA } from "./measurement-tags.ts";

export const MIGRATIONS = [
  `CREATE TABLE measurements (
     id INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, definition TEXT NOT NULL, sources TEXT NOT NULL,
     status_id INTEGER NOT NULL, status_when INTEGER NOT NULL, creation_time INTEGER NOT NULL,
     start_time INTEGER NOT NULL, stop_time INTEGER, interval INTEGER, spread INTEGER, is_oneoff INTEGER NOT NULL,
     probes_requested INTEGER NOT NULL, probes_scheduled INTEGER NOT NULL DEFAULT 0,
     participants TEXT NOT NULL DEFAULT '[]', owner TEXT NOT NULL);
   -- Measurement ids start high so they never collide with the reserved ids of built-in measurements.
   INSERT INTO sqlite_sequence (name, seq) VALUES ('measurements', 10000000);
   CREATE TABLE timers (msm_id INTEGER NOT NULL, at INTEGER NOT NULL, action TEXT NOT NULL, PRIMARY KEY (msm_id, action));`,
  // A one-off's question (type, target, options, probe set), to find a recent identical one whose answer can be reused.
  `ALTER TABLE measurements ADD COLUMN question TEXT;
   CREATE INDEX measurements_question ON measurements (question, creation_time);`,
  // Crowd signals: many accounts measuring one target within a short window.
  `ALTER TABLE measurements ADD COLUMN target TEXT;
   CREATE INDEX measurements_target ON measurements (target, creation_time);
   CREATE TABLE alerts (id INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, target TEXT NOT NULL, accounts INTEGER NOT NULL,
     window_s INTEGER NOT NULL, time INTEGER NOT NULL, measurements TEXT NOT NULL);`,
  // Creation requests per account in the last minute, for the rate limit.
  `CREATE TABLE creations (owner TEXT NOT NULL, at INTEGER NOT NULL);
   CREATE INDEX creations_owner ON creations (owner, at);
   CREATE INDEX measurements_owner ON measurements (owner, status_id);`,
  // Staged rollouts of signed agent releases, and what each probe reported of the release it was offered.
  `CREATE TABLE rollouts (id INTEGER PRIMARY KEY AUTOINCREMENT, version TEXT NOT NULL, manifest TEXT NOT NULL,
     percent INTEGER NOT NULL, max_failures INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT, created INTEGER NOT NULL);
   CREATE TABLE rollout_reports (rollout_id INTEGER NOT NULL, probe_id INTEGER NOT NULL, state TEXT NOT NULL,
     detail TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (rollout_id, probe_id));`,
  // Atlas's participation requests, each with its id: a measurement's probe sources at creation ("add") and every
  // later request to add or remove probes.
  `CREATE TABLE participation_requests (id INTEGER PRIMARY KEY AUTOINCREMENT, msm_id INTEGER NOT NULL, action TEXT NOT NULL,
     type TEXT NOT NULL, value TEXT NOT NULL, requested INTEGER, tags TEXT, created_at INTEGER NOT NULL);
   CREATE INDEX participation_requests_msm ON participation_requests (msm_id, id);`,
  // Whether a measurement is public, as a column: lists show other accounts' public measurements only.
  `ALTER TABLE measurements ADD COLUMN is_public INTEGER NOT NULL DEFAULT 1;
   UPDATE measurements SET is_public = 0 WHERE json_extract(definition, '$.is_public') = 0;`,
  // Accounts' own tags on measurements (measurement-tags.ts).
  MEASUREMENT_TAGS_SCHEMA,
  // Atlas's measurement groups: the measurements one request created together share their first one's id.
  `ALTER TABLE measurements ADD COLUMN group_id INTEGER;
   CREATE INDEX measurements_group ON measurements (group_id) WHERE group_id IS NOT NULL;`,
];
