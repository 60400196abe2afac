// Signed agent releases (/admin/releases, /admin/rollouts; probes download from /probe/v1/releases/:version).
//
// The edge stores what the operator uploads and holds no release key: every probe checks a release against the key
// it pins (protocol/release.ts) before it runs it, so neither a compromised edge nor a stolen operator token can
// make a probe run an unsigned or altered bundle. A rollout offers a release to a share of the probes and halts
// itself when probes refuse or roll it back (durable-objects/brain.ts).
import type { IRequest } from "itty-router";
import { z } from "zod";
import { BRAIN_NAME } from "../../durable-objects/env.ts";
import { RELEASE_VERSION, type ReleaseManifest } from "../../protocol/release.ts";
import { releaseKey } from "../../storage/layout.ts";
import { ApiError, readJson, validationError } from "./errors.ts";

/** Largest agent bundle the edge takes (the agent is ~190 KB). */
const MAX_RELEASE_BYTES = 32 * 1024 * 1024;

function version(request: IRequest): string {
  const v = request.params.version ?? "";
  if (!RELEASE_VERSION.test(v)) throw new ApiError(404, `No release "${v}": versions look like 1.2.3.`);
  return v;
}

/**
 * PUT /admin/releases/:version — the bundle as the body (application/octet-stream), its manifest's fields in
 * headers: Vantage-Release-Sha256, Vantage-Release-Size, Vantage-Release-Signature (`vantage publish-release`).
 */
export async function uploadRelease(request: IRequest, env: Env): Promise<Response> {
  const v = version(request);
  const header = (name: string, pattern: RegExp, what: string) => {
    const value = request.headers.get(`Vantage-Release-${name}`) ?? "";
    if (!pattern.test(value)) throw new ApiError(400, `Vantage-Release-${name} must be ${what}.`);
    return value;
  };
  const sha256 = header("Sha256", /^[0-9a-f]{64}$/, "the bundle's SHA-256 in hex");
  const size = Number(header("Size", /^\d{1,9}$/, "the bundle's size in bytes"));
  const signature = header("Signature", /^[A-Za-z0-9_-]{86}$/, "the release key's Ed25519 signature in base64url");
  if (size < 1 || size > MAX_RELEASE_BYTES) throw new ApiError(413, `A release is 1 to ${MAX_RELEASE_BYTES} bytes (the manifest says ${size}).`);
  const body = new Uint8Array(await request.arrayBuffer());
  if (body.byteLength > MAX_RELEASE_BYTES) throw new ApiError(413, `A release is at most ${MAX_RELEASE_BYTES} bytes.`);
  if (await env.RESULTS.head(releaseKey(v))) {
    throw new ApiError(409, `Release ${v} exists already; a published version is never replaced (publish a new version).`);
  }
  await env.RESULTS.put(releaseKey(v), body, {
    httpMetadata: { contentType: "text/javascript" }, customMetadata: { sha256, size: String(size), signature },
  });
  return Response.json({ version: v, sha256, size, signature, bytes: body.byteLength }, { status: 201 });
}

async function manifestOf(env: Env, v: string): Promise<ReleaseManifest | null> {
  const m = (await env.RESULTS.head(releaseKey(v)))?.customMetadata;
  return m ? { version: v, sha256: m.sha256 ?? "", size: Number(m.size), signature: m.signature ?? "" } : null;
}

/** GET /probe/v1/releases/:version — the bundle, for probes (which verify it themselves). */
export async function downloadRelease(request: IRequest, env: Env): Promise<Response> {
  const v = version(request);
  const object = await env.RESULTS.get(releaseKey(v));
  if (!object) throw new ApiError(404, `No release ${v}.`);
  return new Response(object.body, { headers: { "Content-Type": "text/javascript", "Content-Length": String(object.size), ETag: object.httpEtag } });
}

const RolloutRequest = z.object({
  version: z.string().regex(RELEASE_VERSION, "version must look like 1.2.3."),
  percent: z.number().int().min(1, "percent must be 1 to 100.").max(100, "percent must be 1 to 100."),
  /** Refusals and rollbacks after which the rollout halts itself. */
  max_failures: z.number().int().min(1).max(10_000).default(1),
});

/** POST /admin/rollouts {version, percent, max_failures?} — offer a published release to `percent` % of probes. */
export async function startRollout(request: IRequest, env: Env): Promise<Response> {
  const parsed = RolloutRequest.safeParse(await readJson(request));
  if (!parsed.success) throw validationError(parsed.error);
  const manifest = await manifestOf(env, parsed.data.version);
  if (!manifest) throw new ApiError(404, `Release ${parsed.data.version} is not published: PUT it to /admin/releases/${parsed.data.version} first.`);
  const rollout = await env.BRAIN.getByName(BRAIN_NAME).startRollout(manifest, parsed.data.percent, parsed.data.max_failures);
  return Response.json(rollout, { status: 201 });
}

/** POST /admin/rollouts/halt — stop offering the release in progress. */
export async function haltRollout(request: IRequest, env: Env): Promise<Response> {
  const rollout = await env.BRAIN.getByName(BRAIN_NAME).haltRollout("halted by the operator");
  if (!rollout) throw new ApiError(404, "No rollout has been started.");
  return Response.json(rollout);
}

/** GET /admin/rollouts — the latest rollout and what its probes reported. */
export async function getRollout(request: IRequest, env: Env): Promise<Response> {
  const rollout = await env.BRAIN.getByName(BRAIN_NAME).currentRollout();
  if (!rollout) throw new ApiError(404, "No rollout has been started.");
  return Response.json(rollout);
}
