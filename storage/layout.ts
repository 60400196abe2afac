// R2 layout of results. Hive-style partitions let Spark, DuckDB, ClickHouse or Athena-like engines prune by type
// and time; readers of one measurement never list the bucket, they follow the per-measurement index the
// controllers keep (durable-objects/controller.ts).
//
//   results/type=ping/date=2026-11-26/hour=06/shard=weur-0/<first>-<last>-<epoch>.jsonl
//
// One object is one batch written by one controller: Atlas results, one JSON per line, covering outbox rows
// <first>..<last> of that controller. The name is deterministic, so a retried write lands on the same key and
// `If-None-Match: *` makes it write-once.
//
//   aggregates/type=ping/date=…/hour=…/shard=…/<first>-<last>-<epoch>.json   per-AS RTT samples of that batch (aggregateKey)
//   releases/<version>/vantage-probe.mjs
//
// Signed agent releases (workers/api/releases.ts), their manifest in the object's custom metadata.

export function partitionOf(type: string, timestamp: number): { type: string; date: string; hour: string } {
  const iso = new Date(timestamp * 1000).toISOString();
  return { type, date: iso.slice(0, 10), hour: iso.slice(11, 13) };
}

/**
 * A partition as one string, `type|date|hour`: what an outbox row lists of the partitions its results fall in
 * (durable-objects/commits.ts), and what a batch is sealed for.
 */
export function partitionKey(type: string, timestamp: number): string {
  const p = partitionOf(type, timestamp);
  return `${p.type}|${p.date}|${p.hour}`;
}

/** `epoch`: the controller storage's incarnation (8 hex digits), so ids that restart never reuse a key. */
export function batchKey(p: { type: string; date: string; hour: string }, shard: string, first: number, last: number, epoch: string): string {
  const pad = (n: number) => String(n).padStart(12, "0");
  return `results/type=${p.type}/date=${p.date}/hour=${p.hour}/shard=${shard}/${pad(first)}-${pad(last)}-${epoch}.jsonl`;
}

/** Results of one measurement in a JSONL batch body. */
export function* resultsInBatch<T extends { msm_id: number }>(body: string, msmId: number): Generator<T> {
  for (const line of body.split("\n")) {
    if (!line) continue;
    const r = JSON.parse(line) as T;
    if (r.msm_id === msmId) yield r;
  }
}

/**
 * The per-AS aggregate written next to a batch of ping results (same partitions, `aggregates/` for `results/`):
 * for each (probe ASN, target) the batch's RTT samples, so aggregates of any set of batches merge exactly.
 */
export function aggregateKey(batch: string): string {
  return batch.replace(/^results\//, "aggregates/").replace(/\.jsonl$/, ".json");
}

export type AggregateGroup = { asn: number | null; target: string; samples: number[] };
export type BatchAggregate = { type: "ping"; date: string; hour: string; groups: AggregateGroup[] };

/** Where the probe archive's snapshot of a day (YYYY-MM-DD, UTC) is kept (workers/probe-archive.ts). */
export function probeArchiveKey(date: string): string {
  return `probes/archive/date=${date}/probes.json.gz`;
}

/** Where a published agent release is kept. */
export function releaseKey(version: string): string {
  return `releases/${version}/vantage-probe.mjs`;
}
