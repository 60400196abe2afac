// The probe's identity: an Ed25519 key pair made on first run and kept in the state directory (private key mode
// 0600). Only the public key ever leaves the probe; registration proofs are signed here.
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CompactSign } from "jose";

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

/** The registration proof: a compact EdDSA JWS over {"probe_id","nonce"}. */
export async function signChallenge(id: Identity, probeId: number, nonce: string): Promise<string> {
  return new CompactSign(new TextEncoder().encode(JSON.stringify({ probe_id: probeId, nonce })))
    .setProtectedHeader({ alg: "EdDSA" })
    .sign(id.privateKey);
}
