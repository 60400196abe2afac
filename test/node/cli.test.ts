// The operator's path with the real commands: a probe prints its public key, the operator enrolls it with
// `vantage enroll-probe`, disables it, and the edge refuses its registration with the reason; `vantage create-key`
// makes a key the API accepts. Also: wrangler accepts the deploy configuration as complete.
import { execFile } from "node:child_process";
import { copyFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUNDLE, NODE_FLAGS } from "../../probe-agent/build.ts";
import { type ReleaseManifest, verifyRelease } from "../../protocol/release.ts";
import { type Edge, ROOT, startEdge } from "../../scripts/local.ts";
import { freePort, tempDir } from "./system.ts";

const run = promisify(execFile);
const node = (script: string, args: string[], env: Record<string, string> = {}) =>
  run(process.execPath, [join(ROOT, script), ...args], { env: { ...process.env, ...env }, encoding: "utf8" });
/** The probe agent as it ships (its bundle, built by the node tests' global setup). */
const agent = (args: string[]) => run(process.execPath, [...NODE_FLAGS, BUNDLE, ...args], { encoding: "utf8" });

describe("operator and probe commands against a running edge", () => {
  const state = tempDir("cli");
  let edge: Edge;
  beforeAll(async () => { edge = await startEdge({ stateDir: state, port: await freePort(), quiet: true }); });
  afterAll(async () => { await edge?.stop(); });

  it("enrolls a probe by the key it prints, and disables and re-enables it", async () => {
    const probeState = join(state, "probe");
    const { stdout: publicKey } = await agent(["enroll", "--state", probeState]);
    expect(publicKey.trim()).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await agent(["enroll", "--state", probeState])).stdout).toBe(publicKey);

    const env = { VANTAGE_EDGE: edge.url, VANTAGE_ADMIN_TOKEN: edge.secrets.ADMIN_TOKEN };
    const { stdout } = await node("cli/vantage.ts", ["enroll-probe", `--public-key=${publicKey.trim()}`, "--country", "NL", "--asn", "64496", "--lat", "52.4", "--lon", "4.9"], env);
    const id = Number(stdout.trim());
    const probe = (await (await fetch(`${edge.url}/api/v2/probes/${id}/`)).json()) as { country_code: string; asn_v4: number; status: { name: string } };
    expect(probe).toMatchObject({ country_code: "NL", asn_v4: 64496, status: { name: "Never Connected" } });

    const again = node("cli/vantage.ts", ["enroll-probe", `--public-key=${publicKey.trim()}`], env);
    await expect(again).rejects.toMatchObject({ stderr: expect.stringContaining(`already enrolled as probe ${id}`) });
    const bad = node("cli/vantage.ts", ["enroll-probe", `--public-key=${publicKey.trim()}`, "--country", "Netherlands"], env);
    await expect(bad).rejects.toMatchObject({ stderr: expect.stringContaining("/country_code") });
    await expect(node("cli/vantage.ts", ["create-key", "--label", "x"], { VANTAGE_EDGE: edge.url, VANTAGE_ADMIN_TOKEN: "wrong" }))
      .rejects.toMatchObject({ stderr: expect.stringContaining("403") });

    await node("cli/vantage.ts", ["disable-probe", String(id)], env);
    const refused = await fetch(`${edge.url}/probe/v1/challenge`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ probe_id: id }) });
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { detail: string } }).error.detail).toBe(`probe ${id} is disabled`);
    await node("cli/vantage.ts", ["enable-probe", String(id)], env);
    expect((await fetch(`${edge.url}/probe/v1/challenge`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ probe_id: id }) })).status).toBe(200);
  });

  it("creates an API key the Atlas API accepts", async () => {
    const { stdout } = await node("cli/vantage.ts", ["create-key", "--label", "researcher"], { VANTAGE_EDGE: edge.url, VANTAGE_ADMIN_TOKEN: edge.secrets.ADMIN_TOKEN });
    const res = await fetch(`${edge.url}/api/v2/measurements/my/`, { headers: { Authorization: `Key ${stdout.trim()}` } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { count: number }).count).toBe(0);
  });
});

describe("signed releases of the agent", () => {
  it("signs the shipped bundle; a probe's check refuses it altered, with an edited manifest, or under another key", async () => {
    const dir = tempDir("release");
    const keys = (await node("cli/vantage.ts", ["release-keys"])).stdout;
    const jwk = (name: string) => JSON.parse(new RegExp(`${name}='(.*)'`).exec(keys)![1]!) as JsonWebKey;
    const bundle = join(dir, "vantage-probe.mjs");
    copyFileSync(BUNDLE, bundle);
    await node("cli/vantage.ts", ["sign-release", "--bundle", bundle, "--version", "0.2.0"], { RELEASE_PRIVATE_JWK: JSON.stringify(jwk("RELEASE_PRIVATE_JWK")) });
    const manifest = JSON.parse(readFileSync(`${bundle}.manifest.json`, "utf8")) as ReleaseManifest;
    const bytes = new Uint8Array(readFileSync(bundle));
    const pinned = jwk("RELEASE_PUBLIC_JWK");
    expect(manifest).toMatchObject({ version: "0.2.0", size: bytes.byteLength, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(await verifyRelease(bytes, manifest, pinned)).toBeNull();

    const altered = bytes.slice();
    altered[100] = altered[100]! ^ 1;
    expect(await verifyRelease(altered, manifest, pinned)).toMatch(/SHA-256 is not the signed one/);
    expect(await verifyRelease(bytes, { ...manifest, version: "9.9.9" }, pinned)).toMatch(/signature does not verify/);
    expect(await verifyRelease(bytes, { ...manifest, signature: "" }, pinned)).toMatch(/signature does not verify/);
    const other = JSON.parse(/RELEASE_PUBLIC_JWK='(.*)'/.exec((await node("cli/vantage.ts", ["release-keys"])).stdout)![1]!) as JsonWebKey;
    expect(await verifyRelease(bytes, manifest, other)).toMatch(/signature does not verify/);
    await expect(node("cli/vantage.ts", ["sign-release", "--bundle", bundle, "--version", "latest"], { RELEASE_PRIVATE_JWK: JSON.stringify(jwk("RELEASE_PRIVATE_JWK")) }))
      .rejects.toMatchObject({ stderr: expect.stringContaining('version must look like 1.2.3 (got "latest")') });
  });
});

describe("deployment configuration", () => {
  it("is complete enough for wrangler to bundle it with every binding", async () => {
    const out = tempDir("deploy");
    const { stdout, stderr } = await run(process.execPath, [join(ROOT, "node_modules/wrangler/bin/wrangler.js"), "deploy", "--dry-run", "--outdir", out], {
      cwd: ROOT, encoding: "utf8", env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
    });
    const text = stdout + stderr;
    for (const binding of ["env.BRAIN (Brain)", "env.CONTROLLER (Controller)", "env.REGISTRY (Registry)", "env.RESULTS (vantage-results)"]) {
      expect(text).toContain(binding);
    }
    expect(text).toMatch(/--dry-run: exiting now/);
  });
});
