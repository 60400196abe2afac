// Registration nonces that nobody can take away from a probe. The registry used to keep one outstanding nonce per
// probe, replaced by each new challenge: anyone could ask for challenges in a probe's name, forever, and the probe's
// own answer would always be to a superseded one (a lock-out needing no credential at all). Now a nonce carries its
// own proof of issue — 16 random bytes, its expiry, and an HMAC of both with the probe id under a key only the
// registry holds — so issuing one writes nothing and invalidates nothing; answering one marks it used until it
// expires, so a proof still works once only.
import { base64url } from "../protocol/index.ts";

const RANDOM = 16, EXPIRY = 8, MAC = 16;

export async function nonceKey(raw: Uint8Array): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

function signed(probeId: number, body: Uint8Array): Uint8Array {
  const msg = new Uint8Array(8 + body.length);
  new DataView(msg.buffer).setBigUint64(0, BigInt(probeId));
  msg.set(body, 8);
  return msg;
}

/** A fresh nonce for `probeId`, valid until `expires` (ms). */
export async function issueNonce(key: CryptoKey, probeId: number, expires: number): Promise<string> {
  const body = new Uint8Array(RANDOM + EXPIRY);
  crypto.getRandomValues(body.subarray(0, RANDOM));
  new DataView(body.buffer).setBigUint64(RANDOM, BigInt(expires));
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, signed(probeId, body))).subarray(0, MAC);
  const out = new Uint8Array(RANDOM + EXPIRY + MAC);
  out.set(body);
  out.set(mac, RANDOM + EXPIRY);
  return base64url.encode(out);
}

/** The nonce's expiry (ms) if the registry issued it for `probeId`, else why not. */
export async function checkNonce(key: CryptoKey, probeId: number, nonce: unknown, now: number): Promise<{ ok: true; expires: number } | { ok: false; reason: string }> {
  let bytes: Uint8Array;
  try {
    if (typeof nonce !== "string" || !/^[A-Za-z0-9_-]{54}$/.test(nonce)) throw new Error();
    bytes = base64url.decode(nonce);
  } catch {
    return { ok: false, reason: "proof answers no challenge of this registry: request one first" };
  }
  const body = bytes.subarray(0, RANDOM + EXPIRY);
  const full = new Uint8Array(await crypto.subtle.sign("HMAC", key, signed(probeId, body))).subarray(0, MAC);
  const given = bytes.subarray(RANDOM + EXPIRY);
  // Constant time: the MAC is compared whole, whatever the first differing byte.
  let diff = 0;
  for (let i = 0; i < MAC; i++) diff |= full[i]! ^ given[i]!;
  if (diff !== 0) return { ok: false, reason: "proof answers no challenge of this registry for this probe: request one first" };
  const expires = Number(new DataView(body.buffer, body.byteOffset).getBigUint64(RANDOM));
  if (expires < now) return { ok: false, reason: "challenge expired: request a new one" };
  return { ok: true, expires };
}
