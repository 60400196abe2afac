// Registration and controller admission inside workerd: the challenge–response, every refusal, shard choice by
// location and load, and the assignment token's audience and lifetime.
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ConnectedProbes } from "../../durable-objects/connected.ts";
import { exports } from "cloudflare:workers";
import { RECEIVED_HEADER, SHED_AFTER_MS } from "../../durable-objects/probe-connect.ts";
import { issueAssignment, audienceFor } from "../../durable-objects/tokens.ts";
import { type RegisterResponse, SUBPROTOCOL } from "../../protocol/index.ts";
import { ADMIN, call, challenge, connect, enroll, errorOf, post, ProbeSocket, register, sign, upgrade, env } from "./harness.ts";

async function proofFor(p: Awaited<ReturnType<typeof enroll>>) {
  const { nonce } = (await (await challenge(p.id)).json()) as { nonce: string };
  return { nonce, proof: await sign(p.keys.privateKey, { probe_id: p.id, nonce }) };
}

describe("enrollment", () => {
  it("needs the operator credential", async () => {
    const res = await post("/admin/probes", { public_key: "A".repeat(43) }, { Authorization: "Bearer wrong" });
    expect(res.status).toBe(403);
  });

  it("names a malformed public key", async () => {
    const res = await post("/admin/probes", { public_key: "not-a-key" }, { Authorization: `Bearer ${ADMIN}` });
    expect(res.status).toBe(400);
    expect((await errorOf(res)).errors[0]!.source.pointer).toBe("/public_key");
  });

  it("refuses a key enrolled twice, naming the probe", async () => {
    const p = await enroll();
    const res = await post("/admin/probes", { public_key: p.publicKey }, { Authorization: `Bearer ${ADMIN}` });
    expect(res.status).toBe(409);
    expect((await errorOf(res)).detail).toContain(String(p.id));
  });

  it("gives software-probe ids above 1,000,000", async () => {
    expect((await enroll()).id).toBeGreaterThan(1_000_000);
  });
});

describe("challenge–response", () => {
  it("registers a probe that signs its nonce and returns a token for one shard", async () => {
    const p = await enroll({ country_code: "NL" });
    const reg = await register(p);
    expect(reg.shard).toBe("weur-0");
    expect(reg.websocket_url).toBe("ws://edge.test/probe/v1/controllers/weur-0");
    expect(reg.expires - Date.now() / 1000).toBeLessThanOrEqual(120);
  });

  it("behind a TLS-terminating front (X-Forwarded-Proto: https) names the probe's controller with wss://", async () => {
    const p = await enroll({ country_code: "NL" });
    const c = (await (await challenge(p.id)).json()) as { nonce: string };
    const proof = await sign(p.keys.privateKey, { probe_id: p.id, nonce: c.nonce });
    const res = await call("/probe/v1/register/", {
      method: "POST", headers: { "Content-Type": "application/json", "X-Forwarded-Proto": "https" }, body: JSON.stringify({ probe_id: p.id, proof }),
    });
    expect(((await res.json()) as RegisterResponse).websocket_url).toBe("wss://edge.test/probe/v1/controllers/weur-0");
  });

  it("refuses an unknown probe", async () => {
    const res = await challenge(99_999_999);
    expect(res.status).toBe(403);
    expect((await errorOf(res)).detail).toBe("unknown probe 99999999");
  });

  it("refuses a disabled probe at challenge and at register", async () => {
    const p = await enroll();
    const { proof } = await proofFor(p);
    await post(`/admin/probes/${p.id}/disable`, {}, { Authorization: `Bearer ${ADMIN}` });
    const reg = await post("/probe/v1/register", { probe_id: p.id, proof });
    expect(reg.status).toBe(403);
    expect((await errorOf(reg)).detail).toContain("disabled");
    expect((await errorOf(await challenge(p.id))).detail).toContain("disabled");
    await post(`/admin/probes/${p.id}/enable`, {}, { Authorization: `Bearer ${ADMIN}` });
    await expect(register(p)).resolves.toMatchObject({ probe_id: p.id });
  });

  it("refuses a proof signed by another key", async () => {
    const p = await enroll();
    const impostor = await enroll();
    const { nonce } = (await (await challenge(p.id)).json()) as { nonce: string };
    const res = await post("/probe/v1/register", { probe_id: p.id, proof: await sign(impostor.keys.privateKey, { probe_id: p.id, nonce }) });
    expect(res.status).toBe(403);
    expect((await errorOf(res)).detail).toContain("does not verify");
  });

  it("refuses a replayed proof", async () => {
    const p = await enroll();
    const { proof } = await proofFor(p);
    expect((await post("/probe/v1/register", { probe_id: p.id, proof })).status).toBe(200);
    const again = await post("/probe/v1/register", { probe_id: p.id, proof });
    expect(again.status).toBe(403);
    expect((await errorOf(again)).detail).toContain("replayed");
  });

  it("keeps a probe's challenge valid however many others are asked for in its name (no lock-out)", async () => {
    const p = await enroll();
    const { proof } = await proofFor(p);
    for (let i = 0; i < 20; i++) expect((await challenge(p.id)).status).toBe(200);
    expect((await post("/probe/v1/register", { probe_id: p.id, proof })).status).toBe(200);
  });

  it("refuses an expired challenge", async () => {
    const p = await enroll();
    const issued = await env.REGISTRY.getByName("registry").challenge(p.id, Date.now() - 61_000);
    if (!issued.ok) throw new Error("no challenge");
    const res = await post("/probe/v1/register", { probe_id: p.id, proof: await sign(p.keys.privateKey, { probe_id: p.id, nonce: issued.nonce }) });
    expect(res.status).toBe(403);
    expect((await errorOf(res)).detail).toContain("expired");
  });

  it("refuses a nonce issued to another probe, or made up", async () => {
    const p = await enroll();
    const other = await enroll();
    const { nonce } = (await (await challenge(other.id)).json()) as { nonce: string };
    const res = await post("/probe/v1/register", { probe_id: p.id, proof: await sign(p.keys.privateKey, { probe_id: p.id, nonce }) });
    expect((await errorOf(res)).detail).toContain("no challenge of this registry for this probe");
    const forged = nonce.slice(0, -2) + (nonce.endsWith("AA") ? "AB" : "AA");
    const res2 = await post("/probe/v1/register", { probe_id: other.id, proof: await sign(other.keys.privateKey, { probe_id: other.id, nonce: forged }) });
    expect((await errorOf(res2)).detail).toContain("no challenge of this registry");
  });

  it("refuses a proof naming another probe", async () => {
    const p = await enroll();
    const other = await enroll();
    const { nonce } = (await (await challenge(p.id)).json()) as { nonce: string };
    const res = await post("/probe/v1/register", { probe_id: p.id, proof: await sign(p.keys.privateKey, { probe_id: other.id, nonce }) });
    expect((await errorOf(res)).detail).toBe("proof is for another probe");
  });

  it("refuses a register without a challenge and bad bodies", async () => {
    const p = await enroll();
    const res = await post("/probe/v1/register", { probe_id: p.id, proof: await sign(p.keys.privateKey, { probe_id: p.id, nonce: "never-issued" }) });
    expect((await errorOf(res)).detail).toContain("no challenge");
    const garbage = await post("/probe/v1/register", { probe_id: p.id, proof: "x.y.z" });
    expect((await errorOf(garbage)).detail).toContain("does not verify");
    const bad = await post("/probe/v1/register", { probe_id: "one" });
    expect(bad.status).toBe(400);
    expect((await errorOf(bad)).errors.map((e) => e.source.pointer)).toEqual(["/probe_id", "/proof"]);
  });
});

describe("shard choice", () => {
  it("uses request.cf when the registry has no location, and tolerates an empty cf", async () => {
    const p = await enroll();
    expect((await register(p, { latitude: "35.6", longitude: "139.7", country: "JP" })).shard).toBe("apac-0");
    expect((await register(p, { country: "BR" })).shard).toBe("sam-0");
    expect((await register(p, { continent: "OC" })).shard).toBe("oc-0");
    expect((await register(p, {})).shard).toBe("wnam-0");
  });

  it("prefers the registry's record over request.cf", async () => {
    const p = await enroll({ latitude: -33.9, longitude: 18.4 });
    expect((await register(p, { country: "US" })).shard).toBe("afr-0");
  });

  it("skips a shard that reports itself full", async () => {
    const p = await enroll({ country_code: "DE" });
    await env.REGISTRY.getByName("registry").reportLoad("weur-0", 10, 10);
    expect((await register(p)).shard).toBe("eeur-0");
    await env.REGISTRY.getByName("registry").reportLoad("weur-0", 0, 10);
    expect((await register(p)).shard).toBe("weur-0");
  });
});

describe("controller admission", () => {
  it("accepts a valid token, says welcome and marks the probe connected", async () => {
    const p = await enroll({ country_code: "NL", asn_v4: 64500 });
    const { socket, reg } = await connect(p);
    expect(reg.shard).toBe("weur-0");
    const probe = (await (await call(`/api/v2/probes/${p.id}/`)).json()) as { status: { id: number; name: string } };
    expect(probe.status).toMatchObject({ id: 1, name: "Connected" });
    socket.ws.close(1000, "bye");
  });

  it("refuses no token, a token for another shard, an expired or forged token, and a wrong subprotocol", async () => {
    const p = await enroll({ country_code: "NL" });
    const reg = await register(p);
    expect((await upgrade(reg.websocket_url, null)).status).toBe(401);

    const other = await upgrade(reg.websocket_url.replace("weur-0", "apac-0"), reg.token);
    expect(other.status).toBe(403);
    expect((await errorOf(other)).detail).toContain("not for this controller");

    const claims = { sub: String(p.id), aud: audienceFor("weur-0"), country_code: "NL", asn_v4: null, prefix_v4: null };
    const expired = await issueAssignment(env.EDGE_PRIVATE_JWK, claims, Date.now() - 10 * 60_000);
    expect((await errorOf(await upgrade(reg.websocket_url, expired.token))).detail).toContain("expired");

    const forger = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
    const forged = await issueAssignment(JSON.stringify(await crypto.subtle.exportKey("jwk", forger.privateKey)), claims);
    expect((await errorOf(await upgrade(reg.websocket_url, forged.token))).detail).toContain("signature");

    expect((await upgrade(reg.websocket_url.replace("weur-0", "nowhere-9"), reg.token)).status).toBe(404);
    const wrongProtocol = await upgrade(reg.websocket_url, reg.token, "chat");
    expect(wrongProtocol.status).toBe(400);
  });

  it("turns away at once a connection that queued too long for its controller, on the edge's clock, not the client's", async () => {
    const p = await enroll({ country_code: "NL" });
    const reg = await register(p);
    const url = reg.websocket_url.replace(/^ws/, "http");
    const headers = (received: number) => ({ Upgrade: "websocket", "Sec-WebSocket-Protocol": SUBPROTOCOL, Authorization: `Bearer ${reg.token}`, [RECEIVED_HEADER]: String(received) });
    const stub = env.CONTROLLER.getByName("weur-0");
    const busy = await stub.fetch(new Request(url, { headers: headers(Date.now() - SHED_AFTER_MS - 2000) }));
    expect(busy.status).toBe(503);
    const retry = Number(busy.headers.get("Retry-After"));
    expect(retry).toBeGreaterThanOrEqual(5);
    expect(retry).toBeLessThanOrEqual(30);
    expect(await busy.text()).toMatch(/^controller busy: this connection waited 7\.\d s for it; retry in \d+ s with the same token$/);
    // A client's own stamp (an ancient one would have it turned away, a future one would skip the check) is
    // replaced by the edge's, and the token the busy answer turned away connects.
    const res = await exports.default.fetch(new Request(url, { headers: headers(1) }));
    expect(res.status).toBe(101);
    res.webSocket!.accept();
    // Turning away comes before any other check: with the token now in use, a late try is still only "busy".
    expect((await stub.fetch(new Request(url, { headers: headers(Date.now() - SHED_AFTER_MS - 2000) }))).status).toBe(503);
    expect((await stub.fetch(new Request(url, { headers: headers(Date.now()) }))).status).toBe(403);
    res.webSocket!.close(1000, "bye");
  });

  it("replaces an older connection of the same probe", async () => {
    const p = await enroll({ country_code: "NL" });
    const first = await connect(p);
    const closed = new Promise<number>((r) => first.socket.ws.addEventListener("close", (e) => r(e.code)));
    await connect(p);
    expect(await closed).toBe(4000);
    await new Promise((r) => setTimeout(r, 100));
    const probe = (await (await call(`/api/v2/probes/${p.id}/`)).json()) as { status: { name: string } };
    expect(probe.status.name).toBe("Connected");
  });

  it("marks a probe Disconnected when its only socket closes", async () => {
    const p = await enroll({ country_code: "NL" });
    const { socket } = await connect(p);
    socket.ws.close(1000, "bye");
    const status = async () => ((await (await call(`/api/v2/probes/${p.id}/`)).json()) as { status: { name: string } }).status.name;
    for (let i = 0; i < 50 && (await status()) !== "Disconnected"; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await status()).toBe("Disconnected");
  });
});

describe("probe governance", () => {
  it("drops a connected probe the operator disables", async () => {
    const p = await enroll({ country_code: "DK" });
    const { socket } = await connect(p);
    const closed = new Promise<{ code: number; reason: string }>((r) => socket.ws.addEventListener("close", (e) => r({ code: e.code, reason: e.reason })));
    const res = await post(`/admin/probes/${p.id}/disable`, {}, { Authorization: `Bearer ${ADMIN}` });
    expect(await res.json()).toEqual({ id: p.id, disabled: true, dropped: 1 });
    expect(await closed).toEqual({ code: 4003, reason: "probe disabled by the operator" });
  });

  it("writes a probe off (dropped, refused, Written Off) and takes it back; marks long-disconnected probes Abandoned", async () => {
    const status = async (id: number) => ((await (await call(`/api/v2/probes/${id}/`)).json()) as { status: { id: number; name: string } }).status;
    const gone = await enroll({ country_code: "IS" });
    const { socket } = await connect(gone);
    const closed = new Promise<number>((r) => socket.ws.addEventListener("close", (e) => r(e.code)));
    expect(await (await post(`/admin/probes/${gone.id}/write-off`, {}, { Authorization: `Bearer ${ADMIN}` })).json()).toMatchObject({ disabled: true, dropped: 1 });
    expect(await closed).toBe(4003);
    expect(await status(gone.id)).toMatchObject({ id: 4, name: "Written Off" });
    await expect(connect(gone)).rejects.toThrow(/disabled/);
    expect((await post(`/admin/probes/${gone.id}/take-back`, {}, { Authorization: `Bearer ${ADMIN}` })).status).toBe(200);
    expect(await status(gone.id)).toMatchObject({ id: 2, name: "Disconnected" });
    await connect(gone);
    expect(await status(gone.id)).toMatchObject({ id: 1, name: "Connected" });

    const quiet = await enroll({ country_code: "IS" });
    const q = await connect(quiet);
    q.socket.ws.close();
    const registry = env.REGISTRY.getByName("registry");
    for (let i = 0; i < 50 && (await status(quiet.id)).id !== 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await registry.abandon(Math.floor(Date.now() / 1000) + 29 * 86_400)).toBe(0);
    expect(await registry.abandon(Math.floor(Date.now() / 1000) + 31 * 86_400)).toBeGreaterThanOrEqual(1);
    expect(await status(quiet.id)).toMatchObject({ id: 3, name: "Abandoned" });
    await connect(quiet);
    expect(await status(quiet.id)).toMatchObject({ id: 1, name: "Connected" });
  });

  it("limits probes per public address and per /24, as Atlas limits farming; private addresses are not limited", async () => {
    const probes = await Promise.all(Array.from({ length: 6 }, () => enroll({ country_code: "FI" })));
    await connect(probes[0]!, { address: "81.2.69.10" });
    await connect(probes[1]!, { address: "81.2.69.10" });
    await expect(connect(probes[2]!, { address: "81.2.69.10" })).rejects.toThrow(/2 probes are already connected from 81\.2\.69\.10: at most 2 per address/);
    await connect(probes[2]!, { address: "81.2.69.11" });
    await connect(probes[3]!, { address: "81.2.69.12" });
    await expect(connect(probes[4]!, { address: "81.2.69.13" })).rejects.toThrow(/4 probes are already connected from 81\.2\.69\.0\/24: at most 4 per \/24/);
    // A probe reconnecting from its own address is not counted against itself.
    await connect(probes[0]!, { address: "81.2.69.10" });
    await connect(probes[4]!, { address: "10.1.2.3" });
    await connect(probes[5]!, { address: "10.1.2.3" });
  });
});

describe("resume tokens", () => {
  it("let a connected probe reconnect to its controller once without registering; not after the operator drops it", async () => {
    const p = await enroll({ country_code: "NL" });
    const { socket, reg } = await connect(p);
    const resume = await socket.next("resume");
    // An assignment token for the same shard, valid an hour.
    expect(resume.expires - Date.now() / 1000).toBeGreaterThan(3500);
    socket.ws.close();

    // Straight to the controller with it: welcomed, and handed the next one.
    const again = await upgrade(reg.websocket_url, resume.token);
    expect(again.status).toBe(101);
    again.webSocket!.accept();
    const resumed = new ProbeSocket(again.webSocket!);
    expect(await resumed.next("welcome")).toMatchObject({ probe_id: p.id, shard: reg.shard });
    resumed.send({ type: "hello", agent: "test", slots: 4, free_slots: 4, running: [] });
    const next = await resumed.next("resume");
    expect(next.token).not.toBe(resume.token);

    // Single use: the spent one opens nothing.
    const replay = await upgrade(reg.websocket_url, resume.token);
    expect(replay.status).toBe(403);
    expect(await replay.text()).toContain("already used");

    // Dropped by the operator (disabled): the resume token it still holds no longer connects.
    await post(`/admin/probes/${p.id}/disable`, {}, { Authorization: `Bearer ${ADMIN}` });
    const refused = await upgrade(reg.websocket_url, next.token);
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain("disconnected by the operator");
    // Enabled again, it registers and connects as before.
    await post(`/admin/probes/${p.id}/enable`, {}, { Authorization: `Bearer ${ADMIN}` });
    await expect(connect(p)).resolves.toBeTruthy();
  });

  it("are renewed before they expire, on a status, for a day after the probe registered", async () => {
    const p = await enroll({ country_code: "NL" });
    const { socket, reg } = await connect(p);
    await socket.next("resume");
    socket.send({ type: "status", free_slots: 4 });
    await socket.next("status_ack");
    expect(socket.has("resume")).toBe(false);  // not yet half-way through its life
    // Its token now past half its life (the socket's record of it moved back).
    await runInDurableObject(env.CONTROLLER.getByName(reg.shard), (o, state) => {
      const connected = (o as unknown as { connected: ConnectedProbes }).connected;
      for (const ws of state.getWebSockets(`probe:${p.id}`)) connected.set(ws, { ...connected.get(ws)!, resume_expires: Math.floor(Date.now() / 1000) + 1000 });
    });
    socket.send({ type: "status", free_slots: 4 });
    expect((await socket.next("resume")).expires - Date.now() / 1000).toBeGreaterThan(3500);

    // A day after it registered, no more: it registers again, and its claims (location, tags) come fresh.
    await runInDurableObject(env.CONTROLLER.getByName(reg.shard), (o, state) => {
      const connected = (o as unknown as { connected: ConnectedProbes }).connected;
      for (const ws of state.getWebSockets(`probe:${p.id}`)) {
        connected.set(ws, { ...connected.get(ws)!, resume_expires: Math.floor(Date.now() / 1000) + 1000, registered_at: Math.floor(Date.now() / 1000) - 86_401 });
      }
    });
    socket.send({ type: "status", free_slots: 4 });
    await socket.next("status_ack");
    await new Promise((r) => setTimeout(r, 100));
    expect(socket.has("resume")).toBe(false);
  });
});
