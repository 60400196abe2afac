// The probe's identity: an Ed25519 key pair made on first run and kept in the state directory (private key mode
// 0600). Only the public key ever leaves the probe; registration proofs are signed here, and the edge's assignment
// tokens checked.
//
// Compact EdDSA JWS/JWT with node:crypto's one-shot Ed25519 sign and verify rather than jose: jose works on
// WebCrypto, and loading the two cost the agent 0.3–0.5 MB of RSS (npm run bench:agent; its budget is 60 MB) and
// CPU at every registration, for two calls. The edge, which issues and checks the same tokens, uses jose
// (durable-objects/tokens.ts); the tests check each end against the other.
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { base64url } from "../protocol/probe.ts";

export type Identity = { privateKey: KeyObject; publicKey: string };

const KEY_FILE = "probe_key.pem";

/** Loads the probe's key, creating it (and the state directory) on first use. */
export function loadIdentity(stateDir: string): Identity {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const path = join(stateDir, KEY_FILE);
  if (!existsSync(path)) {
    const { privateKey } = generateKeyPairSync("ed25519");
    const tmp = `${path}.tmp`;
    writeFileSync(tmp, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
    renameSync(tmp, path);
  }
  chmodSync(path, 0o600);
  const privateKey = createPrivateKey(readFileSync(path));
  const jwk = createPublicKey(privateKey).export({ format: "jwk" }) as { x: string };
  return { privateKey, publicKey: jwk.x };
}

const utf8 = new TextEncoder();
const b64json = (v: unknown) => base64url.encode(utf8.encode(JSON.stringify(v)));

/** The registration proof: a compact EdDSA JWS over {"probe_id","nonce"}. */
export function signChallenge(id: Identity, probeId: number, nonce: string): string {
  const input = `${b64json({ alg: "EdDSA" })}.${b64json({ probe_id: probeId, nonce })}`;
  return `${input}.${base64url.encode(sign(null, Buffer.from(input), id.privateKey))}`;
}

/**
 * Checks an assignment token from the edge as RFC 7519 asks of this use: an EdDSA JWS signed by the pinned edge
 * key, for `audience` and `subject`, not expired and not used before its time. Throws an Error saying why not.
 */
export function verifyEdgeToken(token: string, edgeJwk: { kty: "OKP"; crv: "Ed25519"; x: string }, o: { audience: string; subject: string }, now = Date.now() / 1000): void {
  const parts = token.split(".");
  if (parts.length !== 3) throw new Error("assignment token is not a compact JWS");
  const [h, p, sig] = parts as [string, string, string];
  let header: { alg?: unknown; crit?: unknown };
  let claims: { aud?: unknown; sub?: unknown; exp?: unknown; nbf?: unknown };
  let signature: Uint8Array;
  try {
    signature = base64url.decode(sig);
    header = JSON.parse(new TextDecoder().decode(base64url.decode(h))) as typeof header;
    claims = JSON.parse(new TextDecoder().decode(base64url.decode(p))) as typeof claims;
  } catch {
    throw new Error("assignment token is not base64url JSON and a signature");
  }
  if (header.alg !== "EdDSA" && header.alg !== "Ed25519") throw new Error(`assignment token algorithm ${String(header.alg)} is not EdDSA`);
  if (header.crit !== undefined) throw new Error("assignment token has critical header parameters this probe does not know");
  const key = createPublicKey({ key: edgeJwk, format: "jwk" });
  if (!verify(null, Buffer.from(`${h}.${p}`), key, signature)) throw new Error("assignment token signature does not verify with the pinned edge key");
  const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!audiences.includes(o.audience)) throw new Error(`assignment token is for ${JSON.stringify(claims.aud)}, not ${o.audience}`);
  if (claims.sub !== o.subject) throw new Error(`assignment token is for probe ${JSON.stringify(claims.sub)}, not ${o.subject}`);
  if (typeof claims.exp !== "number" || now >= claims.exp) throw new Error("assignment token expired (or has no expiry)");
  if (claims.nbf !== undefined && (typeof claims.nbf !== "number" || now < claims.nbf)) throw new Error("assignment token is not valid yet");
}
