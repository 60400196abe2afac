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
    if (r.type !== "ping" || !r.rcvd || r.avg === undefined || r.avg < 0) continue;
    const t = Math.floor(r.timestamp / bucket) * bucket;
    const bucketed = buckets.get(t);
    if (bucketed) bucketed.push(r); else buckets.set(t, [r]);
  }
  const out = { t: [] as number[], min: [] as number[], median: [] as number[], max: [] as number[], probes: [] as number[] };
  for (const t of [...buckets.keys()].sort((a, b) => a - b)) {
    const rs = buckets.get(t)!;
    const avgs = rs.map((r) => r.avg!).sort((a, b) => a - b);
    const mid = avgs.length >> 1;
    out.t.push(t);
    out.min.push(Math.min(...rs.map((r) => r.min!)));
    out.median.push(avgs.length % 2 ? avgs[mid]! : (avgs[mid - 1]! + avgs[mid]!) / 2);
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
