// How the brain finds probes for a measurement: each probe source is asked of the controller shards that may hold
// its probes, in turn, until it is filled (busy shards give fewer on a first pass, so load spreads, and whatever is
// still missing is asked again with nothing held back). Orders made in one turn (the measurements of one request) go
// to each controller in one call.
import { type Assignment, type Definition, type ProbeSource, specOf } from "../protocol/index.ts";
import type { MeasurementRow } from "./brain-types.ts";
import type { DispatchOrder, ProbeFilter } from "./dispatch.ts";
import type { Participant } from "./probe-attachment.ts";
import { controllerStub, type Shard, shardsForSource } from "./shards.ts";

/** What a probe is given to run a measurement. */
export function assignmentOf(row: MeasurementRow): Assignment {
  return {
    msm_id: row.id, spec: specOf(JSON.parse(row.definition) as Definition), interval: row.interval, spread: row.spread ?? 0,
    start_time: row.start_time, stop_time: row.stop_time,
  };
}

export type DispatchHost = { env: () => Env; get: (id: number) => MeasurementRow | null };

export class ProbeDispatch {
  private readonly h: DispatchHost;
  /** Dispatch orders made in the current turn, per shard, not yet sent (see order()). */
  private readonly orders = new Map<string, { orders: DispatchOrder[]; waiters: PromiseWithResolvers<Participant[]>[] }>();

  constructor(host: DispatchHost) {
    this.h = host;
  }

  /** Asks the shards of each source, in order, for probes until the source is filled; `exclude`: already taking part. */
  async dispatch(msmId: number, assignment: Assignment, sources: ProbeSource[], exclude: number[]): Promise<{ participants: Participant[]; failures: number; asked: number }> {
    const participants: Participant[] = [];
    let failures = 0, asked = 0;
    for (const given of sources) {
      // An "msm" source reuses the probes of that measurement.
      const source: ProbeSource = given.type === "msm"
        ? { ...given, type: "probes", value: (JSON.parse(this.h.get(Number(given.value))?.participants ?? "[]") as Participant[]).map((p) => p.probe_id).join(",") || "0" }
        : given;
      let want = source.requested;
      // Busy controllers give fewer on the first pass, so the load spreads over shards; what is still missing is
      // asked for again with nothing held back, so no probe that exists is left out.
      for (const busyOk of [false, true]) {
        for (const shard of shardsForSource(source)) {
          if (want <= 0) break;
          asked++;
          try {
            const got = await this.order(shard, {
              assignment, filter: filterOf(source), want, exclude: [...exclude, ...participants.map((p) => p.probe_id)], busyOk,
            });
            participants.push(...got);
            want -= got.length;
          } catch (e) {
            failures++;
            console.error(`brain: dispatch of ${msmId} to ${shard.name} failed: ${String(e)}`);
          }
        }
        if (want <= 0) break;
      }
    }
    return { participants, failures, asked };
  }

  /**
   * Asks a shard's controller for probes. Orders made in one turn (the measurements of one request) go to each
   * controller in one call when the turn's microtasks run: one round trip, and a probe's measurement frames back to back.
   */
  private order(shard: Shard, order: DispatchOrder): Promise<Participant[]> {
    let batch = this.orders.get(shard.name);
    if (!batch) {
      const b = batch = { orders: [] as DispatchOrder[], waiters: [] as PromiseWithResolvers<Participant[]>[] };
      this.orders.set(shard.name, b);
      queueMicrotask(() => {
        this.orders.delete(shard.name);
        controllerStub(this.h.env().CONTROLLER, shard).dispatch(b.orders).then(
          (given) => b.waiters.forEach((w, i) => w.resolve(given[i]!)),
          (e: unknown) => b.waiters.forEach((w) => w.reject(e)));
      });
    }
    const waiter = Promise.withResolvers<Participant[]>();
    batch.orders.push(order);
    batch.waiters.push(waiter);
    return waiter.promise;
  }
}

function filterOf(source: ProbeSource): ProbeFilter {
  const tags = source.tags ? { tags: source.tags } : {};
  switch (source.type) {
    case "country": return { country: source.value, ...tags };
    case "asn": return { asn: Number(source.value), ...tags };
    case "prefix": return { prefix: source.value, ...tags };
    case "probes": return { probe_ids: source.value.split(",").map(Number), ...tags };
    default: return tags;
  }
}
