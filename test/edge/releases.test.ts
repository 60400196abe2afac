// Signed agent releases at the edge: publishing, the staged rollout (which probes are offered a release, widening
// it, halting on failures), and what probes download. The probe's own checks are in test/node/release.test.ts.
import { describe, expect, it } from "vitest";
import { inRollout, type ReleaseManifest, signRelease } from "../../protocol/release.ts";
import { ADMIN, call, connect, enroll, errorOf, post, type ProbeSocket } from "./harness.ts";

const auth = { Authorization: `Bearer ${ADMIN}` };

async function releaseKeys(): Promise<JsonWebKey> {
  const keys = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
  return (await crypto.subtle.exportKey("jwk", keys.privateKey)) as JsonWebKey;
}

async function publish(version: string, bundle: Uint8Array, manifest?: ReleaseManifest): Promise<Response> {
  const m = manifest ?? await signRelease(bundle, version, await releaseKeys());
  return call(`/admin/releases/${version}`, {
    method: "PUT", body: bundle,
    headers: { ...auth, "Content-Type": "application/octet-stream", "Vantage-Release-Sha256": m.sha256, "Vantage-Release-Size": String(m.size), "Vantage-Release-Signature": m.signature },
  });
}

type Rollout = { id: number; version: string; percent: number; state: string; reason: string | null; probes: { running: number; refused: number; rolled_back: number }; failures: { probe_id: number; detail: string }[] };
const rollout = async () => (await (await call("/admin/rollouts", { headers: auth })).json()) as Rollout;

/** Whether the probe is offered a release within a short wait. */
async function offered(socket: ProbeSocket, ms = 300): Promise<boolean> {
  await new Promise((r) => setTimeout(r, ms));
  return socket.has("release");
}

describe("publishing a release", () => {
  it("stores the bundle with its manifest, serves it to probes, and never replaces a version", async () => {
    const bundle = new TextEncoder().encode("console.log('vantage 1.0.0');\n");
    const res = await publish("1.0.0", bundle);
    expect(res.status).toBe(201);
    const down = await call("/probe/v1/releases/1.0.0");
    expect(down.status).toBe(200);
    expect(new Uint8Array(await down.arrayBuffer())).toEqual(bundle);
    expect((await publish("1.0.0", bundle)).status).toBe(409);
    expect((await call("/probe/v1/releases/9.9.9")).status).toBe(404);
  });

  it("refuses an upload without a well-formed manifest, or from anyone but the operator", async () => {
    const bundle = new TextEncoder().encode("x");
    const bad = await call("/admin/releases/1.0.1", { method: "PUT", body: bundle, headers: { ...auth, "Vantage-Release-Sha256": "abc" } });
    expect(bad.status).toBe(400);
    expect((await errorOf(bad)).detail).toContain("Vantage-Release-Sha256");
    expect((await call("/admin/releases/1.0.1", { method: "PUT", body: bundle })).status).toBe(403);
    expect((await call("/admin/releases/latest", { method: "PUT", body: bundle, headers: auth })).status).toBe(404);
  });

  it("cannot roll out a version that is not published", async () => {
    const res = await post("/admin/rollouts", { version: "7.7.7", percent: 10 }, auth);
    expect(res.status).toBe(404);
    expect((await errorOf(res)).detail).toContain("not published");
    expect((await post("/admin/rollouts", { version: "7.7.7", percent: 0 }, auth)).status).toBe(400);
  });
});

describe("a staged rollout", () => {
  it("offers the release to its share of probes, widens without losing them, and halts on the first refusal", async () => {
    const version = "2.0.0";
    expect((await publish(version, new TextEncoder().encode("console.log(2);\n"))).status).toBe(201);
    const probes = await Promise.all(Array.from({ length: 8 }, () => enroll({ country_code: "NL", asn_v4: 64496 })));
    const sockets = await Promise.all(probes.map(async (p) => (await connect(p, { agent: "vantage-probe/1.0.0" })).socket));

    const started = await post("/admin/rollouts", { version, percent: 50, max_failures: 1 }, auth);
    expect(started.status).toBe(201);
    const chosen = probes.map((p) => inRollout(p.id, version, 50));
    expect(chosen).toContain(true);
    expect(chosen).toContain(false);
    expect((await Promise.all(sockets.map((s) => offered(s)))).every((got, i) => got === chosen[i])).toBe(true);
    const offer = await sockets[chosen.indexOf(true)]!.next("release");
    expect(offer).toMatchObject({ version, path: `/probe/v1/releases/${version}`, rollout: (await rollout()).id });

    // Widening to 100 %: the rest are offered it now; a probe already running the version is not.
    const current = sockets[chosen.indexOf(false)]!;
    await post("/admin/rollouts", { version, percent: 100 }, auth);
    await current.next("release");
    const up = await enroll();
    const upToDate = (await connect(up, { agent: `vantage-probe/${version}` })).socket;
    expect(await offered(upToDate)).toBe(false);

    // One probe runs it, one refuses it: the rollout halts and says why, and nobody is offered it any more.
    current.send({ type: "release_status", rollout: offer.rollout, version, state: "running", detail: "healthy" });
    await expect.poll(async () => (await rollout()).probes.running).toBe(1);
    sockets[0]!.send({ type: "release_status", rollout: offer.rollout, version, state: "refused", detail: "its SHA-256 is not the signed one" });
    await expect.poll(async () => (await rollout()).state).toBe("halted");
    const halted = await rollout();
    expect(halted.reason).toContain(`probe ${probes[0]!.id} refused: its SHA-256 is not the signed one`);
    expect(halted.failures).toEqual([expect.objectContaining({ probe_id: probes[0]!.id })]);
    const late = await enroll();
    expect(await offered((await connect(late, { agent: "vantage-probe/1.0.0" })).socket)).toBe(false);

    // An operator halt of a halted rollout changes nothing; a new version supersedes it and is offered again.
    expect((await post("/admin/rollouts/halt", {}, auth)).status).toBe(200);
    expect((await publish("2.0.1", new TextEncoder().encode("console.log(201);\n"))).status).toBe(201);
    await post("/admin/rollouts", { version: "2.0.1", percent: 100 }, auth);
    // (Its inbox still holds the 2.0.0 offers.)
    let next;
    do next = await sockets[1]!.next("release"); while (next.version === version);
    expect(next.version).toBe("2.0.1");
  });
});
