// `vantage bundles pull`: downloads archive bundles into a Hive-style directory (type=/date=/hour=, as on the edge,
// so DuckDB or Spark read it in place), resumable (a `.part` file continues with a Range request) and verified
// (SHA-256 against the bundle's manifest before the file takes its name). Bytes come through the edge's download
// redirect (a link signed by the edge, or a presigned S3 URL) or, with `s3`, straight from an S3-compatible store
// with @aws-sdk/client-s3 (credentials from the usual AWS_* variables).
import { createHash } from "node:crypto";
import { createReadStream, existsSync, mkdirSync, openSync, closeSync, renameSync, statSync, truncateSync, unlinkSync, writeSync } from "node:fs";
import { dirname, isAbsolute, relative, resolve } from "node:path";
import type { Readable } from "node:stream";
import { type BundleManifest, parseBundleName } from "../storage/bundles.ts";

export type PullOptions = {
  edge: string; dir: string; type?: string; from: string; to: string;
  /** How the edge should hand out the bytes: its own signed link or a presigned S3 URL (default: the edge decides). */
  via?: "worker" | "s3";
  /** Read the bytes from this S3-compatible store instead of through the edge. */
  s3?: { endpoint: string; bucket: string; region: string };
  progress?: (line: string) => void;
};
export type PullSummary = { bundles: number; pulled: number; upToDate: number; bytes: number };

async function json<T>(url: string): Promise<T> {
  const res = await fetch(url);
  const body = (await res.json().catch(() => ({}))) as T & { error?: { detail?: string } };
  if (!res.ok) throw new Error(`${url}: ${res.status} ${body.error?.detail ?? res.statusText}`);
  return body;
}

/** Every bundle of the range, all pages. */
export async function listBundles(o: Pick<PullOptions, "edge" | "type" | "from" | "to">): Promise<BundleManifest[]> {
  const q = new URLSearchParams({ from: o.from, to: o.to, page_size: "500", ...(o.type ? { type: o.type } : {}) });
  const out: BundleManifest[] = [];
  for (let url: string | null = `${o.edge}/api/v2/bundles/?${q}`; url;) {
    const page: { next: string | null; results: BundleManifest[] } = await json(url);
    out.push(...page.results);
    url = page.next;
  }
  return out;
}

/**
 * Where a bundle goes under `dir`. The manifest comes from the edge, which this command does not trust with the
 * user's disk: its name must be a bundle name and agree with its type, date and hour, so no name an edge sends can
 * write outside `dir` (`../`, absolute paths, separators); the resolved path is checked again to be sure.
 */
export function bundleFile(dir: string, m: BundleManifest): string {
  const named = typeof m.name === "string" ? parseBundleName(m.name) : null;
  if (!named || named.type !== m.type || named.date !== m.date || named.hour !== m.hour) {
    throw new Error(`the edge sent a bundle named ${JSON.stringify(m.name)} for ${JSON.stringify([m.type, m.date, m.hour])}, which is not a bundle name: refused`);
  }
  if (typeof m.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(m.sha256) || !Number.isSafeInteger(m.bytes) || m.bytes < 0) {
    throw new Error(`bundle ${m.name}: the edge sent a malformed manifest (sha256, bytes): refused`);
  }
  const root = resolve(dir);
  const file = resolve(root, `type=${named.type}`, `date=${named.date}`, `hour=${named.hour}`, `${m.name}.jsonl.gz`);
  if (relative(root, file).startsWith("..") || isAbsolute(relative(root, file))) throw new Error(`bundle ${m.name} would be written outside ${dir}: refused`);
  return file;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** The bundle's bytes from `offset` on; `restart` when the source ignored the range (then they start at 0). */
async function open(o: PullOptions, m: BundleManifest, offset: number): Promise<{ body: AsyncIterable<Uint8Array>; restart: boolean }> {
  if (o.s3) {
    const { GetObjectCommand, S3Client } = await import("@aws-sdk/client-s3");
    const client = new S3Client({ region: o.s3.region, endpoint: o.s3.endpoint, forcePathStyle: true });
    const got = await client.send(new GetObjectCommand({ Bucket: o.s3.bucket, Key: m.key, ...(offset ? { Range: `bytes=${offset}-` } : {}) }));
    return { body: got.Body as Readable, restart: offset > 0 && !got.ContentRange };
  }
  const redirect = await fetch(`${o.edge}/api/v2/bundles/${m.name}/download${o.via ? `?via=${o.via}` : ""}`, { redirect: "manual" });
  const location = redirect.headers.get("Location");
  if (redirect.status !== 302 || !location) throw new Error(`${m.name}: the edge gave no download link (${redirect.status} ${await redirect.text()})`);
  const res = await fetch(location, { headers: offset ? { Range: `bytes=${offset}-` } : {} });
  if (res.status !== 200 && res.status !== 206) throw new Error(`${m.name}: download failed: ${res.status} ${await res.text()}`);
  return { body: res.body as unknown as AsyncIterable<Uint8Array>, restart: offset > 0 && res.status === 200 };
}

async function pullOne(o: PullOptions, m: BundleManifest): Promise<number> {
  const file = bundleFile(o.dir, m);
  const part = `${file}.part`;
  mkdirSync(dirname(file), { recursive: true });
  let offset = existsSync(part) ? statSync(part).size : 0;
  if (offset >= m.bytes) { truncateSync(part, 0); offset = 0; }
  const { body, restart } = await open(o, m, offset);
  if (restart) { truncateSync(part, 0); offset = 0; }
  const fd = openSync(part, offset ? "a" : "w");
  let done = offset;
  try {
    for await (const chunk of body) {
      writeSync(fd, chunk);
      done += chunk.byteLength;
      o.progress?.(`${m.name}  ${String(Math.floor((done / m.bytes) * 100)).padStart(3)}%  ${done}/${m.bytes} bytes${offset ? ` (resumed at ${offset})` : ""}`);
    }
  } finally {
    closeSync(fd);
  }
  const sha = await sha256File(part);
  if (sha !== m.sha256) {
    unlinkSync(part);
    throw new Error(`${m.name}: SHA-256 ${sha} is not the manifest's ${m.sha256}; the partial file was removed, pull again`);
  }
  renameSync(part, file);
  return done - offset;
}

/** Pulls every bundle of the range that is missing or differs; files already verified are left alone. */
export async function pullBundles(o: PullOptions): Promise<PullSummary> {
  const bundles = await listBundles(o);
  const summary: PullSummary = { bundles: bundles.length, pulled: 0, upToDate: 0, bytes: 0 };
  for (const m of bundles) bundleFile(o.dir, m);  // every name checked before anything is written
  for (const m of bundles) {
    const file = bundleFile(o.dir, m);
    if (existsSync(file) && statSync(file).size === m.bytes && (await sha256File(file)) === m.sha256) {
      summary.upToDate++;
      continue;
    }
    summary.bytes += await pullOne(o, m);
    summary.pulled++;
  }
  return summary;
}
