// Test driver for the edge inside workerd: talks to the Worker through its real fetch entry point, and plays
// probes over real WebSockets with their own Ed25519 keys (the same protocol module the agent uses).
import { env as bindings, exports } from "cloudflare:workers";
import { expect } from "vitest";
import { CompactSign } from "jose";
import { type ControllerMessage, type ProbeMessage, type RegisterResponse, SUBPROTOCOL } from "../../protocol/index.ts";

/** The edge's bindings, as the Worker sees them. */
export const env = bindings as unknown as Env;

export const ADMIN = "test-admin-token";
export const BASE = "http://edge.test";

export function call(path: string, init: RequestInit & { cf?: Record<string, unknown> } = {}): Promise<Response> {
  return exports.default.fetch(new Request(`${BASE}${path}`, init as RequestInit));
}

export function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return call(path, { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body: JSON.stringify(body) });
}

export async function errorOf(res: Response): Promise<{ status: number; detail: string; errors: { source: { pointer?: string; parameter?: string }; detail: string }[] }> {
  const body = (await res.json()) as { error: { status: number; detail: string; errors: never[] } };
  return body.error;
}

export type TestProbe = { id: number; keys: CryptoKeyPair; publicKey: string };

export type Site = { country_code?: string; asn_v4?: number; prefix_v4?: string; latitude?: number; longitude?: number; owner?: string; tags?: string[] };

export async function enroll(site: Site = {}): Promise<TestProbe> {
  const keys = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const jwk = (await crypto.subtle.exportKey("jwk", keys.publicKey)) as JsonWebKey;
  const res = await post("/admin/probes", { public_key: jwk.x, description: "test probe", ...site }, { Authorization: `Bearer ${ADMIN}` });
  if (res.status !== 201) throw new Error(`enroll: ${res.status} ${await res.text()}`);
  return { id: ((await res.json()) as { id: number }).id, keys, publicKey: jwk.x! };
}

export async function sign(key: CryptoKey, payload: unknown): Promise<string> {
  return new CompactSign(new TextEncoder().encode(JSON.stringify(payload))).setProtectedHeader({ alg: "EdDSA" }).sign(key);
}

export async function challenge(probeId: number): Promise<Response> {
  return post("/probe/v1/challenge", { probe_id: probeId });
}

/** `address`: the probe's public address, as Cloudflare's CF-Connecting-IP header would carry it. */
export async function register(p: TestProbe, cf?: Record<string, unknown>, address?: string): Promise<RegisterResponse> {
  const c = (await (await challenge(p.id)).json()) as { nonce: string };
  const proof = await sign(p.keys.privateKey, { probe_id: p.id, nonce: c.nonce });
  const res = await call("/probe/v1/register", {
    method: "POST", headers: { "Content-Type": "application/json", ...(address ? { "CF-Connecting-IP": address } : {}) },
    body: JSON.stringify({ probe_id: p.id, proof }), cf,
  });
  if (res.status !== 200) throw new Error(`register: ${res.status} ${await res.text()}`);
  return (await res.json()) as RegisterResponse;
}

export function upgrade(url: string, token: string | null, protocol = SUBPROTOCOL, address?: string): Promise<Response> {
  const headers: Record<string, string> = { Upgrade: "websocket", "Sec-WebSocket-Protocol": protocol };
  if (address) headers["CF-Connecting-IP"] = address;
  if (token) headers.Authorization = `Bearer ${token}`;
  return exports.default.fetch(new Request(url.replace(/^ws/, "http"), { headers }));
}

/** A connected test probe: sends protocol messages and awaits the controller's. */
export class ProbeSocket {
  readonly ws: WebSocket;
  private readonly inbox: ControllerMessage[] = [];
  private waiters: (() => void)[] = [];
  constructor(ws: WebSocket) {
    this.ws = ws;
    ws.addEventListener("message", (e) => {
      this.inbox.push(JSON.parse(String(e.data)) as ControllerMessage);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  send(m: ProbeMessage | Record<string, unknown>): void {
    this.ws.send(JSON.stringify(m));
  }

  sendRaw(s: string): void {
    this.ws.send(s);
  }

  /** The next message of this type (earlier messages of other types are kept). */
  async next<T extends ControllerMessage["type"]>(type: T, timeoutMs = 5000): Promise<Extract<ControllerMessage, { type: T }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.inbox.findIndex((m) => m.type === type);
      if (i >= 0) return this.inbox.splice(i, 1)[0] as Extract<ControllerMessage, { type: T }>;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no "${type}" message within ${timeoutMs} ms; inbox: ${JSON.stringify(this.inbox)}`);
      await new Promise<void>((r) => { const t = setTimeout(r, left); this.waiters.push(() => { clearTimeout(t); r(); }); });
    }
  }

  has(type: ControllerMessage["type"]): boolean {
    return this.inbox.some((m) => m.type === type);
  }
}

/** `agent`: what the probe says it runs in its hello (an agent says "vantage-probe/<version>"). */
export async function connect(p: TestProbe, opts: { slots?: number; cf?: Record<string, unknown>; address?: string; agent?: string } = {}): Promise<{ socket: ProbeSocket; reg: RegisterResponse; welcome: Extract<ControllerMessage, { type: "welcome" }> }> {
  const reg = await register(p, opts.cf, opts.address);
  const res = await upgrade(reg.websocket_url, reg.token, SUBPROTOCOL, opts.address);
  if (res.status !== 101 || !res.webSocket) throw new Error(`connect: ${res.status} ${await res.text()}`);
  res.webSocket.accept();
  const socket = new ProbeSocket(res.webSocket);
  const welcome = await socket.next("welcome");
  const slots = opts.slots ?? 4;
  socket.send({ type: "hello", agent: opts.agent ?? "test", slots, free_slots: slots, running: [] });
  await socket.next("status_ack");
  return { socket, reg, welcome };
}

/** A new API key of a new account, granted `credits` (plenty for tests that are not about credits). */
export async function newKey(label = "test", credits = 1_000_000): Promise<string> {
  const res = await post("/admin/keys", { label, credits }, { Authorization: `Bearer ${ADMIN}` });
  return ((await res.json()) as { key: string }).key;
}

/** A minimal valid Atlas ping result for a measurement, as an agent would produce it. */
export function pingResult(msmId: number, probeId: number, timestamp = Math.floor(Date.now() / 1000)) {
  return {
    fw: 5020, mver: "1.0.0", lts: 1, msm_id: msmId, msm_name: "Ping" as const, prb_id: probeId, timestamp,
    from: "192.0.2.10", src_addr: "192.0.2.10", dst_addr: "127.0.0.1", dst_name: "127.0.0.1", af: 4 as const,
    type: "ping" as const, proto: "ICMP" as const, size: 48, ttl: 64, sent: 3, rcvd: 2, dup: 0, min: 1.5, avg: 2, max: 2.5,
    step: null, result: [{ rtt: 1.5 }, { x: "*" as const }, { rtt: 2.5 }],
  };
}

export async function createPing(key: string, sources: unknown[], extra: Record<string, unknown> = {}): Promise<Response> {
  return post("/api/v2/measurements/", {
    definitions: [{ type: "ping", af: 4, target: "127.0.0.1", description: "test", ...extra }],
    probes: sources,
    is_oneoff: extra.interval === undefined,
  }, { Authorization: `Key ${key}` });
}

/** A frame of the result stream: `[event, payload]`. */
export type StreamFrame = [string, unknown];

/** A stream client: sends `[event, payload]` frames and awaits the hub's. */
export async function subscriber() {
  const res = await exports.default.fetch(new Request(`${BASE}/stream/`, { headers: { Upgrade: "websocket" } }));
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  ws.accept();
  const inbox: StreamFrame[] = [];
  let wake: (() => void) | null = null;
  ws.addEventListener("message", (e) => { inbox.push(JSON.parse(String(e.data)) as StreamFrame); wake?.(); });
  const next = async (event: string, timeoutMs = 3000): Promise<unknown> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = inbox.findIndex((f) => f[0] === event);
      if (i >= 0) return inbox.splice(i, 1)[0]![1];
      if (Date.now() > deadline) throw new Error(`no ${event} within ${timeoutMs} ms; inbox ${JSON.stringify(inbox)}`);
      await new Promise<void>((r) => { wake = r; setTimeout(r, 50); });
    }
  };
  /** Every frame of this event that arrives within `ms`. */
  const drain = async (event: string, ms = 300): Promise<unknown[]> => {
    await new Promise((r) => setTimeout(r, ms));
    const out = inbox.filter((f) => f[0] === event).map((f) => f[1]);
    inbox.splice(0, inbox.length, ...inbox.filter((f) => f[0] !== event));
    return out;
  };
  return { send: (frame: unknown[]) => ws.send(JSON.stringify(frame)), next, drain, close: () => ws.close() };
}

