// Reading a measurement's results back: through the per-measurement index its controllers keep (R2 batch keys plus
// results not yet flushed), never by listing the bucket. Used by the results API and the stream's backlog.
import { builtinType, type Result } from "../protocol/index.ts";
import { resultsInBatch } from "../storage/layout.ts";
import type { Participant } from "./probe-attachment.ts";
import { BRAIN_NAME } from "./env.ts";
import { controllerStub, SHARDS, shardByName } from "./shards.ts";

/** The shards that hold a measurement's results: its participants' — or, for a built-in, every shard. */
async function shardsOf(env: Env, id: number): Promise<string[] | null> {
  if (builtinType(id)) return SHARDS.map((s) => s.name);
  const row = await env.BRAIN.getByName(BRAIN_NAME).get(id);
  if (!row) return null;
  // A probe that moved shards left results on each it ran on (`was`).
  return [...new Set((JSON.parse(row.participants) as Participant[]).flatMap((p) => [p.shard, ...(p.was ?? [])]))];
}

/** The JSON-lines bodies a controller's index answer points to: its R2 batches, then its results not yet flushed. */
export async function indexBodies(env: Env, index: { keys: string[]; pending: string }): Promise<string[]> {
  const objects = await Promise.all(index.keys.map(async (key) => (await env.RESULTS.get(key))?.text() ?? ""));
  return [...objects, index.pending];
}

/** A measurement's results between `start` and `stop` (unix seconds, inclusive), oldest first; null if it does not exist. */
export async function readResults(env: Env, id: number, start: number | null, stop: number | null): Promise<Result[] | null> {
  const shards = await shardsOf(env, id);
  if (!shards) return null;
  const bodies = await Promise.all(shards.map(async (name) => {
    const shard = shardByName(name);
    if (!shard) return [];
    return indexBodies(env, await controllerStub(env.CONTROLLER, shard).resultIndex(id, start, stop));
  }));
  // A result is identified by (probe, start time): readers de-duplicate, so a batch written twice by a retry or a
  // probe that resent to another shard never shows a result twice.
  const seen = new Map<string, Result>();
  for (const body of bodies.flat()) {
    for (const r of resultsInBatch<Result>(body, id)) {
      if (start !== null && r.timestamp < start) continue;
      if (stop !== null && r.timestamp > stop) continue;
      seen.set(`${r.prb_id}:${r.timestamp}`, r);
    }
  }
  return [...seen.values()].sort((a, b) => a.timestamp - b.timestamp || a.prb_id - b.prb_id);
}
