// Durability: the edge dies (SIGKILL, as a crash or a deploy would take it) while a probe holds a result it has
// not had acknowledged. After the edge comes back the probe reconnects, resends, and the result is stored exactly
// once; a resend after a lost acknowledgement is stored once too.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { PingResult } from "../../protocol/index.ts";
import { Spool } from "../../probe-agent/spool.ts";
import { admin, type Edge, killEdge, LOCAL_SITES, provisionProbe, startEdge, startProbe, type ProbeProcess } from "../../scripts/local.ts";
import { freePort, icmpUnavailable, tempDir, until } from "./system.ts";

const noIcmp = icmpUnavailable();
if (noIcmp) console.warn(`skipping the durability test: ${noIcmp}`);

describe.skipIf(noIcmp !== null)("edge killed while a probe holds an unacknowledged result", () => {
  const state = tempDir("durable");
  let edge: Edge | undefined;
  let agent: ProbeProcess | undefined;

  afterAll(async () => {
    await agent?.stop();
    await edge?.stop();
  });

  it("stores every result exactly once after the edge restarts", async () => {
    const port = await freePort();
    edge = await startEdge({ stateDir: state, port, quiet: true });
    const key = (await admin<{ key: string }>(edge, "/admin/keys", { label: "durability", credits: 1000 })).key;
    const probe = await provisionProbe(edge, join(state, "probe"), LOCAL_SITES[0]!, { heartbeat_s: 2, backoff_ms: { base: 200, cap: 2000 }, builtins: { enabled: false } });
    const ackedMark = join(probe.stateDir, "spool", "acked");
    const unacknowledged = () => Spool.unacknowledged(probe.stateDir);
    agent = startProbe(probe, { quiet: true });
    await until("the probe to connect", async () => ((await (await fetch(`${edge!.url}/api/v2/probes/${probe.id}/`)).json()) as { status: { id: number } }).status.id === 1);

    const res = await fetch(`${edge.url}/api/v2/measurements/`, {
      method: "POST", headers: { "Content-Type": "application/json", Authorization: `Key ${key}` },
      body: JSON.stringify({
        definitions: [{ type: "ping", af: 4, target: "127.0.0.1", description: "durability", packets: 5, packet_interval: 1000 }],
        probes: [{ type: "probes", value: String(probe.id), requested: 1 }], is_oneoff: true,
      }),
    });
    const id = ((await res.json()) as { measurements: number[] }).measurements[0]!;
    expect(((await (await fetch(`${edge.url}/api/v2/measurements/${id}`)).json()) as { probes_scheduled: number }).probes_scheduled).toBe(1);

    // The ping takes ~5 s; kill the edge while it runs, so the result is made while nobody can acknowledge it.
    await new Promise((r) => setTimeout(r, 1000));
    await killEdge(edge);
    const spooled = await until("the result to be spooled", async () => {
      const held = unacknowledged();
      return held.length === 1 ? held[0]! : null;
    }, 30_000);
    expect(spooled.result).toMatchObject({ msm_id: id, type: "ping" });

    edge = await startEdge({ stateDir: state, port, quiet: true });
    await until("the spool to drain", async () => unacknowledged().length === 0, 60_000);
    expect(Number(readFileSync(ackedMark, "utf8"))).toBe(spooled.seq);
    const results = async () => (await (await fetch(`${edge!.url}/api/v2/measurements/${id}/results/`)).json()) as PingResult[];
    const first = await results();
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({ msm_id: id, prb_id: probe.id, sent: 5, rcvd: 5 });

    // An acknowledgement lost on the way (the probe's acked mark never moved past the result): the probe still holds
    // the result and sends it again after a restart.
    await agent.stop();
    writeFileSync(ackedMark, String(spooled.seq - 1));
    expect(unacknowledged()).toEqual([spooled]);
    agent = startProbe(probe, { quiet: true });
    await until("the resent result to be acknowledged", async () => unacknowledged().length === 0, 60_000);
    // Flush the probe's shard (an Amsterdam probe lands on weur-0) so the read goes through R2, not the outbox.
    await admin(edge, "/admin/controllers/weur-0/flush", {});
    const after = await results();
    expect(after).toHaveLength(1);
    expect(after[0]!.timestamp).toBe(first[0]!.timestamp);
    expect(agent.output()).not.toMatch(/refused result/);
  });
});
