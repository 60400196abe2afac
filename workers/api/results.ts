// /api/v2/measurements/{id}/results/ and /latest/: results read back through the per-measurement index the
// controllers keep (R2 batch keys plus not-yet-flushed results), never by listing the bucket.
import type { IRequest } from "itty-router";
import { BRAIN_NAME, REGISTRY_NAME } from "../../durable-objects/env.ts";
import { PublicMeasurements } from "../../durable-objects/public.ts";
import { indexBodies, readResults } from "../../durable-objects/results.ts";
import { controllerStub, SHARDS } from "../../durable-objects/shards.ts";
import { builtinPublic, builtinType, inCidr, isCidr, MEASUREMENT_TYPES, type Result } from "../../protocol/index.ts";
import { aggregateKey, type BatchAggregate } from "../../storage/layout.ts";
import { ApiError, intListParam, intParam, parameterError } from "./errors.ts";
import { measurementId, requireVisible } from "./measurements.ts";
import { page, pageOf } from "./pagination.ts";

/**
 * A measurement's results between `start` and `stop`. A private measurement's are its owner's: the request must carry
 * a key of the account that owns it (403 otherwise, as Atlas answers for non-public measurements).
 */
async function collect(request: IRequest, env: Env, id: number, start: number | null, stop: number | null): Promise<Result[]> {
  if (builtinType(id) && !builtinPublic(id)) {
    // Every host's private data under one id: each host reads their own probes' through /api/v2/dnsstats/ or /traffic/.
    throw new ApiError(403, `Measurement ${id} holds appliances' private records; their hosts read them through /api/v2/${builtinType(id)}/?probe=…`);
  }
  if (!builtinType(id)) {
    const row = await env.BRAIN.getByName(BRAIN_NAME).get(id);
    if (!row) throw new ApiError(404, `No measurement with id ${id}.`);
    await requireVisible(request, env, row);
  }
  const results = await readResults(env, id, start, stop);
  if (!results) throw new ApiError(404, `No measurement with id ${id}.`);
  return results;
}

export function format(url: URL): "json" | "txt" {
  const f = url.searchParams.get("format") ?? "json";
  if (f !== "json" && f !== "txt") throw parameterError("format", 'Enter "json" or "txt".');
  return f;
}

export function respond(results: unknown[], fmt: "json" | "txt"): Response {
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
  let results = await collect(request, env, id, start, stop);
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
  const results = await collect(request, env, id, start, null);
  // As Atlas answers (and RIPE's `ripe-atlas report` reads it): one array, each probe's newest `versions` results,
  // probes in id order, each probe's newest first.
  const byProbe = new Map<number, Result[]>();
  for (const r of results.reverse()) {
    if (probes && !probes.includes(r.prb_id)) continue;
    const list = byProbe.get(r.prb_id) ?? [];
    byProbe.set(r.prb_id, list);
    if (list.length < versions) list.push(r);
  }
  return respond([...byProbe.entries()].sort((a, b) => a[0] - b[0]).flatMap(([, list]) => list), fmt);
}

/** Longest time range one query across measurements covers (seconds). */
const MAX_QUERY_S = 86_400;

/** The required `start`/`stop` of a query across measurements (unix seconds, inclusive, at most a day apart). */
export function timeRange(url: URL): { start: number; stop: number } {
  const start = intParam(url, "start");
  const stop = intParam(url, "stop");
  if (start === undefined) throw parameterError("start", "Enter the range's start as a unix timestamp.");
  if (stop === undefined) throw parameterError("stop", "Enter the range's end as a unix timestamp.");
  if (stop < start) throw parameterError("stop", "stop is before start.");
  if (stop - start > MAX_QUERY_S) throw parameterError("stop", `A query covers at most ${MAX_QUERY_S} seconds; page through longer periods.`);
  return { start, stop };
}

/**
 * GET /api/v2/results/?start&stop[&type][&probe_ids][&asn][&country_code][&target_prefix] — results of public
 * measurements across measurements, oldest first, paginated. Answered from the controllers' batch index by time (never
 * by listing the bucket); probe ASN and country through the registry.
 */
export async function queryResults(request: IRequest, env: Env): Promise<Response> {
  const url = new URL(request.url);
  const { start, stop } = timeRange(url);
  const type = url.searchParams.get("type");
  if (type !== null && !(MEASUREMENT_TYPES as readonly string[]).includes(type)) throw parameterError("type", `Enter one of ${MEASUREMENT_TYPES.join(", ")}.`);
  const prefix = url.searchParams.get("target_prefix");
  if (prefix !== null && !isCidr(prefix)) throw parameterError("target_prefix", "Enter a prefix such as 192.0.2.0/24 or 2001:db8::/32.");
  const asn = intParam(url, "asn", 0, 4_294_967_295);
  const country = url.searchParams.get("country_code");
  if (country !== null && !/^[A-Za-z]{2}$/.test(country)) throw parameterError("country_code", "Enter a two-letter country code.");

  // The probes asked for: by id, and by the registry's ASN and country.
  let probes = intListParam(url, "probe_ids") ? new Set(intListParam(url, "probe_ids")) : null;
  if (asn !== undefined || country !== null) {
    const found = (await env.REGISTRY.getByName(REGISTRY_NAME).listProbes({ asn_v4: asn, country_code: country ?? undefined }, 0, 1_000_000)).probes.map((p) => p.id);
    probes = new Set(found.filter((id) => !probes || probes.has(id)));
  }

  const seen = new Map<string, Result>();
  if (!probes || probes.size > 0) {
    const bodies = await Promise.all(SHARDS.map(async (shard) => indexBodies(env, await controllerStub(env.CONTROLLER, shard).resultsIn(start, stop, type))));
    for (const body of bodies.flat()) {
      for (const line of body.split("\n")) {
        if (!line) continue;
        const r = JSON.parse(line) as Result;
        if (r.timestamp < start || r.timestamp > stop || (type !== null && r.type !== type) || (probes && !probes.has(r.prb_id))) continue;
        if (prefix !== null && !("dst_addr" in r && typeof r.dst_addr === "string" && r.dst_addr && inCidr(r.dst_addr, prefix))) continue;
        seen.set(`${r.msm_id}:${r.prb_id}:${r.timestamp}`, r);
      }
    }
  }
  // Public measurements only, as in the archive bundles.
  const results = (await new PublicMeasurements(env).only([...seen.values()]))
    .sort((a, b) => a.timestamp - b.timestamp || a.prb_id - b.prb_id || a.msm_id - b.msm_id);
  const { offset, limit } = pageOf(url);
  return Response.json(page(url, results.length, results.slice(offset, offset + limit)));
}

/** The value below which a share `q` of the sorted samples lies (linear interpolation, as DuckDB's quantile_cont). */
function quantile(sorted: number[], q: number): number {
  const pos = (sorted.length - 1) * q, lo = Math.floor(pos);
  return sorted[lo]! + (sorted[Math.min(lo + 1, sorted.length - 1)]! - sorted[lo]!) * (pos - lo);
}

/**
 * GET /api/v2/aggregates/?start&stop[&asn][&target] — ping RTT per probe ASN and target per hour (the hours that
 * overlap the range): results, median, 5th and 95th percentile of the results' average RTTs. Merged exactly from the
 * per-batch samples controllers store next to the raw results (flushed results: a few seconds behind).
 */
export async function queryAggregates(request: IRequest, env: Env): Promise<Response> {
  const url = new URL(request.url);
  const { start, stop } = timeRange(url);
  const asn = intParam(url, "asn", 0, 4_294_967_295);
  const target = url.searchParams.get("target");
  const groups = new Map<string, { asn: number | null; target: string; hour: string; samples: number[] }>();
  await Promise.all(SHARDS.map(async (shard) => {
    // An hour's batches are indexed by their results' times: ask for the whole hours the range touches.
    const index = await controllerStub(env.CONTROLLER, shard).resultsIn(start - (start % 3600), stop - (stop % 3600) + 3599, "ping");
    for (const key of index.keys) {
      const aggregate = await (await env.RESULTS.get(aggregateKey(key)))?.json<BatchAggregate>();
      if (!aggregate) continue;
      const hour = `${aggregate.date}T${aggregate.hour}`;
      for (const g of aggregate.groups) {
        if ((asn !== undefined && g.asn !== asn) || (target !== null && g.target !== target)) continue;
        const k = `${hour}|${g.asn}|${g.target}`;
        const e = groups.get(k) ?? { asn: g.asn, target: g.target, hour, samples: [] };
        e.samples.push(...g.samples);
        groups.set(k, e);
      }
    }
  }));
  const rows = [...groups.values()].map((g) => {
    const s = g.samples.sort((a, b) => a - b);
    const r3 = (x: number) => Math.round(x * 1000) / 1000;
    return { hour: g.hour, asn: g.asn, target: g.target, results: s.length, median_rtt: r3(quantile(s, 0.5)), p5_rtt: r3(quantile(s, 0.05)), p95_rtt: r3(quantile(s, 0.95)) };
  }).sort((a, b) => a.hour.localeCompare(b.hour) || (a.asn ?? -1) - (b.asn ?? -1) || a.target.localeCompare(b.target));
  const { offset, limit } = pageOf(url);
  return Response.json(page(url, rows.length, rows.slice(offset, offset + limit)));
}
