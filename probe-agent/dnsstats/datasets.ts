// Counting DSC datasets (protocol/dsc.ts has their model and JSON form) for one interval on the agent.
import { type DscDataset, SKIPPED, SKIPPED_SUM } from "../../protocol/dsc.ts";

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

  private lastKey: string | number | undefined;
  private lastRow: Map<string | number, number> | undefined;

  /** Counts n in a cell; true when the cell is new (so a caller keying by hash knows to remember the text). */
  add(k1: string | number, k2: string | number, n = 1): boolean {
    // Most datasets have one row ("ALL"): the last row used is kept, so a count costs one map lookup.
    let row = k1 === this.lastKey ? this.lastRow : this.rows.get(k1);
    if (!row) this.rows.set(k1, (row = new Map()));
    this.lastKey = k1;
    this.lastRow = row;
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

