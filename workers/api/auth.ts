// API keys, as Atlas clients send them: `Authorization: Key <k>` (cousteau ≥ 1.5) or `?key=<k>` (cousteau 1.4).
// Keys are stored as SHA-256 hashes; sending more than one key is refused, as Atlas does. Every key belongs to an
// account, which owns the measurements made with it and pays for them.
import { REGISTRY_NAME } from "../../durable-objects/env.ts";
import type { Grant } from "../../durable-objects/registry-schema.ts";
import { sha256Hex } from "../../protocol/index.ts";
import { ApiError } from "./errors.ts";

/** Who is calling: the account of the request's key, the key's hash, its grants and its validity window. */
export type Caller = { account: string; key: string; grants: Grant[]; valid_from: number | null; valid_to: number | null };

/** The caller of a request with a key, or null for an anonymous request. Unknown or multiple keys → 403. */
export async function apiKey(request: Request, env: Env): Promise<Caller | null> {
  const url = new URL(request.url);
  // An empty `?key=` is no key: cousteau 1.4 sends one on every metadata read it makes without a key.
  const keys = url.searchParams.getAll("key").filter((k) => k !== "");
  const header = request.headers.get("Authorization");
  if (header) {
    const m = header.match(/^Key\s+(\S+)$/i);
    if (!m) throw new ApiError(403, 'Authorization header must be "Key <api key>".');
    keys.push(m[1]!);
  }
  if (keys.length === 0) return null;
  if (keys.length > 1) throw new ApiError(403, "Several API keys were sent; send exactly one.");
  const hash = await sha256Hex(keys[0]!);
  const found = await env.REGISTRY.getByName(REGISTRY_NAME).keyAccount(hash);
  if ("refused" in found) throw new ApiError(403, found.refused);
  return { account: found.account, key: hash, grants: found.grants, valid_from: found.valid_from, valid_to: found.valid_to };
}

/** The caller, whose key must carry `grant`. */
export async function requireKey(request: Request, env: Env, grant: Grant): Promise<Caller> {
  const caller = await apiKey(request, env);
  if (!caller) throw new ApiError(403, "Authentication credentials were not provided.");
  if (!caller.grants.includes(grant)) throw new ApiError(403, `This key may not do that: it lacks the "${grant}" grant.`);
  return caller;
}

/** Operator endpoints (/admin/…) take `Authorization: Bearer <ADMIN_TOKEN>`. */
export function requireAdmin(request: Request, env: Env): void {
  const given = request.headers.get("Authorization")?.match(/^Bearer\s+(\S+)$/)?.[1] ?? "";
  const want = env.ADMIN_TOKEN ?? "";
  const a = new TextEncoder().encode(given), b = new TextEncoder().encode(want);
  const same = want.length > 0 && a.length === b.length && crypto.subtle.timingSafeEqual(a, b);
  if (!same) throw new ApiError(403, "Operator credential missing or wrong.");
}
