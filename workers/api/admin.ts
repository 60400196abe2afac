// Operator endpoints (/admin/…): enroll and disable probes, import API keys, inspect shards. Bearer ADMIN_TOKEN is
// checked for every /admin path in workers/index.ts, before any of these runs.
import type { IRequest } from "itty-router";
import { z } from "zod";
import { BRAIN_NAME, REGISTRY_NAME } from "../../durable-objects/env.ts";
import { controllerStub, SHARDS, shardByName } from "../../durable-objects/shards.ts";
import { sha256Hex } from "../../protocol/index.ts";
import { ApiError, readJson, validationError } from "./errors.ts";
import { probeObject } from "./probes.ts";

const Account = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "account must be 1-64 letters, digits, '_', '.' or '-'.");

const Enrollment = z.object({
  public_key: z.string().regex(/^[A-Za-z0-9_-]{43}$/, "public_key must be the probe's Ed25519 public key, 32 bytes in base64url."),
  description: z.string().max(256).optional(),
  country_code: z.string().regex(/^[A-Za-z]{2}$/, "country_code must be two letters.").nullable().optional(),
  asn_v4: z.number().int().min(0).max(4_294_967_295).nullable().optional(),
  prefix_v4: z.string().regex(/^\d+\.\d+\.\d+\.\d+\/\d{1,2}$/, "prefix_v4 must be a.b.c.d/len.").nullable().optional(),
  latitude: z.number().min(-90).max(90).nullable().optional(),
  longitude: z.number().min(-180).max(180).nullable().optional(),
  /** The account hosting the probe: it earns the probe's uptime credits. */
  owner: Account.nullable().optional(),
  tags: z.array(z.string().regex(/^[a-z0-9-]{1,64}$/, "tags are lower-case letters, digits and '-'.")).max(50).optional(),
});

export async function enrollProbe(request: IRequest, env: Env): Promise<Response> {
  const parsed = Enrollment.safeParse(await readJson(request));
  if (!parsed.success) throw validationError(parsed.error);
  const out = await env.REGISTRY.getByName(REGISTRY_NAME).enroll(parsed.data);
  if (!out.ok) throw new ApiError(409, out.reason);
  return Response.json(probeObject(out.probe), { status: 201 });
}

export async function setProbeDisabled(request: IRequest, env: Env): Promise<Response> {
  const id = Number(request.params.id);
  const action = request.params.action ?? "";
  if (!["disable", "enable", "write-off", "take-back"].includes(action)) throw new ApiError(404, "Use /disable, /enable, /write-off or /take-back.");
  const registry = env.REGISTRY.getByName(REGISTRY_NAME);
  const disabled = action === "disable" || action === "write-off";
  const p = action === "write-off" || action === "take-back" ? await registry.setWrittenOff(id, action === "write-off") : await registry.setDisabled(id, disabled);
  if (!p) throw new ApiError(404, action === "take-back" ? `Probe ${request.params.id} does not exist or is not written off.` : `No probe with id ${request.params.id}.`);
  // A disabled probe is also dropped by its controller now, not only refused at its next registration; enabled
  // again, its controller takes its tokens again.
  const shard = p.shard ? shardByName(p.shard) : undefined;
  const controller = shard ? controllerStub(env.CONTROLLER, shard) : null;
  const dropped = !controller ? 0 : disabled ? await controller.drop(id, `probe ${action === "write-off" ? "written off" : "disabled"} by the operator`) : (await controller.undrop(id), 0);
  return Response.json({ id, disabled, dropped });
}

const Credits = z.number().int("credits must be a whole number.").min(0).max(1_000_000_000_000);

const KeyImport = z.object({
  label: z.string().min(1).max(128), key: z.string().min(16).max(128).optional(),
  /** The account the key acts for; by default a new one of its own. */
  account: Account.optional(),
  /** Credits granted to the key's account once (an operator's grant; repeating the import grants nothing more). */
  credits: Credits.optional(),
});

/** Creates an API key (or imports a given one, as `npm start` does with VANTAGE_API_KEY). Only the hash is kept. */
export async function createKey(request: IRequest, env: Env): Promise<Response> {
  const parsed = KeyImport.safeParse(await readJson(request));
  if (!parsed.success) throw validationError(parsed.error);
  const key = parsed.data.key ?? crypto.randomUUID();
  const hash = await sha256Hex(key);
  const { account } = await env.REGISTRY.getByName(REGISTRY_NAME).addKey(hash, parsed.data.label, parsed.data.account);
  if (parsed.data.credits) await env.LEDGER.getByName(account).credit(`key-grant:${hash}`, parsed.data.credits, "grant", `with key "${parsed.data.label}"`);
  return Response.json({ key, label: parsed.data.label, account }, { status: 201 });
}

const Grant = z.object({ credits: Credits.min(1), request_id: z.string().min(1).max(100), detail: z.string().max(200).optional() });

/** An operator's grant of credits to an account (idempotent by request_id). */
export async function grantCredits(request: IRequest, env: Env): Promise<Response> {
  const account = Account.safeParse(request.params.account);
  if (!account.success) throw new ApiError(404, `No account "${request.params.account}".`);
  const parsed = Grant.safeParse(await readJson(request));
  if (!parsed.success) throw validationError(parsed.error);
  const conflict = (detail: string) => new ApiError(409, `request_id ${parsed.data.request_id} was already used for another grant.`, [{ source: { pointer: "/request_id" }, detail }]);
  if (await env.REGISTRY.getByName(REGISTRY_NAME).bindGrant(parsed.data.request_id, account.data, parsed.data.credits) === "conflict") {
    throw conflict("It granted another amount or another account.");
  }
  const outcome = await env.LEDGER.getByName(account.data).credit(`grant:${parsed.data.request_id}`, parsed.data.credits, "grant", parsed.data.detail ?? "");
  if (!outcome.ok && outcome.reason === "conflict") throw new ApiError(409, `request_id ${parsed.data.request_id} was already used for another grant.`, [{ source: { pointer: "/request_id" }, detail: outcome.detail }]);
  return Response.json(outcome, { status: 201 });
}

export async function controllers(request: IRequest, env: Env): Promise<Response> {
  return Response.json(await Promise.all(SHARDS.map((s) => controllerStub(env.CONTROLLER, s).load())));
}

/**
 * What the Durable Objects have used since they started (SQLite rows written, requests, WebSocket messages): the
 * benchmark turns it into a cost per million results. `?account=` adds that account's ledger.
 */
export async function usage(request: IRequest, env: Env): Promise<Response> {
  const account = new URL(request.url).searchParams.get("account");
  return Response.json({
    controllers: await Promise.all(SHARDS.map(async (s) => ({ shard: s.name, ...(await controllerStub(env.CONTROLLER, s).usage()) }))),
    brain: await env.BRAIN.getByName(BRAIN_NAME).usage(),
    registry: await env.REGISTRY.getByName(REGISTRY_NAME).usage(),
    ledger: account ? await env.LEDGER.getByName(account).usage() : null,
  });
}

/** Writes a shard's outbox to R2 now instead of at its next flush. */
export async function flushController(request: IRequest, env: Env): Promise<Response> {
  const shard = shardByName(request.params.shard ?? "");
  if (!shard) throw new ApiError(404, `No controller shard "${request.params.shard}".`);
  return Response.json(await controllerStub(env.CONTROLLER, shard).flush());
}
