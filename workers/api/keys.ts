// /api/v2/keys/: an account's API keys — list, create (the key is shown once; only its SHA-256 is kept), enable or
// disable. Needs a key with the "manage_keys" grant. A key's grants limit what it may do; its validity window when.
import type { IRequest } from "itty-router";
import { z } from "zod";
import { REGISTRY_NAME } from "../../durable-objects/env.ts";
import { GRANTS, type KeyRecord } from "../../durable-objects/registry.ts";
import { sha256Hex } from "../../protocol/index.ts";
import { requireKey } from "./auth.ts";
import { ApiError, fieldError, readJson, validationError } from "./errors.ts";

const unix = z.union([z.number().int().nonnegative(), z.iso.datetime({ offset: true }).transform((s) => Math.floor(Date.parse(s) / 1000))]);

const permission = z.enum(GRANTS, `grants are: ${GRANTS.join(", ")}.`);
const NewKey = z.object({
  label: z.string().min(1).max(128),
  /** Atlas's shape, `[{"permission": "create_measurements"}]` (what this API answers with), or plain names. */
  grants: z.array(z.union([permission, z.object({ permission }).strict().transform((g) => g.permission)], { error: `each grant is {"permission": one of ${GRANTS.join(", ")}}.` })).min(1).optional(),
  valid_from: unix.nullable().optional(),
  valid_to: unix.nullable().optional(),
}).refine((k) => k.valid_from == null || k.valid_to == null || k.valid_to > k.valid_from, { path: ["valid_to"], message: "valid_to must be later than valid_from." });

function keyObject(k: KeyRecord, origin: string): Record<string, unknown> {
  return {
    uuid: k.uuid, label: k.label, enabled: k.enabled, grants: k.grants.map((permission) => ({ permission })),
    valid_from: k.valid_from, valid_to: k.valid_to, created_at: Math.floor(k.created / 1000), url: `${origin}/api/v2/keys/${k.uuid}/`,
  };
}

export async function listKeys(request: IRequest, env: Env): Promise<Response> {
  const { account } = await requireKey(request, env, "manage_keys");
  const keys = await env.REGISTRY.getByName(REGISTRY_NAME).keys(account);
  const origin = new URL(request.url).origin;
  return Response.json({ count: keys.length, next: null, previous: null, results: keys.map((k) => keyObject(k, origin)) });
}

/**
 * A key makes keys no stronger than itself: grants it holds, valid no earlier and no later than it is (a key with
 * an end makes keys that end by then; without grants or an end given, the new key takes the caller's).
 */
export async function createApiKey(request: IRequest, env: Env): Promise<Response> {
  const caller = await requireKey(request, env, "manage_keys");
  const parsed = NewKey.safeParse(await readJson(request));
  if (!parsed.success) throw validationError(parsed.error);
  const wanted = parsed.data;
  const grants = wanted.grants ?? caller.grants;
  grants.forEach((g, i) => {
    if (!caller.grants.includes(g)) throw fieldError(`/grants/${i}`, `This key does not hold the "${g}" grant, so it cannot give it.`);
  });
  const validTo = wanted.valid_to === undefined || wanted.valid_to === null ? caller.valid_to : wanted.valid_to;
  if (caller.valid_to !== null && (validTo === null || validTo > caller.valid_to)) {
    throw fieldError("/valid_to", `This key is valid until ${new Date(caller.valid_to * 1000).toISOString()}; a key it makes cannot outlast it.`);
  }
  const validFrom = wanted.valid_from ?? caller.valid_from;
  if (caller.valid_from !== null && validFrom !== null && validFrom < caller.valid_from) {
    throw fieldError("/valid_from", `This key is valid from ${new Date(caller.valid_from * 1000).toISOString()}; a key it makes cannot start earlier.`);
  }
  if (validFrom !== null && validTo !== null && validTo <= validFrom) throw fieldError("/valid_to", "valid_to must be later than valid_from.");
  const key = crypto.randomUUID();
  const record = await env.REGISTRY.getByName(REGISTRY_NAME).addKey(await sha256Hex(key), wanted.label, caller.account, { grants: [...new Set(grants)], valid_from: validFrom, valid_to: validTo });
  return Response.json({ ...keyObject(record, new URL(request.url).origin), key }, { status: 201 });
}

const Change = z.object({ enabled: z.boolean() });

export async function updateKey(request: IRequest, env: Env): Promise<Response> {
  const { account } = await requireKey(request, env, "manage_keys");
  const parsed = Change.safeParse(await readJson(request));
  if (!parsed.success) throw validationError(parsed.error);
  const record = await env.REGISTRY.getByName(REGISTRY_NAME).setKeyEnabled(account, request.params.uuid ?? "", parsed.data.enabled);
  if (!record) throw new ApiError(404, `No key "${request.params.uuid}" in this account.`);
  return Response.json(keyObject(record, new URL(request.url).origin));
}
