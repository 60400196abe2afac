// Signed agent releases: what the release key signs, and how a probe checks a release before it may run it. The
// manifest names the version, the bundle's SHA-256 and size; the signature (Ed25519, by the release key every probe
// pins) covers exactly those three. A bundle is accepted only if its bytes hash to the manifest's and the signature
// verifies with the pinned key. Uses WebCrypto, so the edge and the agent share it.
import { base64url, sha256Hex } from "./encoding.ts";

export type ReleaseManifest = { version: string; sha256: string; size: number; signature: string };
/** What a controller tells a probe to run: a signed release of a rollout, and the edge path it is fetched from. */
export type ReleaseOffer = ReleaseManifest & { rollout: number; path: string };

export const RELEASE_VERSION = /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/;

const encoder = new TextEncoder();

/** The bytes the release key signs. */
export function releaseMessage(m: Pick<ReleaseManifest, "version" | "sha256" | "size">): Uint8Array {
  return encoder.encode(`vantage-release-v1\n${m.version}\n${m.sha256}\n${m.size}\n`);
}

/** Signs a bundle as release `version` with the release private key (an Ed25519 JWK). */
export async function signRelease(bundle: Uint8Array, version: string, privateJwk: JsonWebKey): Promise<ReleaseManifest> {
  if (!RELEASE_VERSION.test(version)) throw new Error(`version must look like 1.2.3 (got "${version}")`);
  const key = await crypto.subtle.importKey("jwk", privateJwk, { name: "Ed25519" }, false, ["sign"]);
  const m = { version, sha256: await sha256Hex(bundle), size: bundle.byteLength };
  const signature = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, key, releaseMessage(m)));
  return { ...m, signature: base64url.encode(signature) };
}

/** Why a release must not run, or null if the bundle is the signed release the manifest describes. */
export async function verifyRelease(bundle: Uint8Array, manifest: ReleaseManifest, pinnedPublicJwk: JsonWebKey): Promise<string | null> {
  if (bundle.byteLength !== manifest.size) return `size ${bundle.byteLength} is not the signed ${manifest.size}`;
  if ((await sha256Hex(bundle)) !== manifest.sha256) return "its SHA-256 is not the signed one (the bundle was altered)";
  let signature: Uint8Array;
  try {
    signature = base64url.decode(manifest.signature);
  } catch {
    return "its signature is not base64url";
  }
  const key = await crypto.subtle.importKey("jwk", pinnedPublicJwk, { name: "Ed25519" }, false, ["verify"]);
  const ok = await crypto.subtle.verify({ name: "Ed25519" }, key, signature, releaseMessage(manifest));
  return ok ? null : "its signature does not verify with the pinned release key (unsigned, re-signed or edited manifest)";
}

/**
 * Whether a probe is in the first `percent` % of a staged rollout of `version`: a hash of both, so raising the
 * percentage keeps every probe already chosen, and each version picks a different first few.
 */
export function inRollout(probeId: number, version: string, percent: number): boolean {
  let h = 0x811c9dc5;
  for (const c of `${probeId}:${version}`) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return h % 100 < percent;
}
