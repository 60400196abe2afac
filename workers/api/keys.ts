// /api/v2/keys/: an account's API keys in Atlas's shapes — list, read, create (the key is shown once; only its SHA-256
// is kept), enable, disable or rename, delete. Needs a key with the "manage_keys" grant. A key's grants limit what it
// may do; its validity window when.
import type { IRequest } from "itty-router";
import { z } from "zod";
import { REGISTRY_NAME } from "../../durable-objects/env.ts";
import { type Grant, GRANTS, type KeyRecord } from "../../durable-objects/registry-schema.ts";
import { isoTime, sha256Hex } from "../../protocol/index.ts";
import { requireKey } from "./auth.ts";
import { ApiError, fieldError, readJson, validationError } from "./errors.ts";

/** Unix seconds, or ISO-8601 as Atlas writes it (a time without an offset is UTC, as Atlas means it). */
const unix = z.union([z.number().int().nonnegative(), z.iso.datetime({ offset: true, local: true })
  .transform((s) => Math.floor(Date.parse(/(Z|[+-]\d\d(:?\d\d)?)$/i.test(s) ? s : `${s}Z`) / 1000))]);

/** Atlas's documented spelling of a grant beside Vantage's (`create_measurement` → `create_measurements`). */
const ATLAS_ALIASES: Record<string, Grant> = { create_measurement: "create_measurements" };
const permission = z.preprocess((p) => (typeof p === "string" && p in ATLAS_ALIASES ? ATLAS_ALIASES[p] : p), z.enum(GRANTS, `grants are: ${GRANTS.join(", ")}.`));
/**
 * Atlas's shape, `[{"permission": "create_measurements", "target": null}]` (what this API answers with), or plain
 * names. A grant's `target` (Atlas scopes some grants to one probe or measurement) is not supported: given, it is a
 * 400 naming it, since a key scoped to less than asked would be stronger than its maker meant.
 */
const grant = z.union([permission, z.object({ permission, target: z.null().optional() }).strict().transform((g) => g.permission)], {
  error: `each grant is {"permission": one of ${GRANTS.join(", ")}, "target": null}.`,
});
const NewKey = z.object({
  label: z.string().min(1).max(128),
  grants: z.array(grant).min(1).optional(),
  valid_from: unix.nullable().optional(),
  valid_to: unix.nullable().optional(),
  enabled: z.boolean().optional(),
}).strict().refine((k) => k.valid_from == null || k.valid_to == null || k.valid_to > k.valid_from, { path: ["valid_to"], message: "valid_to must be later than valid_from." });

/** A key as Atlas shows one: ISO-8601 dates, grants with their (always null) target, whether it works right now. */
function keyObject(k: KeyRecord, origin: string): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return {
    uuid: k.uuid, label: k.label, enabled: k.enabled,
    is_active: k.enabled && (k.valid_from === null || now >= k.valid_from) && (k.valid_to === null || now < k.valid_to),
    grants: k.grants.map((permission) => ({ permission, target: null })),
    valid_from: isoTime(k.valid_from), valid_to: isoTime(k.valid_to), created_at: isoTime(Math.floor(k.created / 1000)), url: `${origin}/api/v2/keys/${k.uuid}/`,
  };
}

async function ownKey(request: IRequest, env: Env): Promise<{ account: string; record: KeyRecord }> {
  const { account } = await requireKey(request, env, "manage_keys");
  const record = (await env.REGISTRY.getByName(REGISTRY_NAME).keys(account)).find((k) => k.uuid === request.params.uuid);
  if (!record) throw new ApiError(404, `No key "${request.params.uuid}" in this account.`);
  return { account, record };
}

/** GET /api/v2/keys/{uuid}/. */
export async function getKey(request: IRequest, env: Env): Promise<Response> {
  const { record } = await ownKey(request, env);
  return Response.json(keyObject(record, new URL(request.url).origin));
}

/** DELETE /api/v2/keys/{uuid}/: the key stops working at once; 204. */
export async function deleteKey(request: IRequest, env: Env): Promise<Response> {
  const { account, record } = await ownKey(request, env);
  await env.REGISTRY.getByName(REGISTRY_NAME).deleteKey(account, record.uuid);
  return new Response(null, { status: 204 });
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
  const registry = env.REGISTRY.getByName(REGISTRY_NAME);
  let record = await registry.addKey(await sha256Hex(key), wanted.label, caller.account, { grants: [...new Set(grants)], valid_from: validFrom, valid_to: validTo });
  // Made disabled (`"enabled": false`, as Atlas's form allows): switched on later with PATCH.
  if (wanted.enabled === false) record = (await registry.updateKey(caller.account, record.uuid, { enabled: false }))!;
  return Response.json({ ...keyObject(record, new URL(request.url).origin), key }, { status: 201 });
}

/** What PATCH changes; grants and validity are fixed at creation (make a new key instead: it cannot outgrow its maker). */
const Change = z.object({ enabled: z.boolean().optional(), label: z.string().min(1).max(128).optional() }).strict();

export async function updateKey(request: IRequest, env: Env): Promise<Response> {
  const { account } = await requireKey(request, env, "manage_keys");
  const parsed = Change.safeParse(await readJson(request));
  if (!parsed.success) throw validationError(parsed.error);
  const record = await env.REGISTRY.getByName(REGISTRY_NAME).updateKey(account, request.params.uuid ?? "", parsed.data);
  if (!record) throw new ApiError(404, `No key "${request.params.uuid}" in this account.`);
  return Response.json(keyObject(record, new URL(request.url).origin));
}
