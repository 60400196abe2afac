// presence.ts on its own: connections and disconnections reach the registry in order, coalesced while a call is out,
// and a call the registry fails is tried again rather than lost.
import { describe, expect, it } from "vitest";
import type { ProbeAttachment } from "../../durable-objects/probe-attachment.ts";
import { PresenceReports, type SessionEvent } from "../../durable-objects/presence.ts";

type Call = { events: SessionEvent[]; load: { shard: string; connected: number; capacity: number } };

function harness(failFirst = 0) {
  const calls: Call[] = [];
  const pending: Promise<unknown>[] = [];
  let failures = failFirst;
  const registry = {
    probeSessions: async (events: SessionEvent[], load: Call["load"]) => {
      await new Promise((r) => setTimeout(r, 5));  // a round trip, during which more events arrive
      if (failures-- > 0) throw new Error("registry overloaded");
      calls.push({ events: structuredClone(events), load });
    },
  };
  const reports = new PresenceReports({
    ctx: { waitUntil: (p: Promise<unknown>) => pending.push(p) } as unknown as DurableObjectState,
    env: () => ({ REGISTRY: { getByName: () => registry } }) as unknown as Env,
    shard: () => "weur-0", connected: () => 42, capacity: () => 20_000,
    interest: async () => null,
  });
  const settled = async () => { while (pending.length) await pending.shift(); };
  return { calls, reports, settled };
}

const probe = (id: number) => ({ probe_id: id, address: `192.0.2.${id}`, asn_v4: 64496, country_code: "NL", prefix_v4: "192.0.2.0/24" }) as ProbeAttachment;

describe("presence reports to the registry", () => {
  it("sends a lone connection at once, and a burst in a few calls that keep every event in order", async () => {
    const { calls, reports, settled } = harness();
    reports.report("connected", probe(1), 100);
    await settled();
    expect(calls).toEqual([{ events: [{ probe_id: 1, event: "connected", address: "192.0.2.1", at: 100 }], load: { shard: "weur-0", connected: 42, capacity: 20_000 } }]);

    calls.length = 0;
    for (let i = 0; i < 500; i++) reports.report(i % 2 ? "disconnected" : "connected", probe(1 + (i >> 1)), 200 + i);
    // Events arriving while a call is out wait for it and go together.
    reports.report("connected", probe(7), 999);
    await settled();
    expect(calls.length).toBeLessThanOrEqual(2);
    const events = calls.flatMap((c) => c.events);
    expect(events).toHaveLength(501);
    expect(events.map((e) => e.at)).toEqual([...Array.from({ length: 500 }, (_, i) => 200 + i), 999]);
  });

  it("tries a failed call again, with what came meanwhile after it, and loses nothing", async () => {
    const { calls, reports, settled } = harness(2);
    reports.report("connected", probe(1), 100);
    reports.report("disconnected", probe(1), 101);
    const later = new Promise((r) => setTimeout(r, 50)).then(() => reports.report("connected", probe(2), 102));
    await later;
    await settled();
    expect(calls.flatMap((c) => c.events.map((e) => [e.probe_id, e.event]))).toEqual([[1, "connected"], [1, "disconnected"], [2, "connected"]]);
  }, 15_000);
});
