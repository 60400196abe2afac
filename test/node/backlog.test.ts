// A probe back from a long outage: its spooled backlog reaches the controller whole, in order, exactly once, and
// never more than the agent's in-flight window (2,000 results) unacknowledged at a time. The controller here is a
// stand-in speaking the real protocol (registration with a token signed by a pinned edge key, the WebSocket frames),
// not the real edge, and that is a known gap: the test must see every frame and time every ack to count what is
// in flight, and the real controller only accepts results of measurements it assigned (5,000 of them would need a
// periodic measurement and credits to match). The real agent ↔ edge path for spooled results is durability.test.ts
// and e2e.test.ts; replacing this stand-in with the real edge plus a frame-counting proxy is left to do.
import { generateKeyPairSync } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import { issueAssignment } from "../../durable-objects/tokens.ts";
import { Agent } from "../../probe-agent/agent.ts";
import { AgentConfig } from "../../probe-agent/config.ts";
import { Spool } from "../../probe-agent/spool.ts";
import type { PingResult, ProbeMessage } from "../../protocol/index.ts";
import { tempDir } from "./system.ts";

const BACKLOG = 5_000;
const WINDOW = 2_000;

describe("a backlog after an outage", () => {
  const { privateKey } = generateKeyPairSync("ed25519");
  const edgeJwk = privateKey.export({ format: "jwk" }) as { kty: "OKP"; crv: "Ed25519"; x: string; d: string };
  const received: number[] = [];
  let acked = 0, mostInFlight = 0;
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", async () => {
      const { probe_id } = JSON.parse(body) as { probe_id: number };
      const port = (server.address() as AddressInfo).port;
      const answer = req.url === "/probe/v1/challenge" ? { nonce: "n" } : {
        probe_id, shard: "test-0", websocket_url: `ws://127.0.0.1:${port}/ws`, expires: Date.now() / 1000 + 120,
        token: (await issueAssignment(JSON.stringify(edgeJwk), { sub: String(probe_id), aud: "controller:test-0", country_code: null, asn_v4: null, prefix_v4: null })).token,
      };
      res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(answer));
    });
  });
  const controller = new WebSocketServer({ server, handleProtocols: () => "vantage.v1" });
  controller.on("connection", (ws) => {
    ws.send(JSON.stringify({ type: "welcome", probe_id: 1, shard: "test-0", server_time: Date.now() / 1000, allow_private_targets: true }));
    ws.on("message", (data) => {
      const m = JSON.parse(String(data)) as ProbeMessage;
      if (m.type === "hello" || m.type === "status") ws.send(JSON.stringify({ type: "status_ack", server_time: Date.now() / 1000 }));
      if (m.type !== "results") return;
      for (const r of m.results) received.push(r.seq);
      mostInFlight = Math.max(mostInFlight, received.at(-1)! - acked);
      // Acknowledged a little later, as a controller does once the frame is durable.
      const upto = m.results.at(-1)!.seq;
      setTimeout(() => { acked = Math.max(acked, upto); ws.send(JSON.stringify({ type: "ack", upto })); }, 20);
    });
  });
  afterAll(() => new Promise<void>((r) => { controller.close(); server.close(() => r()); }));

  it(`sends a ${BACKLOG}-result spool whole, in order, once, with at most ${WINDOW} unacknowledged at a time`, async () => {
    const stateDir = tempDir("backlog");
    const spool = new Spool(stateDir);
    const result = (i: number): PingResult => ({
      fw: 5020, mver: "1.0.0", lts: -1, msm_id: 10_000_001 + i, msm_name: "Ping", prb_id: 1, timestamp: 1_700_000_000 + i, from: "",
      src_addr: "", dst_addr: "192.0.2.1", dst_name: "192.0.2.1", af: 4, type: "ping", proto: "ICMP", size: 48, sent: 1, rcvd: 0,
      dup: 0, min: -1, avg: -1, max: -1, step: null, result: [{ x: "*" }],
    });
    await Promise.all(Array.from({ length: BACKLOG }, (_, i) => spool.add(result(i))));
    await spool.close();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const config = AgentConfig.parse({
      probe_id: 1, registration_urls: [`http://127.0.0.1:${(server.address() as AddressInfo).port}`],
      edge_public_jwk: { kty: edgeJwk.kty, crv: edgeJwk.crv, x: edgeJwk.x }, state_dir: stateDir, builtins: { enabled: false },
    });
    const agent = new Agent(config, () => {});
    agent.start();
    const deadline = Date.now() + 60_000;
    while (acked < BACKLOG && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await agent.stop();
    expect(received).toEqual(Array.from({ length: BACKLOG }, (_, i) => i + 1));
    expect(mostInFlight).toBeLessThanOrEqual(WINDOW);
    expect(mostInFlight).toBeGreaterThan(WINDOW / 2);
    expect(new Spool(stateDir).size).toBe(0);
  }, 90_000);
});
