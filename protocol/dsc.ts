// DSC's data model (DNS-OARC's DNS Statistics Collector, dsc.conf(5)): a dataset is a 2-D array of counters, its
// first dimension one indexer and its second another; in the output a row's second-dimension cells past
// `max-cells` (the largest kept) are folded into "-:SKIPPED:-" (how many cells) and "-:SKIPPED_SUM:-" (their sum).
// The JSON form is DSC's: {name, start_time, stop_time, dimensions, data: [{Label1: v, Label2: [{val, count}]}]}.
// Shared by the agent (which writes datasets) and the edge (which merges them).

export const SKIPPED = "-:SKIPPED:-";
export const SKIPPED_SUM = "-:SKIPPED_SUM:-";

export type DscCell = { val: string; count: number };
export type DscDataset = {
  name: string;
  start_time: number;
  stop_time: number;
  dimensions: [string, string];
  data: Record<string, string | DscCell[]>[];
};

/**
 * Sums DSC datasets of the same name cell by cell (folded cells included, as DSC's own tools add them): the
 * platform's merge across minutes and probes. Exact: every count in the result is the sum of the inputs' counts.
 */
export function mergeDsc(parts: DscDataset[]): DscDataset | null {
  if (parts.length === 0) return null;
  const first = parts[0]!;
  const [d1, d2] = first.dimensions;
  const sums = new Map<string, Map<string, number>>();
  let start = Infinity, stop = -Infinity;
  for (const p of parts) {
    if (p.name !== first.name || p.dimensions[0] !== d1 || p.dimensions[1] !== d2) throw new Error(`cannot merge dataset ${p.name} (${p.dimensions}) into ${first.name} (${first.dimensions})`);
    start = Math.min(start, p.start_time);
    stop = Math.max(stop, p.stop_time);
    for (const row of p.data) {
      const k1 = String(row[d1]);
      let m = sums.get(k1);
      if (!m) sums.set(k1, (m = new Map()));
      for (const c of row[d2] as DscCell[]) m.set(c.val, (m.get(c.val) ?? 0) + c.count);
    }
  }
  const data: DscDataset["data"] = [];
  for (const k1 of [...sums.keys()].sort()) {
    const cells = [...sums.get(k1)!].map(([val, count]) => ({ val, count }));
    const special = (v: string) => (v === SKIPPED ? 1 : v === SKIPPED_SUM ? 2 : 0);
    cells.sort((a, b) => special(a.val) - special(b.val) || b.count - a.count || (a.val < b.val ? -1 : 1));
    data.push({ [d1]: k1, [d2]: cells });
  }
  return { name: first.name, start_time: start, stop_time: stop, dimensions: [d1, d2], data };
}
