// A controller's SQLite schema, as the migrations that made it (sql.ts runs them once each, in order). What each
// table is for is said where it is made.
export const MIGRATIONS = [
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
