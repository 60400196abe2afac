// /api/v2/dnsstats/ and /api/v2/traffic/: what appliances report (protocol/datasources.ts), merged over minutes,
// servers and probes. Records are read through the controllers' index like any built-in's results; public ones for
// everybody, private ones only for the account that hosts the probe. Merging adds counts cell by cell and takes
// the union of the client sketches, so any set of minutes and probes adds up exactly to the sum of its parts.
import type { IRequest } from "itty-router";
import { REGISTRY_NAME } from "../../durable-objects/env.ts";
import { readResults } from "../../durable-objects/results.ts";
import { type CdnsResult, type DataSourceKind, dataSourceId, DNSSTATS_DATASETS, type DnsStatsResult, type TrafficResult } from "../../protocol/index.ts";
import { cdnsFile } from "../../protocol/cdns-file.ts";
import { type DscDataset, mergeDsc } from "../../protocol/dsc.ts";
import { HyperLogLog } from "../../protocol/hll.ts";
import { apiKey } from "./auth.ts";
import { ApiError, intListParam, intParam, parameterError } from "./errors.ts";
import { timeRange } from "./results.ts";

/**
 * A record's timestamp is when the agent spooled it: at most ~15 s after its last minute's end, or a little more when
 * a restart sent two records close together (the agent keeps them ≥ 5 s apart): records are read this far past the range.
 */
const RECORD_LAG_S = 600;

/** The records of a kind in the range: public ones, and private ones of the probes the caller's account hosts. */
async function records<T extends DnsStatsResult | TrafficResult | CdnsResult>(request: IRequest, env: Env, kind: DataSourceKind, start: number, stop: number, probes: number[] | undefined): Promise<T[]> {
  const caller = await apiKey(request, env);
  const owned = new Set<number>();
  if (caller) {
    const mine = await env.REGISTRY.getByName(REGISTRY_NAME).listProbes({ owner: caller.account, ...(probes ? { ids: probes } : {}) }, 0, 100_000);
    for (const p of mine.probes) owned.add(p.id);
  }
  const [open, closed] = await Promise.all([
    readResults(env, dataSourceId(kind, true), start, stop + RECORD_LAG_S),
    owned.size ? readResults(env, dataSourceId(kind, false), start, stop + RECORD_LAG_S) : Promise.resolve([]),
  ]);
  const all = [...(open ?? []), ...(closed ?? []).filter((r) => owned.has(r.prb_id))] as T[];
  return probes ? all.filter((r) => probes.includes(r.prb_id)) : all;
}

/**
 * GET /api/v2/dnsstats/?start&stop[&probe=1,2][&server=addr][&dataset=qtype,rcode] — the DNS statistics of the
 * whole minutes inside [start, stop] (at most a day), merged: queries, responses, distinct clients (the sketches' union) and each
 * dataset summed cell by cell.
 */
export async function getDnsStats(request: IRequest, env: Env): Promise<Response> {
  const url = new URL(request.url);
  const { start, stop } = timeRange(url);
  const probes = intListParam(url, "probe");
  const server = url.searchParams.get("server");
  const wanted = url.searchParams.get("dataset")?.split(",").filter(Boolean);
  for (const name of wanted ?? []) {
    if (!(DNSSTATS_DATASETS as readonly string[]).includes(name)) throw parameterError("dataset", `"${name}" is not a dataset; enter some of ${DNSSTATS_DATASETS.join(", ")}.`);
  }
  const found = await records<DnsStatsResult>(request, env, "dnsstats", start, stop, probes);
  const byName = new Map<string, DscDataset[]>();
  const clients = new HyperLogLog();
  const seenProbes = new Set<number>(), servers = new Set<string>(), minutes = new Set<string>();
  let queries = 0, responses = 0;
  // A minute can reach the edge twice (a resend to another shard): one copy per probe, minute and server counts.
  const counted = new Set<string>();
  for (const r of found) {
    for (const m of r.minutes) {
      if (m.start_time < start || m.stop_time > stop) continue;
      for (const s of m.servers) {
        if (server !== null && s.server !== server) continue;
        const key = `${r.prb_id}|${r.timestamp}|${m.start_time}|${s.server}`;
        if (counted.has(key)) continue;
        counted.add(key);
        seenProbes.add(r.prb_id);
        servers.add(s.server);
        minutes.add(`${r.prb_id}|${m.start_time}`);
        queries += s.queries;
        responses += s.responses;
        clients.merge(HyperLogLog.parse(s.clients.hll));
        for (const d of s.datasets) {
          if (wanted && !wanted.includes(d.name)) continue;
          byName.set(d.name, [...(byName.get(d.name) ?? []), d as DscDataset]);
        }
      }
    }
  }
  const datasets = DNSSTATS_DATASETS.flatMap((name) => {
    const merged = mergeDsc(byName.get(name) ?? []);
    return merged ? [{ ...merged, start_time: start, stop_time: stop }] : [];
  });
  return Response.json({
    start, stop, probes: [...seenProbes].sort((a, b) => a - b), servers: [...servers].sort(), probe_minutes: minutes.size,
    queries, responses, clients: { estimate: seenProbes.size ? clients.estimate() : 0, hll: clients.serialize() }, datasets,
  });
}

/**
 * GET /api/v2/traffic/?start&stop[&probe=1,2] — the classifiers' traffic per application over the intervals inside
 * [start, stop], summed over intervals and probes, largest first.
 */
export async function getTraffic(request: IRequest, env: Env): Promise<Response> {
  const url = new URL(request.url);
  const { start, stop } = timeRange(url);
  const probes = intListParam(url, "probe");
  const found = await records<TrafficResult>(request, env, "traffic", start, stop, probes);
  const apps = new Map<string, { label: string; flows: number; packets_up: number; bytes_up: number; packets_down: number; bytes_down: number }>();
  const seenProbes = new Set<number>();
  const counted = new Set<string>();
  let intervals = 0;
  for (const r of found) {
    for (const i of r.intervals) {
      if (i.start < start || i.end > stop) continue;
      const key = `${r.prb_id}|${r.source}|${i.start}`;
      if (counted.has(key)) continue;
      counted.add(key);
      seenProbes.add(r.prb_id);
      intervals++;
      for (const a of i.apps) {
        const sum = apps.get(a.label) ?? { label: a.label, flows: 0, packets_up: 0, bytes_up: 0, packets_down: 0, bytes_down: 0 };
        sum.flows += a.flows; sum.packets_up += a.packets_up; sum.bytes_up += a.bytes_up; sum.packets_down += a.packets_down; sum.bytes_down += a.bytes_down;
        apps.set(a.label, sum);
      }
    }
  }
  const list = [...apps.values()].sort((a, b) => b.bytes_up + b.bytes_down - (a.bytes_up + a.bytes_down) || (a.label < b.label ? -1 : 1));
  return Response.json({ start, stop, probes: [...seenProbes].sort((a, b) => a - b), intervals, apps: list });
}

/** An hour of an appliance's C-DNS file as the agent names it (YYYYMMDD-HH), as unix seconds. */
function hourStart(hour: string): number {
  const m = hour.match(/^(\d{4})(\d{2})(\d{2})-(\d{2})$/);
  const t = m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4])) / 1000 : NaN;
  if (!Number.isFinite(t) || new Date(t * 1000).getUTCHours() !== Number(m![4])) throw parameterError("hour", "Enter an hour as YYYYMMDD-HH (UTC).");
  return t;
}

/** A probe's sampled blocks of one hour, in the order they were written, grouped by the parameters they were written with. */
function parts(found: CdnsResult[]): Map<string, { parameters: CdnsResult["parameters"]; blocks: CdnsResult["blocks"]; source: string }> {
  const out = new Map<string, { parameters: CdnsResult["parameters"]; blocks: CdnsResult["blocks"]; source: string }>();
  for (const r of [...found].sort((a, b) => a.timestamp - b.timestamp)) {
    const key = `${r.prb_id}|${r.hour}|${JSON.stringify(r.parameters)}`;
    const part = out.get(key) ?? { parameters: r.parameters, blocks: [], source: r.source };
    part.blocks.push(...r.blocks);
    out.set(key, part);
  }
  return out;
}

/**
 * GET /api/v2/dnsstats/samples/?start&stop[&probe] — the appliances' sampled query/response pairs (C-DNS), one entry
 * per probe and hour (and per set of parameters, when an appliance changed them within the hour): `{probe, hour,
 * part, source, pairs, blocks, parameters, url}`; public ones for everybody, private ones for the probe's host.
 */
export async function listSamples(request: IRequest, env: Env): Promise<Response> {
  const url = new URL(request.url);
  const { start, stop } = timeRange(url);
  const found = await records<CdnsResult>(request, env, "cdns", start, stop, intListParam(url, "probe"));
  const byProbeHour = new Map<string, number>();
  const results = [...parts(found)].map(([key, p]) => {
    const [probe, hour] = key.split("|") as [string, string];
    const part = (byProbeHour.get(`${probe}|${hour}`) ?? 0) + 1;
    byProbeHour.set(`${probe}|${hour}`, part);
    return {
      probe: Number(probe), hour, part, source: p.source, pairs: p.blocks.reduce((n, b) => n + b.pairs, 0), blocks: p.blocks.length, parameters: p.parameters,
      url: `${url.origin}/api/v2/dnsstats/samples/${probe}/${hour}/${part > 1 ? `?part=${part}` : ""}`,
    };
  }).sort((a, b) => a.probe - b.probe || (a.hour < b.hour ? -1 : a.hour > b.hour ? 1 : a.part - b.part));
  return Response.json({ count: results.length, results });
}

/** GET /api/v2/dnsstats/samples/{probe}/{hour}/[?part=N] — that hour's C-DNS file (RFC 8618), gzipped. */
export async function getSample(request: IRequest, env: Env): Promise<Response> {
  const url = new URL(request.url);
  const probe = Number(request.params.probe);
  if (!Number.isSafeInteger(probe) || probe <= 0) throw parameterError("probe", "Enter a probe id.");
  const hour = String(request.params.hour);
  const start = hourStart(hour);
  const wanted = intParam(url, "part", 1, 1000) ?? 1;
  const found = (await records<CdnsResult>(request, env, "cdns", start, start + 3600, [probe])).filter((r) => r.hour === hour);
  const part = [...parts(found).values()][wanted - 1];
  if (!part) throw new ApiError(404, `No sample of probe ${probe} for hour ${hour}${wanted > 1 ? ` (part ${wanted})` : ""} that this key may read.`);
  const blocks = await Promise.all(part.blocks.map(async (b) => gunzip(Uint8Array.from(atob(b.gz), (c) => c.charCodeAt(0)))));
  const file = cdnsFile({
    sampleRate: part.parameters.sample_rate, queryTimeoutMs: part.parameters.query_timeout_ms, generator: "vantage edge",
    clientPrefixV4: part.parameters.client_prefix_v4, clientPrefixV6: part.parameters.client_prefix_v6, interfaces: [part.source],
  }, blocks);
  const gz = new Response(new Blob([file]).stream().pipeThrough(new CompressionStream("gzip")));
  return new Response(gz.body, {
    headers: { "Content-Type": "application/gzip", "Content-Disposition": `attachment; filename="probe-${probe}-${hour}${wanted > 1 ? `.${wanted}` : ""}.cdns.gz"` },
  });
}

async function gunzip(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"))).arrayBuffer());
}
