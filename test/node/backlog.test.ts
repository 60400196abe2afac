// A probe back from a long outage: its spooled backlog reaches the real edge whole, in order, exactly once, and
// never more than the agent's in-flight window (2,000 results) unacknowledged at a time. The agent (its bundle, as it
// ships) talks to the edge under workerd through a WebSocket relay of this test's, which sees every frame: the
// results frames one way, the acknowledgements the other, so it can count what is in flight.
import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import type { PingResult } from "../../protocol/index.ts";
import { Spool } from "../../probe-agent/spool.ts";
import { admin, type Edge, LOCAL_SITES, provisionProbe, startEdge, startProbe, type ProbeProcess } from "../../scripts/local.ts";
import { freePort, spooledBacklog, tempDir, until } from "./system.ts";

const BACKLOG = 5_000;
const WINDOW = 2_000;

/**
 * An HTTP relay in front of the edge that forwards registration as it is (the edge then names the relay in the
 * WebSocket URL it returns) and relays the controller WebSocket message by message, noting the results the probe
 * sends and the acknowledgements the controller answers.
 */
async function frameCountingRelay(edgeUrl: string) {
  const edge = new URL(edgeUrl);
  const seen = {
    sent: [] as number[], acked: 0, mostInFlight: 0,
    /** When the controller told the probe to wait (relay clock, ms) and for how long (s). */
    holds: [] as { at: number; retryAfter: number }[],
    /** When the probe first sent a result it had sent before (a resend on the same connection). */
    firstResendAt: null as number | null,
  };
  const server = createServer((req, res) => {
    const fwd = request({ host: edge.hostname, port: edge.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    req.pipe(fwd);
  });
  const relay = new WebSocketServer({ noServer: true, handleProtocols: (protocols) => [...protocols][0] ?? false });
  server.on("upgrade", (req, socket, head) => {
    const upstream = new WebSocket(`ws://${edge.host}${req.url}`, req.headers["sec-websocket-protocol"], {
      headers: { Authorization: req.headers.authorization ?? "" }, perMessageDeflate: false,
    });
    upstream.once("error", () => socket.destroy());
    upstream.once("unexpected-response", () => socket.destroy());
    upstream.once("open", () => relay.handleUpgrade(req, socket, head, (probe) => {
      probe.on("message", (data) => {
        const m = JSON.parse(String(data)) as { type: string; results?: { seq: number }[] };
        if (m.type === "results") {
          const before = seen.sent.length ? Math.max(...seen.sent.slice(-2000)) : 0;
          if (seen.firstResendAt === null && m.results!.some((r) => r.seq <= before)) seen.firstResendAt = Date.now();
          for (const r of m.results!) seen.sent.push(r.seq);
          seen.mostInFlight = Math.max(seen.mostInFlight, seen.sent.at(-1)! - seen.acked);
        }
        upstream.send(String(data));
      });
      upstream.on("message", (data) => {
        const m = JSON.parse(String(data)) as { type: string; upto?: number; retry_after?: number };
        if (m.type === "ack") seen.acked = Math.max(seen.acked, m.upto!);
        if (m.type === "reject" && m.retry_after) seen.holds.push({ at: Date.now(), retryAfter: m.retry_after });
        probe.send(String(data));
      });
      probe.on("close", () => upstream.close());
      upstream.on("close", () => probe.close());
    }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise<void>((r) => { relay.close(); server.closeAllConnections(); server.close(() => r()); }),
  };
}

describe("a backlog after an outage", () => {
  const state = tempDir("backlog");
  let edge: Edge | undefined;
  let agent: ProbeProcess | undefined;
  let relay: Awaited<ReturnType<typeof frameCountingRelay>> | undefined;
  afterAll(async () => {
    await agent?.stop();
    await relay?.close();
    await edge?.stop();
  });

  it(`sends a ${BACKLOG}-result spool whole, in order, once, with at most ${WINDOW} unacknowledged at a time`, async () => {
    // The backlog is fabricated (5,000 runs of an hourly measurement from the last two hours), which a deployed
    // controller refuses as runs the probe could not have made: this test is about the transport, so the edge's
    // clock-skew and extra-runs tolerances are wide (durable-objects/admission.ts).
    edge = await startEdge({ stateDir: state, port: await freePort(), quiet: true, vars: { RESULT_CLOCK_SKEW_S: String(2 * 86_400), RESULT_EXTRA_RUNS: "1000000" } });
    relay = await frameCountingRelay(edge.url);
    const key = (await admin<{ key: string }>(edge, "/admin/keys", { label: "backlog", credits: 1_000_000 })).key;
    const probe = await provisionProbe(edge, join(state, "probe"), LOCAL_SITES[0]!, { registration_urls: [relay.url], builtins: { enabled: false } });
    agent = startProbe(probe, { quiet: true });
    await until("the probe to connect", async () => ((await (await fetch(`${edge!.url}/api/v2/probes/${probe.id}/`)).json()) as { status: { id: number } }).status.id === 1);

    // A periodic measurement the probe was given before it went away, and the results of its runs while it could
    // not reach the edge, spooled as the agent spools them.
    const { id, first } = await spooledBacklog({ edge, key, probe, agent, count: BACKLOG });

    agent = startProbe(probe, { quiet: true });
    await until("the backlog to be acknowledged", async () => relay!.seen.acked >= BACKLOG, 120_000, 100);
    await agent.stop();
    expect(relay.seen.sent).toEqual(Array.from({ length: BACKLOG }, (_, i) => i + 1));
    expect(relay.seen.mostInFlight).toBeLessThanOrEqual(WINDOW);
    expect(relay.seen.mostInFlight).toBeGreaterThan(WINDOW / 2);
    expect(Spool.unacknowledged(probe.stateDir)).toEqual([]);
    expect(agent.output()).not.toMatch(/refused result/);
    // Stored once each: the probe's shard (Amsterdam: weur-0) flushed, read back through R2.
    await admin(edge, "/admin/controllers/weur-0/flush", {});
    const stored = (await (await fetch(`${edge.url}/api/v2/measurements/${id}/results/?start=${first}`)).json()) as PingResult[];
    expect(stored.map((r) => r.timestamp).sort((a, b) => a - b)).toEqual(Array.from({ length: BACKLOG }, (_, i) => first + i));
  }, 240_000);
});

describe("a backlog larger than the probe's allowance a minute", () => {
  const state = tempDir("allowance");
  let edge: Edge | undefined;
  let agent: ProbeProcess | undefined;
  let relay: Awaited<ReturnType<typeof frameCountingRelay>> | undefined;
  afterAll(async () => {
    await agent?.stop();
    await relay?.close();
    await edge?.stop();
  });

  it("is stored up to the allowance, the agent waits as told, then sends the rest: every result once", async () => {
    const ALLOWANCE = 300, SPOOLED = 450;
    edge = await startEdge({
      stateDir: state, port: await freePort(), quiet: true,
      vars: { RESULT_CLOCK_SKEW_S: String(2 * 86_400), RESULT_EXTRA_RUNS: "1000000", PROBE_RESULTS_PER_MINUTE: String(ALLOWANCE) },
    });
    relay = await frameCountingRelay(edge.url);
    const key = (await admin<{ key: string }>(edge, "/admin/keys", { label: "allowance", credits: 1_000_000 })).key;
    const probe = await provisionProbe(edge, join(state, "probe"), LOCAL_SITES[0]!, { registration_urls: [relay.url], builtins: { enabled: false } });
    agent = startProbe(probe, { quiet: true });
    await until("the probe to connect", async () => ((await (await fetch(`${edge!.url}/api/v2/probes/${probe.id}/`)).json()) as { status: { id: number } }).status.id === 1);
    const { id, first } = await spooledBacklog({ edge, key, probe, agent, count: SPOOLED, description: "allowance" });

    agent = startProbe(probe, { quiet: true });
    await until("the whole spool to be acknowledged", async () => relay!.seen.acked >= SPOOLED, 150_000, 200);
    await agent.stop();
    // The controller said to wait; the agent sent nothing again before that time had passed (resends start after).
    expect(relay.seen.holds.length).toBeGreaterThan(0);
    const hold = relay.seen.holds[0]!;
    expect(relay.seen.firstResendAt).not.toBeNull();
    // retry_after is the wait to the next minute rounded up to a second, so that minute began at least
    // (retry_after − 1) s after the controller said it; no result was sent again before then.
    expect(relay.seen.firstResendAt! - hold.at).toBeGreaterThanOrEqual((hold.retryAfter - 1) * 1000 - 100);
    expect(agent.output()).toContain(`allowance of ${ALLOWANCE} results`);
    expect(agent.output()).not.toMatch(/refused result/);
    expect(Spool.unacknowledged(probe.stateDir)).toEqual([]);
    await admin(edge, "/admin/controllers/weur-0/flush", {});
    const stored = (await (await fetch(`${edge.url}/api/v2/measurements/${id}/results/?start=${first}`)).json()) as PingResult[];
    expect(stored.map((r) => r.timestamp).sort((a, b) => a - b)).toEqual(Array.from({ length: SPOOLED }, (_, i) => first + i));
  }, 240_000);
});
