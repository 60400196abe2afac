// DSC's data model (DNS-OARC's DNS Statistics Collector, dsc.conf(5)): a dataset is a 2-D array of counters, its
// first dimension one indexer and its second another; in the output a row's second-dimension cells past
// `max-cells` (the largest kept) are folded into "-:SKIPPED:-" (how many cells) and "-:SKIPPED_SUM:-" (their sum).
// The JSON form is DSC's: {name, start_time, stop_time, dimensions, data: [{Label1: v, Label2: [{val, count}]}]}.

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

/** What each dataset counts: its dimension labels, which messages, and the output's max-cells (0: all). */
export type DatasetSpec = { name: string; dimensions: [string, string]; maxCells: number };

/** Counters of one dataset for one interval; labels are kept as given (numbers or strings) until output. */
export class Dataset {
  readonly rows = new Map<string | number, Map<string | number, number>>();
  /** Distinct second-dimension values held across rows; past `capacity` new values are counted as skipped at once. */
  private cells = 0;
  private readonly overflow = new Map<string | number, { cells: Set<string | number>; sum: number }>();
  readonly spec: DatasetSpec;
  private readonly capacity: number;
  constructor(spec: DatasetSpec, capacity = 50_000) {
    this.spec = spec;
    this.capacity = capacity;
  }

  /** Counts n in a cell; true when the cell is new (so a caller keying by hash knows to remember the text). */
  add(k1: string | number, k2: string | number, n = 1): boolean {
    let row = this.rows.get(k1);
    if (!row) this.rows.set(k1, (row = new Map()));
    const had = row.get(k2);
    if (had !== undefined) { row.set(k2, had + n); return false; }
    if (this.cells >= this.capacity) {
      // Memory stays bounded under a flood of distinct names: the value is counted in the skipped sum; how many
      // distinct values were skipped is then a lower bound (said in docs/dnsstats.md).
      let o = this.overflow.get(k1);
      if (!o) this.overflow.set(k1, (o = { cells: new Set(), sum: 0 }));
      if (o.cells.size < 1024) o.cells.add(k2);
      o.sum += n;
      return false;
    }
    row.set(k2, n);
    this.cells++;
    return true;
  }

  /** Adds another interval's counters (before output, so folding sees the sums). */
  merge(other: Dataset): void {
    for (const [k1, row] of other.rows) for (const [k2, n] of row) this.add(k1, k2, n);
    for (const [k1, o] of other.overflow) {
      let mine = this.overflow.get(k1);
      if (!mine) this.overflow.set(k1, (mine = { cells: new Set(), sum: 0 }));
      for (const c of o.cells) if (mine.cells.size < 1024) mine.cells.add(c);
      mine.sum += o.sum;
    }
  }

  get empty(): boolean {
    return this.rows.size === 0 && this.overflow.size === 0;
  }

  /** DSC's JSON for this interval, with rows and cells in a stable order (count descending, then value). */
  toDsc(start: number, stop: number, label = (dim: number, v: string | number) => String(v)): DscDataset {
    const [d1, d2] = this.spec.dimensions;
    const data: DscDataset["data"] = [];
    const keys = new Set([...this.rows.keys(), ...this.overflow.keys()]);
    for (const k1 of [...keys].sort(compareKeys)) {
      const cells = [...(this.rows.get(k1) ?? new Map<string | number, number>())].map(([v, count]) => ({ val: label(2, v), count }));
      cells.sort((a, b) => b.count - a.count || (a.val < b.val ? -1 : a.val > b.val ? 1 : 0));
      const o = this.overflow.get(k1);
      let skipped = o ? o.cells.size : 0;
      let skippedSum = o ? o.sum : 0;
      const max = this.spec.maxCells;
      if (max > 0 && cells.length > max) {
        for (const c of cells.splice(max)) { skipped++; skippedSum += c.count; }
      }
      if (skipped > 0) cells.push({ val: SKIPPED, count: skipped }, { val: SKIPPED_SUM, count: skippedSum });
      data.push({ [d1]: label(1, k1), [d2]: cells });
    }
    return { name: this.spec.name, start_time: start, stop_time: stop, dimensions: [d1, d2], data };
  }
}

function compareKeys(a: string | number, b: string | number): number {
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
}

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
