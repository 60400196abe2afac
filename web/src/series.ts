// The console's numbers, apart from drawing them (so they are tested in Node: test/node/web-series.test.ts): a ping
// measurement's RTT over time, and an account's balance over time.

/** What the charts read of a result (Atlas's ping result fields). */
export type PingSummary = { prb_id: number; timestamp: number; type: string; min?: number; avg?: number; max?: number; sent?: number; rcvd?: number };

/** A credits journal item as the API lists it. */
export type JournalItem = { id: number; type: string; amount: number; time: number; measurement: number | null; detail: string };

/** One chart point per time bucket: the lowest minimum, the median of the averages and the highest maximum. */
export function latencySeries(results: PingSummary[], bucket: number): { t: number[]; min: number[]; median: number[]; max: number[]; probes: number[] } {
  const buckets = new Map<number, PingSummary[]>();
  for (const r of results) {
    if (!answered(r)) continue;
    const t = Math.floor(r.timestamp / bucket) * bucket;
    const bucketed = buckets.get(t);
    if (bucketed) bucketed.push(r); else buckets.set(t, [r]);
  }
  const out = { t: [] as number[], min: [] as number[], median: [] as number[], max: [] as number[], probes: [] as number[] };
  for (const t of [...buckets.keys()].sort((a, b) => a - b)) {
    const rs = buckets.get(t)!;
    out.t.push(t);
    out.min.push(Math.min(...rs.map((r) => r.min!)));
    out.median.push(median(rs.map((r) => r.avg!))!);
    out.max.push(Math.max(...rs.map((r) => r.max!)));
    out.probes.push(new Set(rs.map((r) => r.prb_id)).size);
  }
  return out;
}

/**
 * The balance after each journal entry, oldest first, from the balance now walked back through the entries (newest
 * first, income and expense merged by their shared id). Where one direction's list was cut short, the walk stops at
 * its oldest entry: before that, entries of that direction would be missing.
 */
export function balanceSeries(balance: number, income: JournalItem[], expense: JournalItem[], incomeComplete: boolean, expenseComplete: boolean): { t: number[]; balance: number[] } {
  const floor = Math.max(incomeComplete || income.length === 0 ? -Infinity : income[income.length - 1]!.id,
    expenseComplete || expense.length === 0 ? -Infinity : expense[expense.length - 1]!.id);
  const entries = [...income.map((i) => ({ ...i, sign: 1 })), ...expense.map((e) => ({ ...e, sign: -1 }))]
    .filter((e) => e.id >= floor).sort((a, b) => b.id - a.id);
  const t: number[] = [], b: number[] = [];
  let after = balance;
  for (const e of entries) {
    t.push(e.time); b.push(after);
    after -= e.sign * e.amount;
  }
  return { t: t.reverse(), balance: b.reverse() };
}

/** What a grid cell reads of a result: its RTT (ms; null when nothing answered) and the share of it lost (0–1). */
export type Sample = { rtt: number | null; lost: number };

/**
 * A ping or DNS result as one sample: a ping's average RTT and the share of its packets lost; a DNS query's response
 * time, or lost whole when it got no answer (a timeout or a socket error). With `use_probe_resolver`, the first
 * resolver's. Null for results a grid does not show.
 */
export type Measured = { type: string; timestamp: number; avg?: number; sent?: number; rcvd?: number; result?: unknown; error?: unknown; resultset?: { result?: { rt?: number }; error?: unknown }[] };

export function sampleOf(r: Measured): Sample | null {
  if (r.type === "ping") {
    if (!r.sent) return null;
    return { rtt: r.rcvd && r.avg !== undefined && r.avg >= 0 ? r.avg : null, lost: 1 - (r.rcvd ?? 0) / r.sent };
  }
  if (r.type === "dns") {
    const one = r.resultset ? r.resultset[0] : { result: r.result as { rt?: number } | undefined, error: r.error };
    if (!one) return null;
    const rt = one.result?.rt;
    return typeof rt === "number" ? { rtt: rt, lost: 0 } : { rtt: null, lost: 1 };
  }
  return null;
}

/** One cell: the median RTT of its samples (null if none answered), the mean share lost, and how many samples. */
export type Cell = { rtt: number | null; lost: number; n: number };

/**
 * DNSMON's grid: rows (probes, or targets) × `cols` equal time bins over [t0, t1); each cell the median RTT and the
 * share lost of the samples in it, or null where there are none. Rows in the order given.
 */
export function gridOf<R extends Measured>(results: R[], rows: (string | number)[], rowOf: (r: R) => string | number,
  t0: number, t1: number, cols: number): (Cell | null)[][] {
  const index = new Map(rows.map((k, i) => [k, i]));
  const width = (t1 - t0) / cols;
  const samples: { rtts: number[]; lost: number; n: number }[][] = rows.map(() => []);
  for (const r of results) {
    const row = index.get(rowOf(r));
    if (row === undefined || r.timestamp < t0 || r.timestamp >= t1) continue;
    const s = sampleOf(r);
    if (!s) continue;
    const col = Math.min(cols - 1, Math.floor((r.timestamp - t0) / width));
    const at = (samples[row]![col] ??= { rtts: [], lost: 0, n: 0 });
    if (s.rtt !== null) at.rtts.push(s.rtt);
    at.lost += s.lost;
    at.n++;
  }
  return samples.map((line) => Array.from({ length: cols }, (_, c) => {
    const at = line[c];
    if (!at) return null;
    const sorted = at.rtts.sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    const rtt = sorted.length === 0 ? null : sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
    return { rtt, lost: at.lost / at.n, n: at.n };
  }));
}

/** DNSMON's RTT colours: green up to 60 ms, through yellow, to red at 250 ms and beyond; lost whole: dark. */
export function rttColour(cell: Cell | null): string {
  if (!cell) return "#e6e9ed";
  if (cell.rtt === null) return "#3b0d0c";
  const f = Math.max(0, Math.min(1, (cell.rtt - 60) / 190));
  return rampColour(f);
}

/** Loss colours: none green, through yellow, all lost red; no data grey. */
export function lossColour(cell: Cell | null): string {
  return cell ? rampColour(cell.lost) : "#e6e9ed";
}

/** Green (0) → yellow (0.5) → red (1). */
function rampColour(f: number): string {
  const [r, g] = f < 0.5 ? [Math.round(26 + (230 - 26) * f * 2), Math.round(127 + (180 - 127) * f * 2)] : [Math.round(230 - (230 - 180) * (f - 0.5) * 2), Math.round(180 - 145 * (f - 0.5) * 2)];
  return `rgb(${r},${g},${f < 0.5 ? 55 : 24})`;
}

/** What the charts read of a probe. */
export type ProbeFacts = { id: number; country_code: string | null; asn_v4: number | null; geometry: { coordinates: [number, number] } | null };

/** The median of some numbers (null for none). */
export function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const answered = (r: PingSummary) => r.type === "ping" && !!r.rcvd && r.avg !== undefined && r.avg >= 0;

/**
 * LatencyMON's groups: each group's median RTT per time bucket (null where it has no answered result), for the
 * `limit` groups with most results — by probe, the probe's country or its network. Relative: each group's values
 * less its own lowest, so a change stands out whatever the distance.
 */
export function groupSeries(results: PingSummary[], probes: Map<number, ProbeFacts>, by: "probe" | "country" | "asn", bucket: number,
  relative: boolean, limit = 8): { t: number[]; groups: { label: string; values: (number | null)[] }[] } {
  const keyOf = (r: PingSummary) => by === "probe" ? `probe ${r.prb_id}`
    : by === "country" ? probes.get(r.prb_id)?.country_code ?? "unknown country" : `AS${probes.get(r.prb_id)?.asn_v4 ?? "?"}`;
  const byGroup = new Map<string, PingSummary[]>();
  for (const r of results.filter(answered)) {
    const k = keyOf(r);
    const list = byGroup.get(k);
    if (list) list.push(r); else byGroup.set(k, [r]);
  }
  const chosen = [...byGroup.entries()].sort((a, b) => b[1].length - a[1].length || (a[0] < b[0] ? -1 : 1)).slice(0, limit);
  const t = [...new Set(chosen.flatMap(([, rs]) => rs.map((r) => Math.floor(r.timestamp / bucket) * bucket)))].sort((a, b) => a - b);
  const at = new Map(t.map((x, i) => [x, i]));
  const groups = chosen.map(([label, rs]) => {
    const cells: number[][] = t.map(() => []);
    for (const r of rs) cells[at.get(Math.floor(r.timestamp / bucket) * bucket)!]!.push(r.avg!);
    const values = cells.map(median);
    const floor = Math.min(...values.filter((v): v is number => v !== null));
    return { label, values: relative ? values.map((v) => (v === null ? null : v - floor)) : values };
  });
  return { t, groups };
}

/** The RTT map's frames: per time bucket, each probe's RTT then (its newest average; null if nothing answered). */
export function rttFrames(results: PingSummary[], bucket: number): { t: number; rtts: Map<number, number | null> }[] {
  const frames = new Map<number, Map<number, number | null>>();
  for (const r of [...results].sort((a, b) => a.timestamp - b.timestamp)) {
    if (r.type !== "ping") continue;
    const t = Math.floor(r.timestamp / bucket) * bucket;
    const frame = frames.get(t) ?? new Map<number, number | null>();
    frames.set(t, frame);
    frame.set(r.prb_id, answered(r) ? r.avg! : null);
  }
  return [...frames.entries()].sort((a, b) => a[0] - b[0]).map(([t, rtts]) => ({ t, rtts }));
}

/** CAIDA's per-country figure: the median of each country's probes' median RTTs, with how many probes. */
export function countryMedians(results: PingSummary[], probes: Map<number, ProbeFacts>): { country: string; probes: number; median: number }[] {
  const perProbe = new Map<number, number[]>();
  const push = <K>(m: Map<K, number[]>, k: K, v: number) => { const list = m.get(k); if (list) list.push(v); else m.set(k, [v]); };
  for (const r of results.filter(answered)) push(perProbe, r.prb_id, r.avg!);
  const perCountry = new Map<string, number[]>();
  for (const [id, rtts] of perProbe) {
    const cc = probes.get(id)?.country_code;
    if (cc) push(perCountry, cc, median(rtts)!);
  }
  return [...perCountry.entries()].map(([country, ms]) => ({ country, probes: ms.length, median: median(ms)! }))
    .sort((a, b) => a.median - b.median || (a.country < b.country ? -1 : 1));
}

/** Great-circle distance in km between [lon, lat] points (haversine, on a 6,371 km sphere). */
export function distanceKm(a: [number, number], b: [number, number]): number {
  const rad = Math.PI / 180;
  const dLat = (b[1] - a[1]) * rad, dLon = (b[0] - a[0]) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a[1] * rad) * Math.cos(b[1] * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * 6371 * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** Light in fibre covers about 200 km a millisecond: no round trip over `km` can take less than km / 100 ms. */
export const fibreFloorMs = (km: number) => km / 100;

/**
 * CAIDA's RTT-vs-distance density: answered results counted in 100 km × 3 ms bins, by their probe's distance from the
 * target's place. Where Vantage does not know the target's place, it takes the probe with the lowest RTT's (the
 * shortest-ping estimate): `origin` says which probe that was.
 */
export function distanceDensity(results: PingSummary[], probes: Map<number, ProbeFacts>, target?: [number, number]):
  { origin: { probe: number; rtt: number } | null; place: [number, number] | null; bins: Map<string, number>; points: { km: number; rtt: number }[] } {
  const located = results.filter((r) => answered(r) && probes.get(r.prb_id)?.geometry);
  let origin: { probe: number; rtt: number } | null = null;
  let place = target ?? null;
  if (!place && located.length) {
    const best = located.reduce((a, b) => (b.min! < a.min! ? b : a));
    origin = { probe: best.prb_id, rtt: best.min! };
    place = probes.get(best.prb_id)!.geometry!.coordinates;
  }
  const bins = new Map<string, number>();
  const points = place ? located.map((r) => ({ km: distanceKm(probes.get(r.prb_id)!.geometry!.coordinates, place!), rtt: r.avg! })) : [];
  for (const p of points) {
    const k = `${Math.floor(p.km / 100)},${Math.floor(p.rtt / 3)}`;
    bins.set(k, (bins.get(k) ?? 0) + 1);
  }
  return { origin, place, bins, points };
}

/** 10 ms and less dark green, 300 ms and more red, on a logarithmic scale between. */
export function rttScale(ms: number): string {
  const f = Math.max(0, Math.min(1, Math.log(Math.max(ms, 10) / 10) / Math.log(30)));
  return `hsl(${Math.round(130 * (1 - f))}, 75%, ${Math.round(28 + 20 * f)}%)`;
}
