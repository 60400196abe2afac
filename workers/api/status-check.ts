// GET /api/v2/measurements/{id}/status-check/: Atlas's status checks, which turn a ping measurement into alerts a
// monitoring system polls (Nagios-style): per probe, its latest RTT and packet loss and whether they alert; a global
// alert once more probes alert than permitted. Computed from the stored results on every request (nothing is kept).
import type { IRequest } from "itty-router";
import { BRAIN_NAME } from "../../durable-objects/env.ts";
import { readResults } from "../../durable-objects/results.ts";
import type { PingResult, ProbeSource } from "../../protocol/index.ts";
import { ApiError, intParam, parameterError } from "./errors.ts";
import { boolParam, onlyKnownParams } from "./filters.ts";
import { measurementId, requireVisible } from "./measurements.ts";

const PARAMS = ["max_packet_loss", "show_all", "permitted_total_alerts", "lookback", "median_rtt_threshold"];
/** Atlas's limit on the results compared per probe. */
const MAX_LOOKBACK = 10;

type ProbeStatus = {
  alert: boolean; alert_reasons?: ("loss" | "rtt")[]; last: number | null; last_packet_loss: number; source: string;
  median?: number | null; all?: (number | null)[];
};

/**
 * How a probe came into the measurement, as Atlas names it ("Country: GR"): a list of probe ids that names it gives
 * "Probe: <its id>" (never the whole list, repeated for every probe), else the first other source.
 */
function sourceOf(sources: ProbeSource[], probe: number): string {
  const named = sources.find((s) => s.type === "probes" && s.value.split(",").map(Number).includes(probe));
  if (named) return `Probe: ${probe}`;
  const s = sources.find((x) => x.type !== "probes") ?? sources[0]!;
  const name = s.type === "asn" ? "ASN" : s.type === "msm" ? "Measurement" : s.type[0]!.toUpperCase() + s.type.slice(1);
  return s.type === "probes" ? "Probes" : `${name}: ${s.value}`;
}

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The lowest RTT of a result (null when every packet was lost), and the RTT of each packet (null for a lost one). */
const rtts = (r: PingResult) => r.result.map((x) => ("rtt" in x && typeof x.rtt === "number" ? x.rtt : null));
const lowest = (r: PingResult) => (r.rcvd > 0 ? r.min : null);

export async function statusCheck(request: IRequest, env: Env): Promise<Response> {
  const url = new URL(request.url);
  onlyKnownParams(url, PARAMS);
  const maxLoss = intParam(url, "max_packet_loss", 0, 100) ?? 75;
  const showAll = boolParam(url, "show_all") ?? false;
  const permitted = intParam(url, "permitted_total_alerts", 0) ?? 0;
  const lookback = intParam(url, "lookback", 1, MAX_LOOKBACK) ?? 1;
  const thresholdText = url.searchParams.get("median_rtt_threshold");
  const threshold = thresholdText === null || thresholdText === "" ? null : Number(thresholdText);
  if (threshold !== null && !(Number.isFinite(threshold) && threshold >= 0)) throw parameterError("median_rtt_threshold", "Enter a number of milliseconds, 0 or more.");

  const id = measurementId(request);
  const row = await env.BRAIN.getByName(BRAIN_NAME).get(id);
  if (!row) throw new ApiError(404, `No measurement with id ${id}.`);
  await requireVisible(request, env, row);
  if (row.type !== "ping") throw new ApiError(400, `Status checks are for ping measurements; measurement ${id} is a ${row.type} measurement.`);

  // Only the newest `lookback` runs matter: read back far enough to hold them (a one-off's whole life).
  const now = Math.floor(Date.now() / 1000);
  const since = row.interval === null ? null : now - (lookback + 1) * row.interval - (row.spread ?? 0);
  const results = ((await readResults(env, id, since, null)) ?? []) as PingResult[];
  const byProbe = new Map<number, PingResult[]>();
  for (const r of results.sort((a, b) => b.timestamp - a.timestamp)) {
    const list = byProbe.get(r.prb_id) ?? [];
    byProbe.set(r.prb_id, list);
    if (list.length < lookback) list.push(r);
  }

  const sources = JSON.parse(row.sources) as ProbeSource[];
  const probes: Record<string, ProbeStatus> = {};
  let alerts = 0;
  for (const [probe, [latest, ...earlier]] of [...byProbe.entries()].sort((a, b) => a[0] - b[0])) {
    const loss = latest!.sent === 0 ? 100 : Math.round(((latest!.sent - latest!.rcvd) / latest!.sent) * 10_000) / 100;
    const last = lowest(latest!);
    const reasons: ("loss" | "rtt")[] = [];
    if (loss > maxLoss) reasons.push("loss");
    const status: ProbeStatus = { alert: false, last, last_packet_loss: loss, source: sourceOf(sources, probe) };
    if (threshold !== null) {
      // The latest RTT against the median of the newest `lookback` runs, the latest included (Atlas's
      // median_rtt_threshold; with the default lookback of 1 it never alerts).
      const m = median([latest!, ...earlier].map(lowest).filter((x): x is number => x !== null));
      status.median = m;
      if (last !== null && m !== null && last - m > threshold) reasons.push("rtt");
    }
    if (reasons.length) {
      status.alert = true;
      status.alert_reasons = reasons;
      alerts++;
    }
    if (status.alert || showAll) status.all = rtts(latest!);
    probes[String(probe)] = status;
  }
  return Response.json({ global_alert: alerts > permitted, total_alerts: alerts, probes });
}
