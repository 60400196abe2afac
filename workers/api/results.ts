// /api/v2/measurements/{id}/results/ and /latest/: results read back through the per-measurement index the
// controllers keep (R2 batch keys plus not-yet-flushed results), never by listing the bucket.
import type { IRequest } from "itty-router";
import type { Env } from "../../durable-objects/env.ts";
import { readResults } from "../../durable-objects/results.ts";
import type { Result } from "../../protocol/index.ts";
import { ApiError, intListParam, intParam, parameterError } from "./errors.ts";
import { measurementId } from "./measurements.ts";

async function collect(env: Env, id: number, start: number | null, stop: number | null): Promise<Result[]> {
  const results = await readResults(env, id, start, stop);
  if (!results) throw new ApiError(404, `No measurement with id ${id}.`);
  return results;
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
