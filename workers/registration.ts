// Probe registration: challenge → signed proof → controller shard chosen by proximity and load → a short-lived
// EdDSA assignment token for that shard plus its WebSocket URL. Stateless: the registry keeps the nonces.
import type { IRequest } from "itty-router";
import { REGISTRY_NAME } from "../durable-objects/env.ts";
import { RECEIVED_HEADER } from "../durable-objects/probe-connect.ts";
import { controllerStub, shardByName, shardsByDistance } from "../durable-objects/shards.ts";
import type { Works } from "../durable-objects/system-tags.ts";
import { issueAssignment, audienceFor, verifyAssignment } from "../durable-objects/tokens.ts";
import { ChallengeRequest, RegisterRequest, type RegisterResponse } from "../protocol/index.ts";
import { ApiError, readJson, validationError } from "./api/errors.ts";

export async function challenge(request: IRequest, env: Env): Promise<Response> {
  const parsed = ChallengeRequest.safeParse(await readJson(request, 4096));
  if (!parsed.success) throw validationError(parsed.error);
  const out = await env.REGISTRY.getByName(REGISTRY_NAME).challenge(parsed.data.probe_id);
  if (!out.ok) throw new ApiError(403, out.reason);
  return Response.json({ probe_id: parsed.data.probe_id, nonce: out.nonce, expires: out.expires });
}

export async function register(request: IRequest, env: Env): Promise<Response> {
  const parsed = RegisterRequest.safeParse(await readJson(request, 8192));
  if (!parsed.success) throw validationError(parsed.error);
  const registry = env.REGISTRY.getByName(REGISTRY_NAME);
  const out = await registry.register(parsed.data.probe_id, parsed.data.proof, request.headers.get("CF-Connecting-IP"));
  if (!out.ok) throw new ApiError(403, out.reason);
  const p = out.probe;
  // Where is the probe? The registry's record first, else what the anycast edge saw; either may be missing.
  const cf = (request as unknown as { cf?: Record<string, unknown> }).cf ?? {};
  const location = p.latitude !== null || p.country_code
    ? { latitude: p.latitude, longitude: p.longitude, country: p.country_code }
    : { latitude: cf.latitude as string | undefined, longitude: cf.longitude as string | undefined,
        country: cf.country as string | undefined, continent: cf.continent as string | undefined };
  const loads = await registry.shardLoads();
  const shard = shardsByDistance(location).find((s) => !loads[s.name]?.full);
  if (!shard) throw new ApiError(503, "Every controller shard is full; try again later.", [], { "Retry-After": "60" });
  const { token, expires } = await issueAssignment(env.EDGE_PRIVATE_JWK, {
    sub: String(p.id), aud: audienceFor(shard.name),
    country_code: p.country_code ?? (cf.country as string | undefined) ?? null,
    asn_v4: p.asn_v4 ?? (typeof cf.asn === "number" ? cf.asn : null),
    prefix_v4: p.prefix_v4,
    tags: JSON.parse(p.tags) as string[],
    system_tags: JSON.parse(p.system_tags) as string[],
    works: JSON.parse(p.works) as Works,
    cell: p.latitude !== null && p.longitude !== null ? `${p.latitude.toFixed(1)},${p.longitude.toFixed(1)}` : null,
    // A probe that lands on another shard than last time brings its assignments and marks along (Controller.adopt).
    prev_shard: p.shard && p.shard !== shard.name ? p.shard : null,
  });
  const url = new URL(request.url);
  const ws = `${url.protocol === "https:" ? "wss" : "ws"}://${url.host}/probe/v1/controllers/${shard.name}`;
  const body: RegisterResponse = { probe_id: p.id, shard: shard.name, token, websocket_url: ws, expires };
  return Response.json(body);
}

/** The probe's WebSocket to its controller. The token is checked here too, before any DO is touched. */
export async function connect(request: IRequest, env: Env): Promise<Response> {
  const shard = shardByName(request.params.shard ?? "");
  if (!shard) throw new ApiError(404, `No controller shard "${request.params.shard}".`);
  if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") throw new ApiError(426, "Expected a WebSocket upgrade.");
  const token = request.headers.get("Authorization")?.match(/^Bearer\s+(\S+)$/)?.[1];
  if (!token) throw new ApiError(401, "Missing assignment token (Authorization: Bearer …).");
  try {
    await verifyAssignment(env.EDGE_PUBLIC_JWK, token, shard.name);
  } catch (e) {
    throw new ApiError(403, (e as Error).message);
  }
  // When the edge received it, for the controller to turn away, unworked, a connection that queued too long for it.
  const headers = new Headers(request.headers);
  headers.set(RECEIVED_HEADER, String(Date.now()));
  return controllerStub(env.CONTROLLER, shard).fetch(new Request(request, { headers }));
}

export function edgeKey(_request: IRequest, env: Env): Response {
  return Response.json(JSON.parse(env.EDGE_PUBLIC_JWK));
}
