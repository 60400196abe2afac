// /api/v2/alerts/: events the brain raises for operators and users, newest first (so far: crowd signals — many
// accounts measuring one target at once, "the crowd says something is going on with X").
import type { IRequest } from "itty-router";
import { BRAIN_NAME } from "../../durable-objects/env.ts";
import { page, pageOf } from "./pagination.ts";

export async function listAlerts(request: IRequest, env: Env): Promise<Response> {
  const url = new URL(request.url);
  const { offset, limit } = pageOf(url);
  const { count, alerts } = await env.BRAIN.getByName(BRAIN_NAME).alerts(offset, limit);
  return Response.json(page(url, count, alerts.map((a) => ({
    ...a, measurements: a.measurements.map((id) => `${url.origin}/api/v2/measurements/${id}/`),
  }))));
}
