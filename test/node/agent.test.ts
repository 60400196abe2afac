// The agent's own parts on this machine: its key never leaves its state directory (mode 0600), the spool survives
// restarts and forgets only what was acknowledged, and ping measures for real over ICMP in Atlas's format.
import { execFileSync, spawn } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { appendFileSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { compactVerify, importJWK } from "jose";
import { describe, expect, it } from "vitest";
import { ControllerMessage, PingResult, Result, type Submission } from "../../protocol/index.ts";
import { backoffDelay, busyFor } from "../../probe-agent/agent.ts";
import { AgentConfig } from "../../probe-agent/config.ts";
import { errorResult } from "../../probe-agent/measure/index.ts";
import { loadIdentity, signChallenge, verifyEdgeToken } from "../../probe-agent/identity.ts";
import { issueAssignment } from "../../durable-objects/tokens.ts";
import { ping } from "../../probe-agent/measure/ping.ts";
import { resolveTarget } from "../../probe-agent/measure/resolve.ts";
import { Spool } from "../../probe-agent/spool.ts";
import { netnsUnavailable, silentLink } from "./netns.ts";
import { icmpUnavailable, ipv6LoopbackUnavailable, tempDir, until } from "./system.ts";

const never = new AbortController().signal;

describe("identity", () => {
  it("is made once, kept mode 0600, and stable across restarts", () => {
    const dir = tempDir("id");
    const a = loadIdentity(dir);
    const b = loadIdentity(dir);
    expect(a.publicKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(b.publicKey).toBe(a.publicKey);
    expect(statSync(join(dir, "probe_key.pem")).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(["probe_key.pem"]);
    expect(readFileSync(join(dir, "probe_key.pem"), "utf8")).toContain("BEGIN PRIVATE KEY");
    expect(loadIdentity(tempDir("id2")).publicKey).not.toBe(a.publicKey);
  });

  it("signs registration proofs the edge's verifier (jose) accepts", async () => {
    const id = loadIdentity(tempDir("id"));
    const proof = signChallenge(id, 42, "n0nce");
    const key = await importJWK({ kty: "OKP", crv: "Ed25519", x: id.publicKey, alg: "EdDSA" }, "EdDSA");
    const { payload } = await compactVerify(proof, key, { algorithms: ["EdDSA"] });
    expect(JSON.parse(new TextDecoder().decode(payload))).toEqual({ probe_id: 42, nonce: "n0nce" });
  });

  it("accepts only the pinned edge's unexpired tokens for itself and the shard it was sent to", async () => {
    const edgeKey = (() => {
      const { privateKey } = generateKeyPairSync("ed25519");
      const jwk = privateKey.export({ format: "jwk" }) as { kty: "OKP"; crv: "Ed25519"; x: string; d: string };
      return { private: JSON.stringify(jwk), public: { kty: jwk.kty, crv: jwk.crv, x: jwk.x } };
    })();
    const other = generateKeyPairSync("ed25519").privateKey.export({ format: "jwk" });
    const claims = { sub: "7", aud: "controller:eu-1", country_code: "NL", asn_v4: 3333, prefix_v4: "193.0.0.0/21" };
    const { token, expires } = await issueAssignment(edgeKey.private, claims);
    const expect7 = { audience: "controller:eu-1", subject: "7" };
    expect(() => verifyEdgeToken(token, edgeKey.public, expect7)).not.toThrow();
    const byOther = (await issueAssignment(JSON.stringify(other), claims)).token;
    expect(() => verifyEdgeToken(byOther, edgeKey.public, expect7)).toThrow(/signature does not verify with the pinned edge key/);
    expect(() => verifyEdgeToken(token, edgeKey.public, { ...expect7, audience: "controller:us-1" })).toThrow(/is for "controller:eu-1", not controller:us-1/);
    expect(() => verifyEdgeToken(token, edgeKey.public, { ...expect7, subject: "8" })).toThrow(/is for probe "7", not 8/);
    expect(() => verifyEdgeToken(token, edgeKey.public, expect7, expires)).toThrow(/expired/);
    // Claims changed after signing (another probe's id) no longer match the signature.
    const [h, , sig] = token.split(".");
    const forged = Buffer.from(JSON.stringify({ ...claims, sub: "8", exp: expires })).toString("base64url");
    expect(() => verifyEdgeToken(`${h}.${forged}.${sig}`, edgeKey.public, { ...expect7, subject: "8" })).toThrow(/signature does not verify/);
    expect(() => verifyEdgeToken("not-a-token", edgeKey.public, expect7)).toThrow(/not a compact JWS/);
  });
});

describe("commands the probe refuses", () => {
  it("answers a command that fails validation with an error result of its type", () => {
    const ctx = { msmId: 10_000_001, probeId: 1_000_001, lts: 5, step: null };
    for (const type of ["ping", "traceroute", "dns", "ntp", "http", "sslcert"]) {
      const r = errorResult({ type, af: 4, target: "192.0.2.1" }, ctx, "invalid command at /assignment/spec/packets: Too big");
      expect(Result.parse(r), type).toEqual(r);
      expect(JSON.stringify(r)).toContain("Too big");
    }
    expect(errorResult({ type: "telepathy" }, ctx, "x")).toBeNull();
  });

  it("refuses a spec field it does not know instead of measuring without it (an older agent meeting a newer edge)", () => {
    const measure = (spec: Record<string, unknown>) => ControllerMessage.safeParse({
      type: "measure", assignment: { msm_id: 10_000_001, spec, interval: null, spread: 0, start_time: 0, stop_time: null },
    });
    const dns = { type: "dns", af: 4, target: "192.0.2.1", query_type: "A", query_argument: "example.net" };
    expect(measure(dns).success).toBe(true);
    const newer = measure({ ...dns, prepend_probe_id: true });
    expect(newer.success).toBe(false);
    expect(newer.error!.issues[0]).toMatchObject({ code: "unrecognized_keys", keys: ["prepend_probe_id"], path: ["assignment", "spec"] });
  });

  it("refuses destinations the probe's host forbids, with the prefix named", async () => {
    const r = await ping({ type: "ping", af: 4, target: "127.0.0.1", packets: 1, size: 48, packet_interval: 1000, resolve_on_probe: false },
      { msmId: 1, probeId: 1, step: null, lts: 0, allowPrivate: true, forbidden: ["10.0.0.0/8", "127.0.0.0/8"], signal: never });
    expect(r.result).toEqual([{ error: "destination 127.0.0.1 is in 127.0.0.0/8, which this probe's host forbids" }]);
    expect(() => AgentConfig.parse({ probe_id: 1, registration_urls: ["http://x"], edge_public_jwk: { kty: "OKP", crv: "Ed25519", x: "a" },
      state_dir: "/tmp", forbidden_targets: ["my lan"] })).toThrowError(/forbidden target must be a prefix/);
  });
});

describe("WebSocket masking", () => {
  it("masks and unmasks in the addon (ws's bufferutil in the agent's bundle) exactly as ws's own code does", async () => {
    const { mask, unmask } = await import("../../probe-agent/native/index.ts");
    const req = createRequire(import.meta.url);
    const ws = req(join(dirname(req.resolve("ws")), "lib", "buffer-util.js")) as { mask: typeof mask; unmask: typeof unmask };
    const data = randomBytes(1001), key = randomBytes(4);
    const [ours, theirs] = [Buffer.alloc(1010), Buffer.alloc(1010)];
    mask(data, key, ours, 9, 1001);
    ws.mask(data, key, theirs, 9, 1001);
    expect(ours.equals(theirs)).toBe(true);
    unmask(ours.subarray(9), key);
    expect(ours.subarray(9).equals(data)).toBe(true);
    expect(() => mask(data, key, Buffer.alloc(10), 0, 1001)).toThrow(/too short/);
  });
});

describe("reconnect backoff", () => {
  it("waits as long as a busy controller asks and keeps its token for it; any other refusal means registering again", () => {
    expect(busyFor(503, "17")).toBe(17);
    expect(busyFor(503, " 5 ")).toBe(5);
    expect(busyFor(503, "86400")).toBe(300);  // a minute-long outage is not a day's silence
    // Without Retry-After a 503 is "controller full" or "handover failed: register again"; an HTTP date is not heeded.
    expect(busyFor(503, undefined)).toBe(0);
    expect(busyFor(503, "Wed, 21 Oct 2026 07:28:00 GMT")).toBe(0);
    expect(busyFor(503, "-3")).toBe(0);
    expect(busyFor(403, "17")).toBe(0);
  });

  it("grows exponentially to its cap, with full jitter", () => {
    const ceilings = [0, 1, 2, 3, 10, 100].map((n) => Math.round(backoffDelay(n, 1000, 60_000, () => 1)));
    expect(ceilings).toEqual([1000, 2000, 4000, 8000, 60_000, 60_000]);
    expect(backoffDelay(5, 1000, 60_000, () => 0)).toBe(0);
    // 10,000 probes dropped at once by a deploy come back spread over the whole window, not in a wave.
    const delays = Array.from({ length: 10_000 }, () => backoffDelay(6, 1000, 60_000));
    const buckets = Array.from({ length: 6 }, (_, i) => delays.filter((d) => d >= i * 10_000 && d < (i + 1) * 10_000).length);
    for (const b of buckets) expect(b).toBeGreaterThan(1200);
    expect(Math.max(...delays)).toBeLessThan(60_000);
  });
});

describe("spool", () => {
  const result = (msm: number, ts: number): PingResult => ({
    fw: 5020, mver: "1.0.0", lts: -1, msm_id: msm, msm_name: "Ping", prb_id: 1000001, timestamp: ts, from: "", src_addr: "",
    dst_addr: "127.0.0.1", dst_name: "127.0.0.1", af: 4, type: "ping", proto: "ICMP", size: 48, sent: 1, rcvd: 0, dup: 0,
    min: -1, avg: -1, max: -1, step: null, result: [{ x: "*" }],
  });

  it("keeps unacknowledged results across restarts, in order, and never reuses a sequence number", async () => {
    const dir = tempDir("spool");
    const s = new Spool(dir);
    const seqs = (await Promise.all([1, 2, 3, 4].map((i) => s.add(result(10_000_001, 1_700_000_000 + i))))).map((x) => x.seq);
    expect(seqs).toEqual([1, 2, 3, 4]);
    s.ack(2);
    s.drop(4);
    expect(s.pending().map((p) => p.seq)).toEqual([3]);
    await s.close();
    // A dropped result is not kept in memory; on disk it stays until acknowledged past, and a restart offers it again
    // (the controller refuses it again): what a restart offers is exactly what was not acknowledged.
    const after = new Spool(dir);
    expect(after.pending().map((p) => p.seq)).toEqual([3, 4]);
    expect((JSON.parse(after.pending()[0]!.json) as Submission).result.timestamp).toBe(1_700_000_003);
    after.ack(4);
    await after.close();
    expect(new Spool(dir).size).toBe(0);
    // Everything acknowledged, then a restart: numbering continues, so the edge's high-water mark still holds.
    const again = new Spool(dir);
    expect((await again.add(result(10_000_001, 1_700_000_010))).seq).toBe(5);
    await again.close();
    expect(Spool.unacknowledged(dir).map((p) => p.seq)).toEqual([5]);
  });

  it("commits results finished together with one write, and survives a write torn by a crash", async () => {
    const dir = tempDir("spool");
    const s = new Spool(dir);
    await Promise.all(Array.from({ length: 100 }, (_, i) => s.add(result(10_000_001 + i, 1_700_000_000))));
    await s.close();
    const segments = readdirSync(join(dir, "spool")).filter((f) => f.endsWith(".log"));
    expect(segments).toEqual(["0000000000000001.log"]);
    const path = join(dir, "spool", segments[0]!);
    // The crash: half of a 101st line reached the disk.
    appendFileSync(path, '{"seq":101,"result":{"fw":50');
    const after = new Spool(dir);
    expect(after.pending().map((p) => p.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    // The torn line is cut off, so the next result starts on a line of its own.
    expect((await after.add(result(10_000_200, 1_700_000_001))).seq).toBe(101);
    await after.close();
    expect(Spool.unacknowledged(dir).map((p) => p.seq).slice(-2)).toEqual([100, 101]);
  });

  it("keeps where each result is, not its text, and reads it back exactly from the journal, across segments and restarts", async () => {
    const dir = tempDir("spool");
    const s = new Spool(dir);
    // Over 1 MB in one commit, so the next commit starts a second segment; some names are not ASCII (byte offsets).
    await Promise.all(Array.from({ length: 3300 }, (_, i) => s.add({ ...result(10_000_001 + i, 1_700_000_000), dst_name: i % 7 ? "127.0.0.1" : "bücher.example" })));
    await Promise.all([1, 2].map((i) => s.add(result(10_009_000 + i, 1_700_000_001))));
    expect(readdirSync(join(dir, "spool")).filter((f) => f.endsWith(".log"))).toHaveLength(2);
    const journal = Spool.unacknowledged(dir).map((x) => JSON.stringify(x));
    expect(journal).toHaveLength(3302);
    expect(s.pending().map((p) => p.json)).toEqual(journal);
    expect(s.pending(3299, 2).map((p) => [p.seq, p.msmId])).toEqual([[3300, 10_003_300], [3301, 10_009_001]]);
    s.ack(3000);
    expect(s.countUpTo(3301)).toBe(301);
    expect([s.hasAfter(3301), s.hasAfter(3302)]).toEqual([true, false]);
    // Whether a measurement's result still waits (a resent one-off is not run twice): not once acknowledged or dropped.
    expect([s.holds(10_000_001), s.holds(10_003_300), s.holds(10_009_001)]).toEqual([false, true, true]);
    s.drop(3300);
    expect(s.holds(10_003_300)).toBe(false);
    expect(s.pending().map((p) => p.seq)).toEqual([...Array.from({ length: 299 }, (_, i) => 3001 + i), 3301, 3302]);
    expect(s.size).toBe(301);
    await s.close();
    // A restart offers again what was not acknowledged (a dropped result too: the controller refuses it again).
    expect(new Spool(dir).pending().map((p) => p.json)).toEqual(journal.slice(3000));
  });

  it("lets results added within its commit window share the next write, and closing does not wait for the window", async () => {
    const dir = tempDir("spool");
    const s = new Spool(dir, 300);
    await s.add(result(10_000_001, 1_700_000_000));  // the first commit starts at once
    const t0 = performance.now();
    const later = [s.add(result(10_000_002, 1_700_000_000)), s.add(result(10_000_003, 1_700_000_000))];
    await new Promise((r) => setTimeout(r, 50));
    expect(Spool.unacknowledged(dir).map((p) => p.seq)).toEqual([1]);
    expect((await Promise.all(later)).map((e) => e.seq)).toEqual([2, 3]);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(250);
    expect(Spool.unacknowledged(dir).map((p) => p.seq)).toEqual([1, 2, 3]);
    const last = s.add(result(10_000_004, 1_700_000_000));
    const closing = performance.now();
    await s.close();
    expect(performance.now() - closing).toBeLessThan(250);
    expect((await last).seq).toBe(4);
    expect(Spool.unacknowledged(dir).map((p) => p.seq)).toEqual([1, 2, 3, 4]);
  });

  it("deletes a segment once everything in it is acknowledged", async () => {
    const dir = tempDir("spool");
    const s = new Spool(dir);
    const big = { ...result(10_000_001, 1_700_000_000), result: Array.from({ length: 16 }, () => ({ x: "*" as const })) };
    // Enough results to fill more than one 1 MiB segment.
    for (let i = 0; i < 30; i++) await Promise.all(Array.from({ length: 200 }, () => s.add(big)));
    const segments = () => readdirSync(join(dir, "spool")).filter((f) => f.endsWith(".log"));
    expect(segments().length).toBeGreaterThan(1);
    s.ack(6000);
    expect(segments()).toHaveLength(1);
    await s.close();
    expect(new Spool(dir).size).toBe(0);
    expect(Spool.unacknowledged(dir)).toEqual([]);
  });

  it("starts on a journal with a damaged line: keeps every whole line, says what it dropped, never reuses a seq", async () => {
    const dir = tempDir("spool-damaged");
    const s = new Spool(dir);
    for (let i = 1; i <= 5; i++) await s.add(result(10_000_001, 1_700_000_000 + i));
    await s.close();
    const [segment] = readdirSync(join(dir, "spool")).filter((f) => f.endsWith(".log"));
    const path = join(dir, "spool", segment!);
    const lines = readFileSync(path, "utf8").split("\n");
    lines[2] = lines[2]!.slice(0, 20) + "\u0000\u0000garbage" + lines[2]!.slice(30);  // line 3 (seq 3) damaged on disk
    writeFileSync(path, lines.join("\n"));
    const reports: string[] = [];
    const after = new Spool(dir, 0, (m) => reports.push(m));
    expect(after.pending().map((p) => p.seq)).toEqual([1, 2, 4, 5]);
    expect(after.dropped).toEqual([{ path, line: 3 }]);
    expect(reports).toEqual([expect.stringContaining(`dropped a damaged journal line (${path}, line 3)`)]);
    // Numbering goes on past anything the damaged line could have held.
    expect((await after.add(result(10_000_001, 1_700_000_006))).seq).toBeGreaterThan(5);
    await after.close();
  });

  it("keeps results in memory while the disk is full, reports it, and writes them in order once there is room", async () => {
    if (process.getuid?.() !== 0) throw new Error("this test mounts a small tmpfs: it needs root (CI runs as root)");
    const dir = tempDir("spool-full");
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=256k", "vantage-spool-test", dir]);
    try {
      const reports: string[] = [];
      const s = new Spool(dir, 0, (m) => reports.push(m));
      // Then the filesystem fills up, to the last byte.
      const filler = join(dir, "filler");
      try { writeFileSync(filler, Buffer.alloc(512 * 1024)); } catch { /* ENOSPC: full, as wanted */ }
      const stored: number[] = [];
      const adds = Array.from({ length: 40 }, (_, i) => s.add(result(10_000_001, 1_700_000_000 + i)).then((e) => { stored.push(e.seq); }));
      await until("the disk full to be reported", async () => reports.some((m) => /cannot write \d+ results \(ENOSPC\)/.test(m)), 10_000, 50);
      expect(stored).toEqual([]);
      // Room again: everything is written, in order, nothing lost, and the journal reads back whole.
      rmSync(filler);
      await Promise.all(adds);
      expect(stored).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      await s.close();
      const again = new Spool(dir);
      expect(again.pending().map((p) => p.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      expect(again.dropped).toEqual([]);
      await again.close();
    } finally {
      execFileSync("umount", ["--lazy", dir]);
    }
  });
});

describe("ping over ICMP", () => {
  const noIcmp = icmpUnavailable();
  if (noIcmp) console.warn(`skipping ICMP ping tests: ${noIcmp}`);

  it.skipIf(noIcmp !== null)("measures 127.0.0.1 and reports every Atlas ping field", async () => {
    const r = await ping({ type: "ping", af: 4, target: "127.0.0.1", packets: 4, size: 100, packet_interval: 200, resolve_on_probe: false },
      { msmId: 10_000_001, probeId: 1_000_001, step: null, lts: 3, allowPrivate: true, signal: never });
    expect(PingResult.parse(r)).toEqual(r);
    expect(r).toMatchObject({
      fw: 5020, mver: "1.0.0", lts: 3, type: "ping", msm_name: "Ping", msm_id: 10_000_001, prb_id: 1_000_001, af: 4, proto: "ICMP",
      src_addr: "127.0.0.1", dst_addr: "127.0.0.1", dst_name: "127.0.0.1", size: 100, ttl: 64, sent: 4, rcvd: 4, dup: 0, step: null,
    });
    expect(r.result).toHaveLength(4);
    for (const reply of r.result) expect((reply as { rtt: number }).rtt).toBeGreaterThan(0);
    expect(r.min).toBeLessThanOrEqual(r.avg);
    expect(r.avg).toBeLessThanOrEqual(r.max);
    expect(r.max).toBeLessThan(50);
    expect(Math.abs(r.timestamp - Date.now() / 1000)).toBeLessThan(5);
  });

  it.skipIf(noIcmp !== null || ipv6LoopbackUnavailable() !== null)("measures ::1 over ICMPv6", async () => {
    const r = await ping({ type: "ping", af: 6, target: "::1", packets: 2, size: 48, packet_interval: 100, resolve_on_probe: false },
      { msmId: 10_000_002, probeId: 1_000_001, step: 240, lts: 0, allowPrivate: true, signal: never });
    expect(PingResult.parse(r)).toEqual(r);
    expect(r).toMatchObject({ af: 6, dst_name: "::1", dst_addr: "::1", src_addr: "::1", sent: 2, rcvd: 2, step: 240 });
  });

  it.skipIf(noIcmp !== null)("resolves a name on the probe and reports ttr", async () => {
    const r = await ping({ type: "ping", af: 4, target: "localhost", packets: 1, size: 48, packet_interval: 100, resolve_on_probe: true },
      { msmId: 10_000_003, probeId: 1_000_001, step: null, lts: 0, allowPrivate: true, signal: never });
    expect(r).toMatchObject({ dst_name: "localhost", dst_addr: "127.0.0.1", rcvd: 1 });
    expect(r.ttr).toBeGreaterThanOrEqual(0);
  });

  // Every train of a family shares one ICMP socket (probe-agent/native/icmp.cc): a reply must reach its own train.
  it.skipIf(noIcmp !== null)("gives concurrent pings to one destination each its own replies, and none of the system ping's", async () => {
    const system = spawn("ping", ["-n", "-c", "8", "-i", "0.2", "127.0.0.1"], { stdio: "ignore" });
    try {
      const runs = await Promise.all(Array.from({ length: 6 }, (_, i) => ping(
        { type: "ping", af: 4, target: "127.0.0.1", packets: 5, size: 48 + i, packet_interval: 150, resolve_on_probe: false },
        { msmId: 10_000_010 + i, probeId: 1_000_001, step: null, lts: 0, allowPrivate: true, signal: never })));
      for (const r of runs) {
        expect(r).toMatchObject({ sent: 5, rcvd: 5, dup: 0 });
        expect(r.result).toHaveLength(5);
      }
    } finally {
      system.kill();
    }
  });

  it("reports a name that does not resolve as an error result", async () => {
    const r = await ping({ type: "ping", af: 4, target: "no-such-host.invalid", packets: 1, size: 48, packet_interval: 100, resolve_on_probe: true },
      { msmId: 1, probeId: 1, step: null, lts: 0, allowPrivate: true, signal: never });
    expect(r.result).toHaveLength(1);
    expect((r.result[0] as { error: string }).error).toMatch(/^dns resolution failed: /);
    expect(r.dst_addr).toBe("");
  });

  const noNetns = netnsUnavailable();
  if (noNetns) console.warn(`skipping the unanswered-ping test: ${noNetns}`);
  it.skipIf(noNetns !== null)("reports unanswered packets as {x:*} with min/avg/max -1", () => {
    const ns = silentLink("silent");
    try {
      const spec = { type: "ping", af: 4, target: "10.9.0.2", packets: 3, size: 48, packet_interval: 100, resolve_on_probe: false };
      const r = JSON.parse(ns.exec(process.execPath, [join(import.meta.dirname, "fixtures/measure-once.ts"), JSON.stringify(spec)])) as PingResult;
      expect(r).toMatchObject({ src_addr: "10.9.0.1", dst_addr: "10.9.0.2", sent: 3, rcvd: 0, dup: 0, min: -1, avg: -1, max: -1 });
      expect(r.result).toEqual([{ x: "*" }, { x: "*" }, { x: "*" }]);
      expect(r.ttl).toBeUndefined();
    } finally {
      ns.remove();
    }
  });

  it.skipIf(noIcmp !== null)("stops within a poll slice when cancelled", async () => {
    const stop = new AbortController();
    const started = performance.now();
    setTimeout(() => stop.abort(), 300);
    const r = await ping({ type: "ping", af: 4, target: "127.0.0.1", packets: 16, size: 48, packet_interval: 1000, resolve_on_probe: false },
      { msmId: 1, probeId: 1, step: null, lts: 0, allowPrivate: true, signal: stop.signal });
    expect(performance.now() - started).toBeLessThan(1000);
    expect(r.result).toEqual([{ error: "cancelled" }]);
  });

  it("refuses non-public destinations unless the probe runs in local mode", async () => {
    const r = await ping({ type: "ping", af: 4, target: "127.0.0.1", packets: 1, size: 48, packet_interval: 1000, resolve_on_probe: false },
      { msmId: 1, probeId: 1, step: null, lts: 0, allowPrivate: false, signal: never });
    expect(r.result).toEqual([{ error: expect.stringMatching(/^destination 127\.0\.0\.1 is Loopback \(127\.0\.0\.0\/8, IANA IPv4 Special-Purpose Address Registry, RFC 1122\): not a public address$/) }]);
    expect([r.sent, r.rcvd, r.min, r.avg, r.max]).toEqual([0, 0, -1, -1, -1]);
  });

  // The agent judges the address it is about to send to, whatever spelling or name led there (protocol/address-policy.ts).
  it.each([
    ["127.1", 4], ["2130706433", 4], ["0x7f.0.0.1", 4], ["0177.0.0.1", 4], ["169.254.169.254", 4], ["0", 4],
    ["::ffff:127.0.0.1", 6], ["::ffff:7f00:1", 6], ["64:ff9b::7f00:1", 6], ["2002:7f00:1::", 6], ["::127.0.0.1", 6], ["fe80::1%lo", 6],
    ["localhost", 4],
  ] as const)("refuses %s outside local mode, judged by the address it reaches", async (target, af) => {
    const r = await resolveTarget(target, af, { allowPrivate: false }, false);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatch(/not a public address$/);
  });

  it("resolves a name once and hands over the address it checked (no second lookup)", async () => {
    const r = await resolveTarget("localhost", 4, { allowPrivate: true }, true);
    expect(r).toMatchObject({ ok: true, addr: "127.0.0.1" });
  });
});
