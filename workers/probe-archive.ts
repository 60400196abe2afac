// Atlas's probe archive: every probe as it stood on a day (`GET /api/v2/probes/archive/?date=YYYY-MM-DD`), the daily
// dump Atlas users read to see the network's history (RIPE publishes the same on its FTP archive). The hourly cron
// writes the day's snapshot on its first run of the day (and tries again each hour until one is there), from the
// registry, page by page, gzipped; the API streams it back inflated, without parsing it.
import { REGISTRY_NAME } from "../durable-objects/env.ts";
import { probeArchiveKey } from "../storage/layout.ts";
import { ApiError, parameterError } from "./api/errors.ts";
import { onlyKnownParams } from "./api/filters.ts";
import { probeObject } from "./api/probes.ts";

/** Probes read from the registry per call while a snapshot is made. */
const PAGE = 500;

/** Writes the snapshot of `date` (UTC, YYYY-MM-DD) unless one is there; whether it wrote one. */
export async function snapshotProbes(env: Env, date: string): Promise<boolean> {
  const key = probeArchiveKey(date);
  if (await env.RESULTS.head(key)) return false;
  const registry = env.REGISTRY.getByName(REGISTRY_NAME);
  const results: Record<string, unknown>[] = [];
  for (let offset = 0; ; offset += PAGE) {
    const { count, probes } = await registry.listProbes({ sort: { field: "id", desc: false } }, offset, PAGE);
    results.push(...probes.map(probeObject));
    if (offset + PAGE >= count) break;
  }
  const body = new Blob([JSON.stringify({ date, count: results.length, next: null, previous: null, results })]).stream().pipeThrough(new CompressionStream("gzip"));
  // R2 needs a known length: the compressed bytes are collected first (a day's snapshot is a few MB at most).
  await env.RESULTS.put(key, await new Response(body).arrayBuffer(), { httpMetadata: { contentType: "application/json", contentEncoding: "gzip" } });
  return true;
}

/** GET /api/v2/probes/archive/?date=YYYY-MM-DD (today's by default): the day's snapshot, as stored. */
export async function probeArchive(request: Request, env: Env): Promise<Response> {
  const url = new URL(request.url);
  onlyKnownParams(url, ["date"]);
  const today = new Date().toISOString().slice(0, 10);
  const date = url.searchParams.get("date") || today;
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date) || Number.isNaN(Date.parse(`${date}T00:00:00Z`)) || new Date(`${date}T00:00:00Z`).toISOString().slice(0, 10) !== date) {
    throw parameterError("date", "Enter a day as YYYY-MM-DD.");
  }
  const object = await env.RESULTS.get(probeArchiveKey(date));
  if (!object) {
    throw new ApiError(404, date > today ? `${date} has not come yet.` : `No probe archive for ${date}: it is written on the first hour of each day since the archive began.`);
  }
  // Stored gzipped, inflated as it streams out (native code, no parsing); Cloudflare compresses it again for clients
  // that accept it.
  return new Response(object.body.pipeThrough(new DecompressionStream("gzip")), { headers: { "Content-Type": "application/json", ETag: object.httpEtag } });
}
