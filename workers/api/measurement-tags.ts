// Atlas's measurement tagging (cousteau's MeasurementTagger): an account's own tags on measurements it can see, the
// results of all it tagged so, and stopping its own tagged measurements together (durable-objects/measurement-tags.ts).
import type { IRequest } from "itty-router";
import { BRAIN_NAME } from "../../durable-objects/env.ts";
import { MAX_TAGGED, TAG } from "../../durable-objects/measurement-tags.ts";
import { readResults } from "../../durable-objects/results.ts";
import type { Result } from "../../protocol/index.ts";
import { apiKey, requireKey } from "./auth.ts";
import { ApiError, fieldError, intParam, readJson } from "./errors.ts";
import { measurementId } from "./measurements.ts";
import { format, respond } from "./results.ts";

function tagOf(value: unknown, where: "body" | "path"): string {
  if (typeof value !== "string" || !TAG.test(value)) {
    const detail = "A tag is 1–64 lower-case letters, digits, - or _.";
    throw where === "body" ? fieldError("/tag", detail) : new ApiError(404, `No such tag: ${detail}`);
  }
  return value;
}

/** POST /api/v2/measurements/{id}/tags/ `{"tag": "…"}`. */
export async function addMeasurementTag(request: IRequest, env: Env): Promise<Response> {
  const { account } = await requireKey(request, env, "create_measurements");
  const id = measurementId(request);
  const body = await readJson(request);
  const tag = tagOf(typeof body === "object" && body !== null ? (body as { tag?: unknown }).tag : undefined, "body");
  const outcome = await env.BRAIN.getByName(BRAIN_NAME).tag(id, account, tag);
  if (outcome === "not-found") throw new ApiError(404, `No measurement with id ${id}.`);
  if (outcome === "full") throw fieldError("/tag", `At most ${MAX_TAGGED} measurements carry one tag of yours.`);
  return Response.json({ measurement: id, tag }, { status: 201 });
}

/** DELETE /api/v2/measurements/{id}/tags/{tag}/. */
export async function removeMeasurementTag(request: IRequest, env: Env): Promise<Response> {
  const { account } = await requireKey(request, env, "create_measurements");
  const id = measurementId(request);
  const tag = tagOf(request.params.tag, "path");
  if (!(await env.BRAIN.getByName(BRAIN_NAME).untag(id, account, tag))) throw new ApiError(404, `Measurement ${id} does not carry your tag "${tag}".`);
  return new Response(null, { status: 204 });
}

/** GET /api/v2/measurements/tags/{tag}/results/: every result of the measurements the key's account tagged so. */
export async function taggedResults(request: IRequest, env: Env): Promise<Response> {
  const caller = await apiKey(request, env);
  if (!caller) throw new ApiError(403, "Authentication credentials were not provided: tags are an account's own.");
  const { account } = caller;
  const url = new URL(request.url);
  const tag = tagOf(request.params.tag, "path");
  const start = intParam(url, "start") ?? null, stop = intParam(url, "stop") ?? null;
  const ids = await env.BRAIN.getByName(BRAIN_NAME).tagged(account, tag);
  const results: Result[] = [];
  for (const id of ids) results.push(...((await readResults(env, id, start, stop)) ?? []));
  results.sort((a, b) => a.timestamp - b.timestamp || a.msm_id - b.msm_id || a.prb_id - b.prb_id);
  return respond(results, format(url));
}

/** POST /api/v2/measurements/my-tags/{tag}/stop/: stops the key's own measurements it tagged so. */
export async function stopTagged(request: IRequest, env: Env): Promise<Response> {
  const { account } = await requireKey(request, env, "stop_measurements");
  const tag = tagOf(request.params.tag, "path");
  const stopped = await env.BRAIN.getByName(BRAIN_NAME).stopTagged(account, tag);
  return Response.json({ stopped });
}
