// /api/v2/probes/: the Atlas probe object, with Atlas's filters and pagination.
import type { IRequest } from "itty-router";
import { REGISTRY_NAME } from "../../durable-objects/env.ts";
import { PROBE_STATUS, type ProbeFilter, type ProbeRecord } from "../../durable-objects/registry-schema.ts";
import { SYSTEM_TAG_NAMES } from "../../durable-objects/system-tags.ts";
import { FIRMWARE_VERSION, isCidr } from "../../protocol/index.ts";
import { apiKey } from "./auth.ts";
import { ApiError, intListParam, intParam, parameterError } from "./errors.ts";
import { boolParam, comparisonParamNames, listParam, locationBounds, onlyKnownParams, selectFields, sortParam } from "./filters.ts";
import { page, pageOf } from "./pagination.ts";


export function probeObject(p: ProbeRecord): Record<string, unknown> {
  // Atlas publishes probe locations rounded (obfuscated); so do we, to about 1 km.
  const round = (x: number) => Math.round(x * 100) / 100;
  return {
    id: p.id,
    type: "Probe",
    address_v4: p.address_v4,
    address_v6: null,
    prefix_v4: p.prefix_v4,
    prefix_v6: null,
    asn_v4: p.asn_v4,
    asn_v6: null,
    country_code: p.country_code,
    description: p.description,
    firmware_version: FIRMWARE_VERSION,
    first_connected: p.first_connected,
    last_connected: p.last_connected,
    geometry: p.latitude !== null && p.longitude !== null ? { type: "Point", coordinates: [round(p.longitude), round(p.latitude)] } : null,
    is_anchor: false,
    is_public: true,
    status: { id: p.status_id, name: PROBE_STATUS[p.status_id], since: new Date(p.status_since * 1000).toISOString().replace(".000Z", "Z") },
    status_since: p.status_since,
    // The operator's tags, then Atlas's system tags with Atlas's names.
    tags: [...(JSON.parse(p.tags) as string[]).map((t) => ({ name: t, slug: t })),
      ...(JSON.parse(p.system_tags) as string[]).map((t) => ({ name: SYSTEM_TAG_NAMES[t] ?? t, slug: t }))],
    total_uptime: p.total_uptime + (p.status_id === 1 ? Math.max(0, Math.floor(Date.now() / 1000) - p.status_since) : 0),
  };
}

const PROBE_FILTERS = ["id", "id__in", "country_code", "asn", "asn_v4", "asn_v6", "prefix", "prefix_v4", "prefix_v6", "status", "tags", "is_anchor",
  "is_public", "radius", ...comparisonParamNames(["latitude", "longitude"])];

/** The probe filters of a probe list request (Atlas's), as the registry takes them; null when nothing can match. */
async function probeFilterOf(request: IRequest, env: Env, url: URL): Promise<ProbeFilter | null> {
  onlyKnownParams(url, PROBE_FILTERS);
  // /probes/my/: the probes the key's account hosts.
  let owner: string | undefined;
  if (url.pathname.endsWith("/my")) {
    const key = await apiKey(request, env);
    if (!key) throw new ApiError(403, "Authentication credentials were not provided.");
    owner = key.account;
  }
  const ids = intListParam(url, "id__in") ?? intListParam(url, "id");
  const cc = url.searchParams.get("country_code") ?? undefined;
  if (cc !== undefined && !/^[A-Za-z]{2}$/.test(cc)) throw parameterError("country_code", "Enter a two-letter country code.");
  const asn = intParam(url, "asn_v4") ?? intParam(url, "asn");
  const status = intParam(url, "status", 0, 4);
  // Atlas: `tags=a,b` — probes with every one of them (user or system tags).
  const tags = listParam(url, "tags");
  if (tags?.some((t) => !/^[a-z0-9_-]{1,64}$/i.test(t))) throw parameterError("tags", "Enter tag slugs (letters, digits, - and _), comma-separated.");
  // `prefix` is either family's: an IPv6 one matches none here, as `prefix_v6` does (no IPv6 prefixes are recorded yet).
  const prefixParam = url.searchParams.get("prefix_v4") ? "prefix_v4" : "prefix";
  const prefix = url.searchParams.get(prefixParam) || undefined;
  if (prefix !== undefined && !isCidr(prefix)) throw parameterError(prefixParam, "Enter a prefix (address/length).");
  const v6Prefix = !!url.searchParams.get("prefix_v6") || (prefix !== undefined && prefix.includes(":"));
  // What Vantage's probes never have (an IPv6 ASN or prefix recorded, anchor status) matches none; every probe is public.
  const none = intParam(url, "asn_v6") !== undefined || v6Prefix || boolParam(url, "is_anchor") === true || boolParam(url, "is_public") === false;
  const sort = sortParam(url, ["id", "first_connected", "last_connected", "status_since"], "id");
  return none ? null : { ids, country_code: cc, asn_v4: asn, status, tags, prefix_v4: prefix, near: radiusParam(url), sort, owner, coordinates: locationBounds(url) };
}

export async function listProbes(request: IRequest, env: Env): Promise<Response> {
  const url = new URL(request.url);
  const filter = await probeFilterOf(request, env, url);
  const { offset, limit } = pageOf(url);
  const { count, probes } = filter === null ? { count: 0, probes: [] } : await env.REGISTRY.getByName(REGISTRY_NAME).listProbes(filter, offset, limit);
  return Response.json(page(url, count, selectFields(url, probes.map(probeObject))));
}

/** How long an answer of /probes/points/ is served from the edge's cache (the map's live changes come from the stream). */
export const POINTS_CACHE_S = 10;

/**
 * GET /api/v2/probes/points/ (Vantage; the console's map): every probe the list's filters match, in one answer, as
 * rows of `[id, longitude, latitude, status id, asn_v4, country_code]`. Fifteen thousand probes as 500-probe pages
 * of whole objects took 31 requests and missed the map's one-second first render (bench:web); this is one request.
 * Public and a scan of every probe, so an answer is kept in the edge's cache for POINTS_CACHE_S: a crowd opening the
 * map (or a flood asking for it) costs the registry one query per location and filter every ten seconds.
 */
export async function probePoints(request: IRequest, env: Env, ctx: ExecutionContext): Promise<Response> {
  const url = new URL(request.url);
  const filter = await probeFilterOf(request, env, url);  // a refused request is answered (and never cached) first
  const key = new Request(url.toString());
  const cached = await caches.default.match(key);
  if (cached) return cached;
  // Places to four decimals (11 m): as much as a map can show, and half the bytes of 15,000 points.
  const round = (v: number | null) => (v === null ? null : Math.round(v * 1e4) / 1e4);
  const points = filter === null ? [] : (await env.REGISTRY.getByName(REGISTRY_NAME).probePoints(filter))
    .map(([id, lon, lat, status, asn, cc]) => [id, round(lon as number | null), round(lat as number | null), status, asn, cc]);
  const res = Response.json({ count: points.length, fields: ["id", "longitude", "latitude", "status", "asn_v4", "country_code"], points },
    { headers: { "Cache-Control": `public, max-age=${POINTS_CACHE_S}` } });
  ctx.waitUntil(caches.default.put(key, res.clone()));
  return res;
}

/** GET /api/v2/probes/tags/: every tag probes carry, Atlas's system tags with Atlas's names, and how many carry each. */
export async function listProbeTags(request: IRequest, env: Env): Promise<Response> {
  const url = new URL(request.url);
  onlyKnownParams(url, []);
  const tags = (await env.REGISTRY.getByName(REGISTRY_NAME).probeTags())
    .map((t) => ({ name: t.system ? (SYSTEM_TAG_NAMES[t.slug] ?? t.slug) : t.slug, slug: t.slug, type: t.system ? "system" : "user", probes: t.probes }));
  const { offset, limit } = pageOf(url);
  return Response.json(page(url, tags.length, tags.slice(offset, offset + limit)));
}

/** Atlas's `radius=lat,lng:km` (what `ripe-atlas probe-search --center … --radius …` sends). */
function radiusParam(url: URL): { latitude: number; longitude: number; radius_km: number } | undefined {
  const raw = url.searchParams.get("radius");
  if (!raw) return undefined;
  const m = /^\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*:\s*([\d.]+)\s*$/.exec(raw);
  const [latitude, longitude, radius_km] = m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [NaN, NaN, NaN];
  if (!(Math.abs(latitude) <= 90 && Math.abs(longitude) <= 180 && radius_km >= 0 && radius_km <= 20_038)) {
    throw parameterError("radius", "Enter latitude,longitude:km (e.g. 52.37,4.9:50), on the globe and at most 20,038 km.");
  }
  return { latitude, longitude, radius_km };
}

export async function getProbe(request: IRequest, env: Env): Promise<Response> {
  const id = Number(request.params.id);
  if (!Number.isSafeInteger(id) || id <= 0) throw new ApiError(404, `No probe with id "${request.params.id}".`);
  const p = await env.REGISTRY.getByName(REGISTRY_NAME).probe(id);
  if (!p) throw new ApiError(404, `No probe with id ${id}.`);
  return Response.json(probeObject(p));
}
