// /api/v2/probes/: the Atlas probe object, with Atlas's filters and pagination.
import type { IRequest } from "itty-router";
import { REGISTRY_NAME } from "../../durable-objects/env.ts";
import { PROBE_STATUS, type ProbeRecord } from "../../durable-objects/registry.ts";
import { SYSTEM_TAG_NAMES } from "../../durable-objects/system-tags.ts";
import { FIRMWARE_VERSION } from "../../protocol/index.ts";
import { ApiError, intListParam, intParam, parameterError } from "./errors.ts";
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

export async function listProbes(request: IRequest, env: Env): Promise<Response> {
  const url = new URL(request.url);
  const ids = intListParam(url, "id__in") ?? (url.searchParams.has("id") ? [intParam(url, "id")!] : undefined);
  const cc = url.searchParams.get("country_code") ?? undefined;
  if (cc !== undefined && !/^[A-Za-z]{2}$/.test(cc)) throw parameterError("country_code", "Enter a two-letter country code.");
  const asn = intParam(url, "asn_v4") ?? intParam(url, "asn");
  const status = intParam(url, "status", 0, 4);
  // Atlas: `tags=a,b` — probes with every one of them (user or system tags).
  const tags = url.searchParams.get("tags")?.split(",").map((t) => t.trim()).filter(Boolean);
  if (tags?.some((t) => !/^[a-z0-9_-]{1,64}$/i.test(t))) throw parameterError("tags", "Enter tag slugs (letters, digits, - and _), comma-separated.");
  const { offset, limit } = pageOf(url);
  const { count, probes } = await env.REGISTRY.getByName(REGISTRY_NAME).listProbes(
    { ids, country_code: cc, asn_v4: asn, status, tags }, offset, limit);
  return Response.json(page(url, count, probes.map(probeObject)));
}

export async function getProbe(request: IRequest, env: Env): Promise<Response> {
  const id = Number(request.params.id);
  if (!Number.isSafeInteger(id) || id <= 0) throw new ApiError(404, `No probe with id "${request.params.id}".`);
  const p = await env.REGISTRY.getByName(REGISTRY_NAME).probe(id);
  if (!p) throw new ApiError(404, `No probe with id ${id}.`);
  return Response.json(probeObject(p));
}
