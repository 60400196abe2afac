// /api/v2/bundles/: hourly archive bundles of results (workers/bundles.ts). Listing and downloading cost no
// credits; `vantage bundles pull` wraps these, `vantage bundles build` the operator's /admin/bundles/build.
import type { IRequest } from "itty-router";
import { z } from "zod";
import { BUNDLE_TYPES, type BundleManifest, datesBetween, parseBundleName, parseHour } from "../../storage/bundles.ts";
import { buildBundle, getManifest, LINK_TTL_S, linkValid, listBundles, presignedUrl, signedLink } from "../bundles.ts";
import { ApiError, parameterError, readJson, validationError } from "./errors.ts";
import { page, pageOf } from "./pagination.ts";

/** Longest date range one listing covers. */
const MAX_DAYS = 31;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

function bundleObject(origin: string, m: BundleManifest) {
  return { ...m, url: `${origin}/api/v2/bundles/${m.name}/`, download: `${origin}/api/v2/bundles/${m.name}/download` };
}

/** GET /api/v2/bundles/?type=ping&from=YYYY-MM-DD&to=YYYY-MM-DD (default: today), oldest first, paginated. */
export async function listBundlesRoute(request: IRequest, env: Env): Promise<Response> {
  const url = new URL(request.url);
  const type = url.searchParams.get("type");
  if (type !== null && !(BUNDLE_TYPES as readonly string[]).includes(type)) throw parameterError("type", `Enter one of ${BUNDLE_TYPES.join(", ")}.`);
  const today = new Date().toISOString().slice(0, 10);
  const from = url.searchParams.get("from") ?? url.searchParams.get("to") ?? today;
  const to = url.searchParams.get("to") ?? from;
  for (const [name, v] of [["from", from], ["to", to]] as const) if (!DATE.test(v) || Number.isNaN(Date.parse(v))) throw parameterError(name, "Enter a date as YYYY-MM-DD.");
  const dates = datesBetween(from, to);
  if (dates.length === 0) throw parameterError("to", "to is before from.");
  if (dates.length > MAX_DAYS) throw parameterError("to", `A listing covers at most ${MAX_DAYS} days.`);
  const all = await listBundles(env, type ? [type] : BUNDLE_TYPES, dates);
  const { offset, limit } = pageOf(url);
  return Response.json(page(url, all.length, all.slice(offset, offset + limit).map((m) => bundleObject(url.origin, m))));
}

async function manifestOf(request: IRequest, env: Env): Promise<BundleManifest> {
  const b = parseBundleName(request.params.name ?? "");
  const m = b ? await getManifest(env, b.type, b.date, b.hour) : null;
  if (!m) throw new ApiError(404, `No bundle "${request.params.name}": names look like ping-2026-11-26T0600.`);
  return m;
}

/** GET /api/v2/bundles/{name}/ — its manifest. */
export async function getBundle(request: IRequest, env: Env): Promise<Response> {
  return Response.json(bundleObject(new URL(request.url).origin, await manifestOf(request, env)));
}

/**
 * GET /api/v2/bundles/{name}/download — 302 to a presigned URL on R2's S3 endpoint when the edge has S3
 * credentials, else (or with `?via=worker`) to a link through the Worker signed for LINK_TTL_S.
 */
export async function downloadBundle(request: IRequest, env: Env): Promise<Response> {
  const url = new URL(request.url);
  const m = await manifestOf(request, env);
  const via = url.searchParams.get("via");
  if (via !== null && via !== "worker" && via !== "s3") throw parameterError("via", 'Enter "worker" or "s3".');
  const s3 = via === "worker" ? null : await presignedUrl(env, m.key, `${m.name}.jsonl.gz`);
  if (via === "s3" && !s3) throw new ApiError(404, "This edge has no S3 credentials: download with ?via=worker.");
  const location = s3 ?? await signedLink(env, url.origin, m.name, Math.floor(Date.now() / 1000) + LINK_TTL_S);
  return new Response(null, { status: 302, headers: { Location: location, "Cache-Control": "no-store" } });
}

/** GET /api/v2/bundles/{name}/data?expires&signature — the bytes, for a valid link; honours Range (resumed pulls). */
export async function bundleData(request: IRequest, env: Env): Promise<Response> {
  const url = new URL(request.url);
  const name = request.params.name ?? "";
  const expires = Number(url.searchParams.get("expires"));
  const signature = url.searchParams.get("signature") ?? "";
  if (!Number.isSafeInteger(expires) || !(await linkValid(env, name, expires, signature))) throw new ApiError(403, "This download link is not valid: ask /download for a new one.");
  if (expires < Date.now() / 1000) throw new ApiError(403, "This download link has expired: ask /download for a new one.");
  const m = await manifestOf(request, env);
  const range = /^bytes=(\d+)-$/.exec(request.headers.get("Range") ?? "");
  const offset = range ? Number(range[1]) : 0;
  if (offset > 0 && offset >= m.bytes) return new Response(null, { status: 416, headers: { "Content-Range": `bytes */${m.bytes}` } });
  const object = await env.RESULTS.get(m.key, offset > 0 ? { range: { offset } } : {});
  if (!object) throw new ApiError(404, `Bundle ${m.name} is listed but its object is missing; rebuild it.`);
  const headers: Record<string, string> = {
    "Content-Type": "application/gzip", "Content-Length": String(m.bytes - offset), "Accept-Ranges": "bytes",
    "Content-Disposition": `attachment; filename="${m.name}.jsonl.gz"`, ETag: `"${m.sha256}"`,
  };
  if (offset > 0) headers["Content-Range"] = `bytes ${offset}-${m.bytes - 1}/${m.bytes}`;
  return new Response(object.body, { status: offset > 0 ? 206 : 200, headers });
}

const Build = z.object({
  type: z.enum(BUNDLE_TYPES, { error: `type must be one of ${BUNDLE_TYPES.join(", ")}.` }),
  hour: z.string().refine((h) => parseHour(h) !== null, "hour must be an hour as YYYY-MM-DDTHH (UTC)."),
});

/** POST /admin/bundles/build {type, hour} — builds one hour's bundle now (what the hourly job does). */
export async function buildBundleRoute(request: IRequest, env: Env): Promise<Response> {
  const parsed = Build.safeParse(await readJson(request));
  if (!parsed.success) throw validationError(parsed.error);
  const h = parseHour(parsed.data.hour)!;
  const manifest = await buildBundle(env, parsed.data.type, h.date, h.hour);
  if (!manifest) return Response.json({ built: false, detail: `No public ${parsed.data.type} results are stored for ${parsed.data.hour}.` });
  return Response.json({ built: true, ...bundleObject(new URL(request.url).origin, manifest) }, { status: 201 });
}
