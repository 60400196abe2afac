// Signed agent releases, end to end with a real agent: the operator builds, signs, publishes and rolls out releases
// with `vantage`; the edge offers them; the agent (as it ships, under a restarting supervisor like systemd) refuses
// a tampered bundle, switches in place to a good one, and rolls back one that dies, and each rollout ends as the
// probe's reports say.
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compareVersions } from "../../probe-agent/release.ts";
import type { PingResult } from "../../protocol/index.ts";
import { type LocalSystem, ROOT, startLocalSystem } from "../../scripts/local.ts";
import { freePort, icmpUnavailable, tempDir, until } from "./system.ts";

const run = promisify(execFile);
const dir = tempDir("release");

type Rollout = { version: string; state: string; reason: string | null; probes: { running: number; refused: number; rolled_back: number }; failures: { state: string; detail: string }[] };

describe("release versions", () => {
  it("orders versions part by part, a pre-release before its release", () => {
    expect(["0.10.0", "0.2.0", "0.2.0-rc.1", "1.0.0", "0.2.1"].sort(compareVersions)).toEqual(["0.2.0-rc.1", "0.2.0", "0.2.1", "0.10.0", "1.0.0"]);
    expect(compareVersions("0.3.0", "0.3.0")).toBe(0);
    expect(["0.2.0-rc.10", "0.2.0-rc.9"].sort(compareVersions)).toEqual(["0.2.0-rc.9", "0.2.0-rc.10"]);
  });
});

describe("signed releases on a real agent", () => {
  let system: LocalSystem;
  let releaseKey: string;
  const vantage = async (args: string[]) => (await run(process.execPath, [join(ROOT, "cli/vantage.ts"), ...args], {
    encoding: "utf8", env: { ...process.env, VANTAGE_EDGE: system.edge.url, VANTAGE_ADMIN_TOKEN: system.edge.secrets.ADMIN_TOKEN, RELEASE_PRIVATE_JWK: releaseKey },
  })).stdout;
  const rollout = async () => JSON.parse(await vantage(["rollout-status"])) as Rollout;
  const agent = () => system.agents[0]!;
  /** The version the agent's latest log lines carry. */
  const runningVersion = () => [...agent().output().matchAll(/probe \d+ \(([^)]+)\):/g)].at(-1)?.[1];

  beforeAll(async () => {
    const keys = (await run(process.execPath, [join(ROOT, "cli/vantage.ts"), "release-keys"], { encoding: "utf8" })).stdout;
    releaseKey = /RELEASE_PRIVATE_JWK='(.*)'/.exec(keys)![1]!;
    const publicJwk = JSON.parse(/RELEASE_PUBLIC_JWK='(.*)'/.exec(keys)![1]!) as JsonWebKey;
    system = await startLocalSystem({
      stateDir: dir, port: await freePort(), httpsPort: 0, sites: [{ country_code: "NL", asn_v4: 64496, prefix_v4: "192.0.2.0/24", latitude: 52.37, longitude: 4.9, description: "release probe" }],
      probeConfig: { release_public_jwk: publicJwk, builtins: { enabled: false } },
    });
  }, 120_000);
  afterAll(async () => { await system?.stop(); });

  /** Builds release `version` of the agent and signs it. */
  const buildSigned = async (version: string) => {
    const bundle = join(dir, `vantage-probe-${version}.mjs`);
    await vantage(["build-release", "--version", version, "--out", bundle]);
    await vantage(["sign-release", "--bundle", bundle, "--version", version]);
    return bundle;
  };

  it("refuses a bundle altered after signing, keeps running, and the rollout halts on the refusal", async () => {
    const bundle = await buildSigned("0.2.0");
    // Altered after signing (one byte, same size): the manifest still says what was signed.
    const bytes = readFileSync(bundle);
    const middle = bytes.length >> 1;
    bytes[middle] = bytes[middle]! ^ 0x01;
    writeFileSync(bundle, bytes);
    await vantage(["publish-release", "--bundle", bundle]);
    const pid = agent().process.pid;
    await vantage(["rollout", "0.2.0", "--percent", "100"]);

    const halted = await until("the rollout to halt", async () => { const r = await rollout(); return r.state === "halted" ? r : null; }, 30_000, 300);
    expect(halted.probes).toEqual({ running: 0, refused: 1, rolled_back: 0 });
    expect(halted.failures[0]!.detail).toContain("SHA-256 is not the signed one");
    expect(agent().output()).toContain("release 0.2.0 refused: its SHA-256 is not the signed one");
    expect(agent().process.pid).toBe(pid);
    expect(agent().output()).not.toContain("becoming");
  }, 60_000);

  it("switches in place to a signed release, which then measures", async () => {
    const bundle = await buildSigned("0.3.0");
    await vantage(["publish-release", "--bundle", bundle]);
    const pid = agent().process.pid;
    await vantage(["rollout", "0.3.0", "--percent", "100"]);

    const done = await until("the probe to run 0.3.0", async () => { const r = await rollout(); return r.probes.running === 1 ? r : null; }, 60_000, 300);
    expect(done).toMatchObject({ version: "0.3.0", state: "active", failures: [] });
    // Same process (execve): the service manager saw nothing.
    expect(agent().process.pid).toBe(pid);
    expect(runningVersion()).toBe("0.3.0");
    const state = JSON.parse(readFileSync(join(system.probes[0]!.stateDir, "releases", "state.json"), "utf8")) as { current: { version: string } };
    expect(state.current.version).toBe("0.3.0");

    const noIcmp = icmpUnavailable();
    if (noIcmp) { console.warn(`not measuring with the new release: ${noIcmp}`); return; }
    const res = await fetch(`${system.edge.url}/api/v2/measurements/`, {
      method: "POST", headers: { "Content-Type": "application/json", Authorization: `Key ${system.key}` },
      body: JSON.stringify({ definitions: [{ type: "ping", af: 4, target: "127.0.0.1", description: "after the release", packets: 2, packet_interval: 100 }], probes: [{ type: "probes", value: String(system.probes[0]!.id), requested: 1 }], is_oneoff: true }),
    });
    const id = ((await res.json()) as { measurements: number[] }).measurements[0]!;
    const [result] = await until("a result from 0.3.0", async () => {
      const list = (await (await fetch(`${system.edge.url}/api/v2/measurements/${id}/results/`)).json()) as PingResult[];
      return list.length ? list : null;
    }, 30_000, 300);
    expect(result).toMatchObject({ prb_id: system.probes[0]!.id, rcvd: 2 });
  }, 90_000);

  it("rolls back a release that dies, to the release it ran before, and the rollout halts", async () => {
    // Signed, so the probe switches to it; it exits at once, as a release that crashes at start would.
    const bundle = join(dir, "vantage-probe-0.4.0.mjs");
    writeFileSync(bundle, "process.exit(3);\n");
    await vantage(["sign-release", "--bundle", bundle, "--version", "0.4.0"]);
    await vantage(["publish-release", "--bundle", bundle]);
    await vantage(["rollout", "0.4.0", "--percent", "100"]);

    const halted = await until("the rollout to halt", async () => { const r = await rollout(); return r.state === "halted" ? r : null; }, 60_000, 300);
    expect(halted.probes).toEqual({ running: 0, refused: 0, rolled_back: 1 });
    expect(halted.failures[0]!.detail).toContain("stopped before it reached its controller");
    expect(agent().output()).toContain("the agent exited (code 3)");
    // The installed bundle started again, rolled the trial back and switched to the release that was healthy.
    await until("the probe to run 0.3.0 again", async () => runningVersion() === "0.3.0" && agent().output().includes("release 0.4.0 rolled back"), 30_000, 300);
    const probe = (await (await fetch(`${system.edge.url}/api/v2/probes/${system.probes[0]!.id}/`)).json()) as { status: { name: string } };
    expect(probe.status.name).toBe("Connected");
  }, 90_000);

  it("attack: an older release, validly signed, offered to take probes back to old code — refused, and the rollout halts", async () => {
    const bundle = join(dir, "vantage-probe-0.2.5.mjs");
    writeFileSync(bundle, "process.exit(3);\n");
    await vantage(["sign-release", "--bundle", bundle, "--version", "0.2.5"]);
    await vantage(["publish-release", "--bundle", bundle]);
    const pid = agent().process.pid;
    await vantage(["rollout", "0.2.5", "--percent", "100"]);
    const halted = await until("the rollout to halt", async () => { const r = await rollout(); return r.state === "halted" && r.version === "0.2.5" ? r : null; }, 30_000, 300);
    expect(halted.probes).toEqual({ running: 0, refused: 1, rolled_back: 0 });
    expect(halted.failures[0]!.detail).toContain("0.2.5 is not newer than the running 0.3.0");
    expect(agent().process.pid).toBe(pid);
    expect(runningVersion()).toBe("0.3.0");
  }, 60_000);
});
