// Atlas's measurement groups: the measurements one create request made together (several definitions) share their
// first one's id as `group_id`; the group is read (`GET /api/v2/measurements/groups/{id}/`) and stopped as one
// (`DELETE`, by its owner).
import type { IRequest } from "itty-router";
import { BRAIN_NAME } from "../../durable-objects/env.ts";
import { requireKey } from "./auth.ts";
import { ApiError } from "./errors.ts";
import { requireVisible } from "./measurements.ts";

function groupId(request: IRequest): number {
  const id = Number(request.params.group);
  if (!Number.isSafeInteger(id) || id <= 0) throw new ApiError(404, `No measurement group with id "${request.params.group}".`);
  return id;
}

/** GET /api/v2/measurements/groups/{id}/: Atlas's `{id, group_members: [{id, type, measurement}], total_members, is_wifi_group}`. */
export async function getGroup(request: IRequest, env: Env): Promise<Response> {
  const id = groupId(request);
  const members = await env.BRAIN.getByName(BRAIN_NAME).group(id);
  if (members.length === 0) throw new ApiError(404, `No measurement group with id ${id} (a group is the measurements one request created together).`);
  // One request made them all, so they are all public or all private alike: the leader decides who may look.
  await requireVisible(request, env, members[0]!);
  const origin = new URL(request.url).origin;
  return Response.json({
    id, is_wifi_group: false, total_members: members.length,
    group_members: members.map((m) => ({ id: m.id, type: m.type, measurement: `${origin}/api/v2/measurements/${m.id}/` })),
  });
}

/** DELETE /api/v2/measurements/groups/{id}/: stops every member still running; 204. */
export async function stopGroup(request: IRequest, env: Env): Promise<Response> {
  const { account } = await requireKey(request, env, "stop_measurements");
  const id = groupId(request);
  const outcome = await env.BRAIN.getByName(BRAIN_NAME).stopGroup(id, account);
  if (outcome === "not-found") throw new ApiError(404, `No measurement group with id ${id}.`);
  if (outcome === "not-owner") throw new ApiError(403, `Measurement group ${id} belongs to another account.`);
  return new Response(null, { status: 204 });
}
