// What a controller must remember of each probe to store its results exactly once: the highest result seq stored
// (everything at or below it is a resend), the hosts' share its results earned (thousandths of a credit), and the
// results stored per periodic assignment (admission.ts bounds them). Every field only grows, so two records of one
// probe merge by taking the larger of each: replaying them in any order, or twice, gives the same mark.
//
// Why not a row per probe: a fleet's results trickle one or two per frame, and a row written per frame made SQLite
// rows most of the cost (~$3–4 per million results, docs/benchmarks.md). The marks are kept in memory instead, and
// made durable two ways:
//   - each group commit (commits.ts) carries the marks it moved, as JSON in the outbox row it writes anyway;
//   - when the flush deletes outbox rows, the marks are first written as snapshot rows (probes by id modulo the
//     number of chunks, ~1,000 probes a chunk), only the chunks that changed since the last snapshot.
// On wake the map is the snapshot merged with the marks of every outbox row still there.

import type { Sql } from "./sql.ts";

export type Mark = { seq: number; share: number; runs: Record<number, number> };

/** Chunks for `probes` marks: a power of two, ~1,000 marks (tens of KB) a row, at most 64. */
export function chunkCount(probes: number): number {
  let n = 1;
  while (n < 64 && n * 1024 < probes) n *= 2;
  return n;
}

/** A fresh copy of a mark (`runs` may then be changed without touching the original). */
export function copyMark(m: Mark | undefined): Mark {
  return m ? { seq: m.seq, share: m.share, runs: { ...m.runs } } : { seq: 0, share: 0, runs: {} };
}

/** The larger of each field of two marks of one probe. */
export function mergeMarks(a: Mark | undefined, b: Mark): Mark {
  if (!a) return copyMark(b);
  const runs = { ...a.runs };
  for (const [msm, n] of Object.entries(b.runs)) runs[Number(msm)] = Math.max(runs[Number(msm)] ?? 0, n);
  return { seq: Math.max(a.seq, b.seq), share: Math.max(a.share, b.share), runs };
}

/** Marks as stored: `{"<probe id>": mark}`. */
export function marksJson(marks: Map<number, Mark>): string {
  return JSON.stringify(Object.fromEntries(marks));
}

export class ProbeMarks {
  private readonly sql: Sql;
  private committed: Map<number, Mark> | null = null;
  /** Probes whose marks are not yet in their snapshot row. */
  private readonly dirty = new Set<number>();
  /** Chunks the snapshot is stored in now. */
  private chunks = 1;

  constructor(sql: Sql) {
    this.sql = sql;
  }

  /** The durable marks: the snapshot, merged with those the outbox rows still there carry. */
  private load(): Map<number, Mark> {
    if (this.committed) return this.committed;
    const marks = new Map<number, Mark>();
    const apply = (json: string, dirty: boolean) => {
      for (const [id, m] of Object.entries(JSON.parse(json) as Record<string, Mark>)) {
        const probeId = Number(id);
        marks.set(probeId, mergeMarks(marks.get(probeId), m));
        if (dirty) this.dirty.add(probeId);
      }
    };
    const chunks = this.sql<{ chunk: number; body: string }>("SELECT chunk, body FROM mark_chunks");
    for (const { body } of chunks) apply(body, false);
    this.chunks = Math.max(1, ...chunks.map((c) => c.chunk + 1));
    for (const { marks: json } of this.sql<{ marks: string }>("SELECT marks FROM outbox WHERE marks IS NOT NULL ORDER BY id")) apply(json, true);
    this.committed = marks;
    return marks;
  }

  /** A probe's durable mark (a copy). */
  get(probeId: number): Mark {
    return copyMark(this.load().get(probeId));
  }

  /** Every probe's durable mark (read only). */
  all(): ReadonlyMap<number, Mark> {
    return this.load();
  }

  /** After a commit's transaction: the marks it wrote are durable. */
  committedNow(marks: Map<number, Mark>): void {
    const committed = this.load();
    for (const [id, m] of marks) {
      committed.set(id, mergeMarks(committed.get(id), m));
      this.dirty.add(id);
    }
  }

  /**
   * Raises marks and writes their chunks now (inside the caller's transaction): for marks that arrive without an
   * outbox row (a probe handed over from another shard, a frame whose every result was refused).
   */
  raise(marks: Map<number, Mark>): void {
    this.committedNow(marks);
    this.snapshot(new Set(marks.keys()));
  }

  /**
   * Writes the chunks holding changed marks (inside the caller's transaction): before outbox rows are deleted, the
   * marks they carry must be in a snapshot. `only`: the chunks of just these probes. When the number of probes
   * calls for another number of chunks, every chunk is written again.
   */
  snapshot(only?: Set<number>): void {
    const committed = this.load();
    const n = chunkCount(committed.size);
    const all = n !== this.chunks;
    const chunks = new Set<number>();
    if (all) for (let c = 0; c < n; c++) chunks.add(c);
    else for (const id of only ?? this.dirty) if (this.dirty.has(id)) chunks.add(id % n);
    if (!chunks.size) return;
    const bodies = new Map<number, Record<number, Mark>>([...chunks].map((c) => [c, {}]));
    for (const [id, m] of committed) {
      const body = bodies.get(id % n);
      if (body) body[id] = m;
    }
    for (const [c, body] of bodies) {
      this.sql("INSERT INTO mark_chunks (chunk, body) VALUES (?, ?) ON CONFLICT (chunk) DO UPDATE SET body = excluded.body", c, JSON.stringify(body));
    }
    if (all) this.sql("DELETE FROM mark_chunks WHERE chunk >= ?", n);
    this.chunks = n;
    for (const id of [...this.dirty]) if (chunks.has(id % n)) this.dirty.delete(id);
  }

  /** Forgets what is in memory (a transaction that failed may have left it ahead of storage). */
  reset(): void {
    this.committed = null;
    this.dirty.clear();
  }
}
