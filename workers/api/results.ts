// /api/v2/measurements/{id}/results/ and /latest/: results read back through the per-measurement index the
// controllers keep (R2 batch keys plus not-yet-flushed results), never by listing the bucket.
import type { IRequest } from "itty-router";
import type { Participant } from "../../durable-objects/controller.ts";
import { BRAIN_NAME, type Env } from "../../durable-objects/env.ts";
import { controllerStub, SHARDS, shardByName } from "../../durable-objects/shards.ts";
import { builtinType, type Result } from "../../protocol/index.ts";
import { resultsInBatch } from "../../storage/layout.ts";
import { ApiError, intListParam, intParam, parameterError } from "./errors.ts";
import { measurementId } from "./measurements.ts";

/** The shards that hold a measurement's results: its participants' — or, for a built-in, every shard. */
async function shardsOf(env: Env, id: number): Promise<string[]> {
  if (builtinType(id)) return SHARDS.map((s) => s.name);
  const row = await env.BRAIN.getByName(BRAIN_NAME).get(id);
  if (!row) throw new ApiError(404, `No measurement with id ${id}.`);
  return [...new Set((JSON.parse(row.participants) as Participant[]).map((p) => p.shard))];
}

async function collect(env: Env, id: number, start: number | null, stop: number | null): Promise<Result[]> {
  const shards = await shardsOf(env, id);
  const bodies = await Promise.all(shards.map(async (name) => {
    const shard = shardByName(name);
    if (!shard) return [];
    const index = await controllerStub(env.CONTROLLER, shard).resultIndex(id, start, stop);
    const objects = await Promise.all(index.keys.map(async (key) => (await env.RESULTS.get(key))?.text() ?? ""));
    return [...objects, index.pending];
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

function format(url: URL): "json" | "txt" {
  const f = url.searchParams.get("format") ?? "json";
  if (f !== "json" && f !== "txt") throw parameterError("format", 'Enter "json" or "txt".');
  return f;
}

function respond(results: unknown[], fmt: "json" | "txt"): Response {
  if (fmt === "txt") {
    return new Response(results.map((r) => JSON.stringify(r)).join("\n") + (results.length ? "\n" : ""), {
      headers: { "Content-Type": "text/plain; charset=utf-8" },
    });
  }
  return Response.json(results);
}

export async function getResults(request: IRequest, env: Env): Promise<Response> {
  const url = new URL(request.url);
  const id = measurementId(request);
  const fmt = format(url);
  const start = intParam(url, "start") ?? null;
  const stop = intParam(url, "stop") ?? null;
  const probes = intListParam(url, "probe_ids");
  let results = await collect(env, id, start, stop);
  if (probes) results = results.filter((r) => probes.includes(r.prb_id));
  return respond(results, fmt);
}

export async function getLatest(request: IRequest, env: Env): Promise<Response> {
  const url = new URL(request.url);
  const id = measurementId(request);
  const fmt = format(url);
  const probes = intListParam(url, "probe_ids");
  const versions = intParam(url, "versions", 1, 10) ?? 1;
  const lookback = intParam(url, "lookback_days", 0, 365) ?? (probes ? 0 : 7);
  const start = lookback === 0 ? null : Math.floor(Date.now() / 1000) - lookback * 86_400;
  const results = await collect(env, id, start, null);
  const byProbe: Record<string, Result[]> = {};
  for (const r of results.reverse()) {
    if (probes && !probes.includes(r.prb_id)) continue;
    const list = (byProbe[String(r.prb_id)] ??= []);
    if (list.length < versions) list.push(r);
  }
  if (fmt === "txt") return respond(Object.values(byProbe).flat(), fmt);
  return Response.json(byProbe);
}
