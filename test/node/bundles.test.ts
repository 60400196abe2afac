// Archive bundles end to end: real agents measure, the operator builds the hour's bundle with `vantage bundles
// build`, and a user pulls it with `vantage bundles pull` through the edge's signed link, through a presigned URL
// on a real S3-compatible server (s3rver, standing in for R2's S3 endpoint) and straight from that server with the
// AWS SDK — resumed, verified, byte-identical when rebuilt — then runs docs/analysis.md's DuckDB query on it.
import { execFile } from "node:child_process";
import { readFileSync, readdirSync, statSync, truncateSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { gunzipSync } from "node:zlib";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { DuckDBInstance } from "@duckdb/node-api";
import S3rver from "s3rver";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PingResult } from "../../protocol/index.ts";
import { type LocalSystem, LOCAL_SITES, ROOT, startLocalSystem } from "../../scripts/local.ts";
import { freePort, icmpUnavailable, tempDir, until } from "./system.ts";

const run = promisify(execFile);
const noIcmp = icmpUnavailable();
if (noIcmp) console.warn(`skipping the bundle tests (their results come from real pings): ${noIcmp}`);

type Manifest = { name: string; key: string; count: number; bytes: number; sha256: string };
const S3 = { bucket: "vantage-results", region: "us-east-1", accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

describe.skipIf(noIcmp !== null)("archive bundles from a running system", () => {
  const dir = tempDir("bundles");
  let system: LocalSystem;
  let s3: S3rver;
  let s3Endpoint: string;
  let hour: string;
  const vantage = async (args: string[], env: Record<string, string> = {}) => (await run(process.execPath, [join(ROOT, "cli/vantage.ts"), ...args], {
    encoding: "utf8", env: { ...process.env, VANTAGE_EDGE: system.edge.url, VANTAGE_ADMIN_TOKEN: system.edge.secrets.ADMIN_TOKEN, ...env },
  })).stdout;
  const sha = async (path: string) => (await import("node:crypto")).createHash("sha256").update(readFileSync(path)).digest("hex");

  beforeAll(async () => {
    const port = await freePort();
    s3 = new S3rver({ port, address: "127.0.0.1", directory: join(dir, "s3"), silent: true, configureBuckets: [{ name: S3.bucket }] });
    await s3.run();
    s3Endpoint = `http://127.0.0.1:${port}`;
    system = await startLocalSystem({
      stateDir: join(dir, "system"), port: await freePort(), httpsPort: 0, sites: LOCAL_SITES.slice(0, 2),
      probeConfig: { builtins: { enabled: false } },
      vars: { S3_ENDPOINT: s3Endpoint, S3_BUCKET: S3.bucket, S3_REGION: S3.region, S3_ACCESS_KEY_ID: S3.accessKeyId, S3_SECRET_ACCESS_KEY: S3.secretAccessKey },
    });
    // Two one-off pings from both probes: four results in this hour (not straddling two).
    const now = new Date();
    if (now.getUTCMinutes() === 59) await new Promise((r) => setTimeout(r, (61 - now.getUTCSeconds()) * 1000));
    const ids: number[] = [];
    for (const target of ["127.0.0.1", "127.0.0.2"]) {
      const res = await fetch(`${system.edge.url}/api/v2/measurements/`, {
        method: "POST", headers: { "Content-Type": "application/json", Authorization: `Key ${system.key}` },
        body: JSON.stringify({ definitions: [{ type: "ping", af: 4, target, description: "archived", packets: 3, packet_interval: 50 }], probes: [{ type: "area", value: "WW", requested: 2 }], is_oneoff: true }),
      });
      ids.push(((await res.json()) as { measurements: number[] }).measurements[0]!);
    }
    const results = await until("four results", async () => {
      const lists = await Promise.all(ids.map(async (id) => (await (await fetch(`${system.edge.url}/api/v2/measurements/${id}/results/`)).json()) as PingResult[]));
      return lists.flat().length === 4 ? lists.flat() : null;
    }, 60_000, 300);
    hour = new Date(results[0]!.timestamp * 1000).toISOString().slice(0, 13);
    // Everything in R2 (not only in the controllers' outboxes) before the bundle is built.
    for (const shard of ["weur-0", "enam-0"]) {
      await fetch(`${system.edge.url}/admin/controllers/${shard}/flush`, { method: "POST", headers: { Authorization: `Bearer ${system.edge.secrets.ADMIN_TOKEN}` } });
    }
  }, 120_000);
  afterAll(async () => {
    await system?.stop();
    await s3?.close();
  });

  let manifest: Manifest;

  it("builds the hour's bundle with the CLI, byte-identical when rebuilt", async () => {
    const out = await vantage(["bundles", "build", "--type", "ping", "--hour", hour]);
    expect(out).toMatch(new RegExp(`^ping-${hour}00: 4 results, \\d+ bytes, sha256 [0-9a-f]{64}`));
    const date = hour.slice(0, 10);
    manifest = ((await (await fetch(`${system.edge.url}/api/v2/bundles/?type=ping&from=${date}`)).json()) as { results: Manifest[] }).results[0]!;
    expect(await vantage(["bundles", "build", "--type", "ping", "--hour", hour])).toContain(manifest.sha256);
  });

  it("pulls through the edge's signed link, resumes a partial file, and leaves a verified file alone", async () => {
    // Into `bundles/`, as docs/analysis.md does: its query runs on this directory below.
    const into = join(dir, "analysis", "bundles");
    const date = hour.slice(0, 10);
    expect(await vantage(["bundles", "pull", "--type", "ping", "--from", date, "--dir", into, "--via", "worker"])).toContain("1 bundle(s): 1 pulled");
    const file = join(into, "type=ping", `date=${date}`, `hour=${hour.slice(11)}`, `${manifest.name}.jsonl.gz`);
    expect(await sha(file)).toBe(manifest.sha256);
    expect(gunzipSync(readFileSync(file)).toString().trim().split("\n")).toHaveLength(4);
    expect(await vantage(["bundles", "pull", "--type", "ping", "--from", date, "--dir", into])).toContain("0 pulled (0 bytes), 1 already up to date");

    // An interrupted pull: half the file is there as .part; the next pull fetches only the rest.
    renameSync(file, `${file}.part`);
    truncateSync(`${file}.part`, Math.floor(manifest.bytes / 2));
    const resumed = await vantage(["bundles", "pull", "--type", "ping", "--from", date, "--dir", into, "--via", "worker"]);
    expect(resumed).toContain(`1 pulled (${manifest.bytes - Math.floor(manifest.bytes / 2)} bytes)`);
    expect(await sha(file)).toBe(manifest.sha256);
  });

  it("pulls through a presigned URL and straight from an S3-compatible store", async () => {
    // R2's S3 endpoint serves the bucket the Worker writes; here s3rver stands in for it, holding the same object.
    const bytes = new Uint8Array(await (await fetch(new URL((await fetch(`${system.edge.url}/api/v2/bundles/${manifest.name}/download?via=worker`, { redirect: "manual" })).headers.get("Location")!))).arrayBuffer());
    const client = new S3Client({ region: S3.region, endpoint: s3Endpoint, forcePathStyle: true, credentials: { accessKeyId: S3.accessKeyId, secretAccessKey: S3.secretAccessKey } });
    await client.send(new PutObjectCommand({ Bucket: S3.bucket, Key: manifest.key, Body: bytes }));

    const redirect = await fetch(`${system.edge.url}/api/v2/bundles/${manifest.name}/download`, { redirect: "manual" });
    expect(redirect.headers.get("Location")).toMatch(new RegExp(`^${s3Endpoint}/${S3.bucket}/bundles/.*X-Amz-Signature=`));
    const date = hour.slice(0, 10);
    for (const [name, extra, env] of [
      ["pulled-presigned", ["--via", "s3"], {}],
      ["pulled-s3", ["--s3-endpoint", s3Endpoint, "--s3-bucket", S3.bucket, "--s3-region", S3.region], { AWS_ACCESS_KEY_ID: S3.accessKeyId, AWS_SECRET_ACCESS_KEY: S3.secretAccessKey }],
    ] as const) {
      const into = join(dir, name);
      expect(await vantage(["bundles", "pull", "--type", "ping", "--from", date, "--dir", into, ...extra], env)).toContain("1 pulled");
      expect(await sha(join(into, "type=ping", `date=${date}`, `hour=${hour.slice(11)}`, `${manifest.name}.jsonl.gz`))).toBe(manifest.sha256);
    }
    // (s3rver checks the access key of a SigV4 URL but not its signature, so this proves the URL's addressing and
    // expiry, not the signing itself — which is the AWS SDK's, as R2 verifies it.)
    expect(new URL(redirect.headers.get("Location")!).searchParams.get("X-Amz-Expires")).toBe("900");
  });

  it("answers docs/analysis.md's DuckDB query on the pulled bundles, as computed by hand", async () => {
    const work = join(dir, "analysis");
    const probes = (await (await fetch(`${system.edge.url}/api/v2/probes/?page_size=500`)).json()) as { results: { id: number; country_code: string }[] };
    writeFileSync(join(work, "probes.json"), JSON.stringify(probes));
    const doc = readFileSync(join(ROOT, "docs/analysis.md"), "utf8");
    const sql = /```sql\n([\s\S]*?)```/.exec(doc)![1]!;
    const instance = await DuckDBInstance.create(":memory:");
    const db = await instance.connect();
    await db.run(`SET file_search_path = '${work}'`);
    const rows = (await db.runAndReadAll(sql)).getRowObjectsJson() as { country_code: string; date: string; hour: string | number; results: string | number; median_rtt_ms: number; p95_rtt_ms: number }[];

    // By hand: every result line of every pulled bundle, grouped by its probe's country.
    const country = new Map(probes.results.map((p) => [p.id, p.country_code]));
    const files = readdirSync(work, { recursive: true }).map(String).filter((f) => f.endsWith(".jsonl.gz"));
    const byCountry = new Map<string, number[]>();
    for (const f of files) {
      for (const line of gunzipSync(readFileSync(join(work, f))).toString().trim().split("\n")) {
        const r = JSON.parse(line) as PingResult;
        if (r.avg < 0) continue;
        const list = byCountry.get(country.get(r.prb_id)!) ?? [];
        byCountry.set(country.get(r.prb_id)!, [...list, r.avg]);
      }
    }
    const quantile = (xs: number[], q: number) => {
      const s = [...xs].sort((a, b) => a - b), pos = (s.length - 1) * q, lo = Math.floor(pos);
      return s[lo]! + (s[Math.min(lo + 1, s.length - 1)]! - s[lo]!) * (pos - lo);
    };
    expect(rows.map((r) => r.country_code).sort()).toEqual([...byCountry.keys()].sort());
    for (const r of rows) {
      const xs = byCountry.get(r.country_code)!;
      expect(Number(r.results)).toBe(xs.length);
      expect(String(r.date)).toBe(hour.slice(0, 10));
      expect(Number(r.hour)).toBe(Number(hour.slice(11)));
      // The query rounds to 3 decimals: within half a thousandth of the exact figure.
      expect(Math.abs(r.median_rtt_ms - quantile(xs, 0.5))).toBeLessThanOrEqual(0.0005 + 1e-12);
      expect(Math.abs(r.p95_rtt_ms - quantile(xs, 0.95))).toBeLessThanOrEqual(0.0005 + 1e-12);
    }
    expect(statSync(join(work, "probes.json")).size).toBeGreaterThan(0);
  });
});
