// Assignment tokens: short-lived EdDSA JWTs the edge signs at registration. The audience names the controller
// shard the probe may connect to; the controller accepts a WebSocket only with a valid token for itself.
import { importJWK, jwtVerify, SignJWT, type JWK } from "jose";
import type { AssignmentClaims } from "../protocol/index.ts";

export const ISSUER = "vantage-edge";
export const TOKEN_TTL_SECONDS = 120;
/**
 * A resume token (sent by the controller to a connected probe, renewed at half its life) lets the probe reconnect to
 * the same controller without registering: after a deploy drops every socket, the fleet comes back without every
 * probe going through the one registry. Single use, like every assignment token.
 */
export const RESUME_TTL_SECONDS = 3600;
/**
 * Resume tokens are renewed for a day after the probe registered; then it registers again, and the claims its
 * tokens carry (location, ASN, tags, which the operator may have changed) come fresh from the registry.
 */
export const RESUME_CHAIN_SECONDS = 86_400;

const keyCache = new Map<string, CryptoKey>();
async function key(jwk: string, use: "sign" | "verify"): Promise<CryptoKey> {
  const cached = keyCache.get(jwk);
  if (cached) return cached;
  let parsed: JWK;
  try {
    parsed = JSON.parse(jwk) as JWK;
  } catch {
    throw new Error(`edge ${use === "sign" ? "private" : "public"} key is not a JSON JWK`);
  }
  const k = (await importJWK({ ...parsed, alg: "EdDSA" }, "EdDSA")) as CryptoKey;
  keyCache.set(jwk, k);
  return k;
}

export function audienceFor(shard: string): string {
  return `controller:${shard}`;
}

export async function issueAssignment(privateJwk: string, claims: AssignmentClaims, now = Date.now(), ttl = TOKEN_TTL_SECONDS): Promise<{ token: string; expires: number }> {
  const iat = Math.floor(now / 1000);
  const expires = iat + ttl;
  const token = await new SignJWT({ country_code: claims.country_code, asn_v4: claims.asn_v4, prefix_v4: claims.prefix_v4, tags: claims.tags ?? [], cell: claims.cell ?? null, prev_shard: claims.prev_shard ?? null, registered_at: claims.registered_at ?? Math.floor(now / 1000), system_tags: claims.system_tags ?? [], works: claims.works ?? {} })
    .setProtectedHeader({ alg: "EdDSA", typ: "JWT" })
    .setIssuer(ISSUER)
    .setSubject(claims.sub)
    .setAudience(claims.aud)
    .setIssuedAt(iat)
    .setExpirationTime(expires)
    .setJti(crypto.randomUUID())
    .sign(await key(privateJwk, "sign"));
  return { token, expires };
}

/** Verifies a token for `shard`; throws an Error whose message says why it is refused. */
export async function verifyAssignment(publicJwk: string, token: string, shard: string): Promise<AssignmentClaims> {
  try {
    const { payload } = await jwtVerify(token, await key(publicJwk, "verify"), {
      issuer: ISSUER,
      audience: audienceFor(shard),
      algorithms: ["EdDSA", "Ed25519"],
    });
    return payload as unknown as AssignmentClaims;
  } catch (e) {
    const code = (e as { code?: string }).code;
    const reason =
      code === "ERR_JWT_EXPIRED" ? "assignment token expired" :
      code === "ERR_JWT_CLAIM_VALIDATION_FAILED" ? `assignment token is not for this controller (${(e as Error).message})` :
      code === "ERR_JWS_SIGNATURE_VERIFICATION_FAILED" ? "assignment token signature is invalid" :
      `assignment token refused: ${(e as Error).message}`;
    throw new Error(reason);
  }
}
