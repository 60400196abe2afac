// The controller's batches to R2: the outbox sealed into named batches (one per partition), each written once under a
// key no other batch can take (the storage's epoch in it), indexed per measurement, charged to its owner, and its
// hosts paid their share. The alarm runs it and, when anything fails, arms its own next attempt.
import { type Result, USER_MSM_MIN } from "../protocol/index.ts";
import { type AggregateGroup, aggregateKey, type BatchAggregate, batchKey, partitionKey } from "../storage/layout.ts";
import { BRAIN_NAME, REGISTRY_NAME } from "./env.ts";
import { groupBy } from "./group-by.ts";
import type { ProbeMarks } from "./marks.ts";
import type { PublicMeasurements } from "./public.ts";
import type { Sql } from "./sql.ts";

/** Hosts are paid their share once this much is due, or at the first flush an hour after their last payout. */
const HOST_PAYOUT_CREDITS = 1000;
const HOST_PAYOUT_INTERVAL_S = 3600;
/**
 * The index entry (`batches.msm_id`) of a batch's built-in results: one for all of them. A fleet runs dozens of
 * built-ins (an anchor ping and traceroute each); a row per built-in per batch was most of a trickling fleet's cost.
 */
export const BUILTINS_INDEX = 0;
/** An R2 call that takes longer is abandoned (and the flush retried): a hung call must not hold results back. */
const R2_TIMEOUT_MS = 30_000;

/** `p`, or an error naming `what` once `ms` have passed. */
function timeLimit<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms); })])
    .finally(() => clearTimeout(timer));
}

/** What the batches need of their controller. */
export type BatchHost = {
  ctx: DurableObjectState;
  /** The bindings as they are now (a test may put a failing bucket in their place). */
  env: () => Env;
  shard: () => string;
  sql: Sql;
  /** Probes' marks: what their hosts' shares come to; snapshotted before the outbox rows carrying them go. */
  marks: ProbeMarks;
  saveUsage: () => void;
  publicMeasurements: PublicMeasurements;
  /** The ASN of each probe connected here. */
  probeAsns: () => Map<number, number | null>;
};

export class Batches {
  private readonly h: BatchHost;
  constructor(host: BatchHost) {
    this.h = host;
  }

  /** Sets the alarm for the next flush: now when FLUSH_RESULTS wait, else within FLUSH_INTERVAL_MS. */
  async schedule(): Promise<void> {
    const pending = this.h.sql<{ n: number | null }>("SELECT SUM(count) AS n FROM outbox")[0]?.n ?? 0;
    const uncharged = this.h.sql<{ n: number }>("SELECT COUNT(*) AS n FROM charges")[0]!.n;
    if (pending === 0 && uncharged === 0) return;
    const threshold = Number(this.h.env().FLUSH_RESULTS ?? 1000);
    const at = pending >= threshold ? Date.now() : Date.now() + Number(this.h.env().FLUSH_INTERVAL_MS ?? 5000);
    const current = await this.h.ctx.storage.getAlarm();
    if (current === null || current > at) await this.h.ctx.storage.setAlarm(at);
  }

  /** Asks the brain to charge the results stored since the last charge; what it could not reach is retried later. */
  private async charge(): Promise<void> {
    const rows = this.h.sql<{ request_id: string; msm_id: number; results: number }>("SELECT request_id, msm_id, results FROM charges LIMIT 500");
    if (rows.length === 0) return;
    try {
      const done = await this.h.env().BRAIN.getByName(BRAIN_NAME).charge(rows);
      this.h.ctx.storage.transactionSync(() => { for (const id of done) this.h.sql("DELETE FROM charges WHERE request_id = ?", id); });
    } catch (e) {
      console.error(`controller ${this.h.shard()}: charging results failed, will retry: ${String(e)}`);
    }
    await this.schedule();
  }

  /**
   * Pays hosts their share in whole credits (registry → the owner's ledger): a probe's due payout is first marked
   * (`paying_milli`), then sent under a request id made from that mark, then recorded as paid; a retry after any
   * failure sends the same payout again, which the registry and the ledger take once. What is due comes from the
   * probes' marks (the share their stored results earned); a row per probe is written only when it is paid.
   */
  private async payHosts(): Promise<void> {
    const now = Math.floor(Date.now() / 1000);
    type Payout = { probe_id: number; paid_milli: number; paying_milli: number | null; paid_at: number };
    const payouts = new Map(this.h.sql<Payout>("SELECT probe_id, paid_milli, paying_milli, paid_at FROM payouts").map((p) => [p.probe_id, p]));
    const starting: Payout[] = [];
    for (const [probeId, { share }] of this.h.marks.all()) {
      const p = payouts.get(probeId) ?? { probe_id: probeId, paid_milli: 0, paying_milli: null, paid_at: 0 };
      const owed = share - p.paid_milli;
      if (p.paying_milli !== null || owed < 1000 || (owed < HOST_PAYOUT_CREDITS * 1000 && p.paid_at > now - HOST_PAYOUT_INTERVAL_S)) continue;
      starting.push({ ...p, paying_milli: p.paid_milli + Math.floor(owed / 1000) * 1000 });
    }
    this.h.ctx.storage.transactionSync(() => {
      for (const p of starting) {
        this.h.sql(`INSERT INTO payouts (probe_id, paid_milli, paying_milli, paid_at) VALUES (?, ?, ?, ?)
                    ON CONFLICT (probe_id) DO UPDATE SET paying_milli = excluded.paying_milli`, p.probe_id, p.paid_milli, p.paying_milli, p.paid_at);
      }
    });
    const due = this.h.sql<{ probe_id: number; paid_milli: number; paying_milli: number }>(
      "SELECT probe_id, paid_milli, paying_milli FROM payouts WHERE paying_milli IS NOT NULL LIMIT 500");
    if (due.length === 0) return;
    try {
      await this.h.env().REGISTRY.getByName(REGISTRY_NAME).resultShares(due.map((d) => ({
        request_id: `results:${this.h.shard()}:${d.probe_id}:${d.paying_milli}`, probe_id: d.probe_id, credits: (d.paying_milli - d.paid_milli) / 1000,
      })));
      this.h.ctx.storage.transactionSync(() => {
        for (const d of due) this.h.sql("UPDATE payouts SET paid_milli = paying_milli, paying_milli = NULL, paid_at = ? WHERE probe_id = ?", now, d.probe_id);
      });
    } catch (e) {
      console.error(`controller ${this.h.shard()}: paying hosts their share failed, will retry: ${String(e)}`);
    }
  }

  private flushing: Promise<{ objects: number; results: number }> | null = null;

  /** One flush at a time: the alarm and an operator's flush must not both write the same sealed batches. */
  async flush(): Promise<{ objects: number; results: number }> {
    while (this.flushing) await this.flushing.catch(() => undefined);
    this.flushing = this.writeBatches();
    try {
      return await this.flushing;
    } finally {
      this.flushing = null;
    }
  }

  /**
   * Writes the outbox to R2. Rows are first sealed into named batches in one transaction (a batch: its partition and
   * the range of outbox ids it covers), so a flush that dies after the PUT retries the same key with the same content
   * (write-once, If-None-Match: *), never a new copy.
   */
  private async writeBatches(): Promise<{ objects: number; results: number }> {
    const upto = this.stat("sealed_upto");
    const unsealed = this.h.sql<{ id: number; parts: string }>("SELECT id, parts FROM outbox WHERE id > ? ORDER BY id", upto);
    if (unsealed.length) {
      // One batch per partition the rows hold, each over the whole id range (an outbox row is one commit, whose
      // results may fall in several partitions): its results are the range's lines of that partition.
      const [first, last] = [unsealed[0]!.id, unsealed[unsealed.length - 1]!.id];
      const parts = new Set(unsealed.flatMap((r) => r.parts.split(",")));
      this.h.ctx.storage.transactionSync(() => {
        for (const part of parts) {
          const [type, date, hour] = part.split("|") as [string, string, string];
          this.h.sql("INSERT INTO sealed (key, type, date, hour, first_id, last_id) VALUES (?, ?, ?, ?, ?, ?)",
            batchKey({ type, date, hour }, this.h.shard(), first, last, this.epoch()), type, date, hour, first, last);
        }
        this.h.sql("INSERT OR REPLACE INTO stats (name, value) VALUES ('sealed_upto', ?)", last);
      });
    }
    let objects = 0, results = 0;
    const batches = this.h.sql<{ key: string; type: string; date: string; hour: string; first_id: number; last_id: number }>("SELECT * FROM sealed ORDER BY first_id");
    for (const { key, type, date, hour, first_id: first, last_id: last } of batches) {
      const part = `${type}|${date}|${hour}`;
      const rows = this.h.sql<{ body: string }>(
        "SELECT body FROM outbox WHERE id BETWEEN ? AND ? AND ',' || parts || ',' LIKE ? ORDER BY id", first, last, `%,${part},%`);
      // The lines as they were stored (a retried PUT must send the same bytes), parsed once for the index.
      const lines: string[] = [];
      const parsed: Result[] = [];
      for (const r of rows) {
        for (const line of r.body.split("\n")) {
          if (!line) continue;
          const res = JSON.parse(line) as Result;
          if (partitionKey(res.type, res.timestamp) !== part) continue;
          lines.push(line);
          parsed.push(res);
        }
      }
      const count = lines.length;
      const body = lines.map((l) => l + "\n").join("");
      const put = await timeLimit(this.h.env().RESULTS.put(key, body, {
        onlyIf: new Headers({ "If-None-Match": "*" }),
        httpMetadata: { contentType: "application/x-ndjson" },
        customMetadata: { results: String(count), shard: this.h.shard() },
      }), R2_TIMEOUT_MS, `PUT ${key}`);
      if (put === null) {
        // The key exists: this batch's own earlier PUT (a flush that died before indexing it) is the same bytes.
        // Anything else is a collision, and the rows stay until it is understood: never index what R2 does not hold.
        const there = await timeLimit(this.h.env().RESULTS.head(key), R2_TIMEOUT_MS, `HEAD ${key}`);
        if (!there || there.size !== new TextEncoder().encode(body).byteLength || there.customMetadata?.results !== String(count)) {
          throw new Error(`batch key ${key} holds another object (${there?.size ?? "?"} bytes); its ${count} results stay in the outbox`);
        }
      }
      const perMsm = new Map<number, { min: number; max: number; count: number }>();
      const rtts: { msm_id: number; prb_id: number; target: string; rtt: number }[] = [];
      for (const res of parsed) {
        const indexed = res.msm_id >= USER_MSM_MIN ? res.msm_id : BUILTINS_INDEX;
        const e = perMsm.get(indexed) ?? { min: res.timestamp, max: res.timestamp, count: 0 };
        perMsm.set(indexed, { min: Math.min(e.min, res.timestamp), max: Math.max(e.max, res.timestamp), count: e.count + 1 });
        if (res.type === "ping" && res.avg >= 0 && res.dst_addr) rtts.push({ msm_id: res.msm_id, prb_id: res.prb_id, target: res.dst_addr, rtt: res.avg });
      }
      // Public measurements only: an aggregate names its targets, and a private measurement's target is its owner's.
      const publicRtts = type === "ping" ? await this.h.publicMeasurements.only(rtts) : [];
      const aggregated = publicRtts.length > 0;
      if (aggregated) {
        const aggregate: BatchAggregate = { type: "ping", date, hour, groups: await this.aggregateByAs(publicRtts) };
        await timeLimit(this.h.env().RESULTS.put(aggregateKey(key), JSON.stringify(aggregate), { httpMetadata: { contentType: "application/json" } }), R2_TIMEOUT_MS, `PUT ${aggregateKey(key)}`);
      }
      this.h.ctx.storage.transactionSync(() => {
        for (const [msm, e] of perMsm) {
          this.h.sql("INSERT OR REPLACE INTO batches (msm_id, key, min_ts, max_ts, count) VALUES (?, ?, ?, ?, ?)", msm, key, e.min, e.max, e.count);
          // Users' measurements are paid for; built-in ones are not.
          if (msm >= USER_MSM_MIN) this.h.sql("INSERT OR IGNORE INTO charges (request_id, msm_id, results) VALUES (?, ?, ?)", `results:${key}:${msm}`, msm, e.count);
        }
        // Rows go once no sealed batch still covers them; the marks they carry must first be in a snapshot (marks.ts).
        this.h.sql("DELETE FROM sealed WHERE key = ?", key);
        const done = "id BETWEEN ? AND ? AND NOT EXISTS (SELECT 1 FROM sealed s WHERE outbox.id BETWEEN s.first_id AND s.last_id)";
        if (this.h.sql(`SELECT 1 FROM outbox WHERE ${done} AND marks IS NOT NULL LIMIT 1`, first, last).length) this.h.marks.snapshot();
        this.h.sql(`DELETE FROM outbox WHERE ${done}`, first, last);
        this.bump("r2_writes", aggregated ? 2 : 1);  // the batch, and its aggregate
        this.bump("results_written", count);
      });
      objects++;
      results += count;
    }
    await this.charge();
    await this.payHosts();
    this.h.saveUsage();
    return { objects, results };
  }

  /**
   * RTT samples grouped by the probe's ASN and the target, as the Atlas talk's per-AS aggregates: the ASN from the
   * probe's socket, or the registry for a probe that is not connected here.
   */
  private async aggregateByAs(rtts: { prb_id: number; target: string; rtt: number }[]): Promise<AggregateGroup[]> {
    const asn = this.h.probeAsns();
    const missing = [...new Set(rtts.map((r) => r.prb_id))].filter((id) => !asn.has(id));
    if (missing.length) {
      const { probes } = await this.h.env().REGISTRY.getByName(REGISTRY_NAME).listProbes({ ids: missing }, 0, missing.length);
      for (const p of probes) asn.set(p.id, p.asn_v4);
    }
    return [...groupBy(rtts, (r) => `${asn.get(r.prb_id) ?? ""}|${r.target}`).values()].map((g) => ({
      asn: asn.get(g[0]!.prb_id) ?? null, target: g[0]!.target, samples: g.map((r) => r.rtt),
    }));
  }

  /**
   * Flushes, and on any failure (R2 down or slow, the brain or registry unreachable) arms the next attempt itself,
   * backing off from 5 s to a minute: the runtime's own alarm retries give up after a few, and results must not wait
   * for new traffic to be written.
   */
  async onAlarm(): Promise<void> {
    try {
      await this.flush();
      if (this.stat("flush_failures")) this.h.sql("DELETE FROM stats WHERE name = 'flush_failures'");
    } catch (e) {
      const failures = this.stat("flush_failures") + 1;
      this.bump("flush_failures", 1);
      const wait = Math.min(60_000, 5000 * 2 ** Math.min(failures - 1, 4));
      console.error(`controller ${this.h.shard()}: flush failed (${failures} in a row), retrying in ${wait / 1000} s: ${String(e)}`);
      await this.h.ctx.storage.setAlarm(Date.now() + wait);
    }
  }

  /**
   * This storage's incarnation, in every batch key it writes: outbox ids restart at 1 if a controller's storage is
   * ever lost while R2 keeps its objects, and a batch must never take an earlier one's key.
   */
  private epoch(): string {
    let e = this.stat("epoch");
    if (!e) {
      e = crypto.getRandomValues(new Uint32Array(1))[0]! || 1;
      this.h.sql("INSERT OR REPLACE INTO stats (name, value) VALUES ('epoch', ?)", e);
    }
    return e.toString(16).padStart(8, "0");
  }

  stat(name: string): number {
    return this.h.sql<{ value: number }>("SELECT value FROM stats WHERE name = ?", name)[0]?.value ?? 0;
  }

  private bump(name: string, by: number): void {
    this.h.sql("INSERT INTO stats (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value", name, by);
  }
}
