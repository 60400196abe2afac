// Archive bundles at the edge (storage/bundles.ts has the layout): built from an hour's stored batches by the hourly
// Cron Trigger or on demand, listed from per-day indexes, downloaded through a presigned S3 URL (R2's S3 endpoint,
// when credentials are configured) or a short-lived link signed by the edge and served by the Worker.
//
// A bundle holds the results of public measurements only (built-in ones included): private results stay behind
// the results API. Building is idempotent: batches are read in key order, results de-duplicated by (measurement,
// probe, start time) and kept as stored, and gzip writes no time stamp, so a rebuild of an unchanged hour is
// byte-identical.
import { PublicMeasurements } from "../durable-objects/public.ts";
import { base64url, type Result, sha256Hex } from "../protocol/index.ts";
import { type BundleManifest, bundleKey, bundleName, dayIndexKey, manifestKey } from "../storage/bundles.ts";

/** How long a download link stays valid. */
export const LINK_TTL_S = 900;

/** Builds (or rebuilds) one hour's bundle of one result type; null when the hour has no public results of it. */
export async function buildBundle(env: Env, type: string, date: string, hour: string): Promise<BundleManifest | null> {
  const prefix = `results/type=${type}/date=${date}/hour=${hour}/`;
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await env.RESULTS.list({ prefix, cursor });
    keys.push(...page.objects.map((o) => o.key));
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  keys.sort();

  const publicMeasurements = new PublicMeasurements(env);
  const seen = new Set<string>();
  const gzip = new CompressionStream("gzip");
  const writer = gzip.writable.getWriter();
  const compressed: Uint8Array[] = [];
  const reading = (async () => {
    const reader = gzip.readable.getReader();
    for (let r = await reader.read(); !r.done; r = await reader.read()) compressed.push(r.value);
  })();
  const encoder = new TextEncoder();
  let count = 0, first = Infinity, last = -Infinity;
  for (const key of keys) {
    const lines = ((await (await env.RESULTS.get(key))?.text()) ?? "").split("\n").filter(Boolean);
    // Each result with its stored line, which goes into the bundle as it is.
    const results = await publicMeasurements.only(lines.map((line) => ({ ...(JSON.parse(line) as Result), line })));
    let text = "";
    results.forEach((r) => {
      const id = `${r.msm_id}:${r.prb_id}:${r.timestamp}`;
      if (seen.has(id)) return;
      seen.add(id);
      text += r.line + "\n";
      count++;
      first = Math.min(first, r.timestamp);
      last = Math.max(last, r.timestamp);
    });
    if (text) await writer.write(encoder.encode(text));
  }
  await writer.close();
  await reading;
  if (count === 0) return null;

  const bytes = new Uint8Array(compressed.reduce((n, c) => n + c.byteLength, 0));
  compressed.reduce((at, c) => (bytes.set(c, at), at + c.byteLength), 0);
  const manifest: BundleManifest = {
    name: bundleName(type, date, hour), type, date, hour, key: bundleKey(type, date, hour),
    count, bytes: bytes.byteLength, sha256: await sha256Hex(bytes), first_timestamp: first, last_timestamp: last,
  };
  await env.RESULTS.put(manifest.key, bytes, {
    httpMetadata: { contentType: "application/gzip", contentDisposition: `attachment; filename="${manifest.name}.jsonl.gz"` },
    customMetadata: { sha256: manifest.sha256, count: String(count) },
  });
  await env.RESULTS.put(manifestKey(type, date, hour), JSON.stringify(manifest), { httpMetadata: { contentType: "application/json" } });
  await writeDayIndex(env, type, date);
  return manifest;
}

/** The day's index: every manifest of that type and date, by hour (rebuilt from the manifests, so races converge). */
async function writeDayIndex(env: Env, type: string, date: string): Promise<void> {
  const manifests: BundleManifest[] = [];
  for (let h = 0; h < 24; h++) {
    const hour = String(h).padStart(2, "0");
    const m = await env.RESULTS.get(manifestKey(type, date, hour));
    if (m) manifests.push(await m.json<BundleManifest>());
  }
  await env.RESULTS.put(dayIndexKey(type, date), JSON.stringify(manifests), { httpMetadata: { contentType: "application/json" } });
}

/** Bundles of the given types on the given dates, from the day indexes (the bucket is never listed). */
export async function listBundles(env: Env, types: readonly string[], dates: string[]): Promise<BundleManifest[]> {
  const days = await Promise.all(types.flatMap((type) => dates.map(async (date) => {
    const index = await env.RESULTS.get(dayIndexKey(type, date));
    return index ? await index.json<BundleManifest[]>() : [];
  })));
  return days.flat().sort((a, b) => a.date.localeCompare(b.date) || a.hour.localeCompare(b.hour) || a.type.localeCompare(b.type));
}

export async function getManifest(env: Env, type: string, date: string, hour: string): Promise<BundleManifest | null> {
  const m = await env.RESULTS.get(manifestKey(type, date, hour));
  return m ? await m.json<BundleManifest>() : null;
}

async function linkKey(env: Env): Promise<CryptoKey> {
  // A secret of its own if the operator sets one; otherwise derived from the edge's signing key, which is secret too.
  const secret = env.BUNDLE_LINK_SECRET || `vantage bundle links\n${env.EDGE_PRIVATE_JWK}`;
  const raw = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(secret));
  return crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

/** A link to a bundle's bytes through the Worker, valid until `expires` (unix seconds). */
export async function signedLink(env: Env, origin: string, name: string, expires: number): Promise<string> {
  const sig = await crypto.subtle.sign("HMAC", await linkKey(env), new TextEncoder().encode(`${name}\n${expires}`));
  return `${origin}/api/v2/bundles/${name}/data?expires=${expires}&signature=${base64url.encode(new Uint8Array(sig))}`;
}

export async function linkValid(env: Env, name: string, expires: number, signature: string): Promise<boolean> {
  let sig: Uint8Array;
  try { sig = base64url.decode(signature); } catch { return false; }
  return crypto.subtle.verify("HMAC", await linkKey(env), sig, new TextEncoder().encode(`${name}\n${expires}`));
}

/** A presigned GET on R2's S3 endpoint, when S3 credentials are configured; null otherwise. */
export async function presignedUrl(env: Env, key: string, filename: string): Promise<string | null> {
  if (!env.S3_ENDPOINT || !env.S3_ACCESS_KEY_ID || !env.S3_SECRET_ACCESS_KEY || !env.S3_BUCKET) return null;
  const { GetObjectCommand, S3Client } = await import("@aws-sdk/client-s3");
  const { getSignedUrl } = await import("@aws-sdk/s3-request-presigner");
  const client = new S3Client({
    region: env.S3_REGION || "auto", endpoint: env.S3_ENDPOINT, forcePathStyle: true,
    credentials: { accessKeyId: env.S3_ACCESS_KEY_ID, secretAccessKey: env.S3_SECRET_ACCESS_KEY },
  });
  return getSignedUrl(client, new GetObjectCommand({ Bucket: env.S3_BUCKET, Key: key, ResponseContentDisposition: `attachment; filename="${filename}"` }), { expiresIn: LINK_TTL_S });
}

/** The hour before `at` (ms), as the hourly job builds it. */
export function previousHour(at: number): { date: string; hour: string } {
  const iso = new Date(at - 3_600_000).toISOString();
  return { date: iso.slice(0, 10), hour: iso.slice(11, 13) };
}
