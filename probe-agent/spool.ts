// The result spool: every result is written to disk (fsync'd, renamed into place) before it is offered to the
// controller, and removed only when the controller acknowledges it. Results carry a strictly increasing sequence
// number that survives restarts, which is what lets the edge store each result exactly once.
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { Result, Submission } from "../protocol/index.ts";

function writeDurably(path: string, data: string): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export class Spool {
  private readonly dir: string;
  private readonly counterPath: string;
  private seq: number;
  private entries = new Map<number, Submission>();

  constructor(stateDir: string) {
    this.dir = join(stateDir, "spool");
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.counterPath = join(stateDir, "seq");
    let seq = 0;
    try {
      seq = Number(readFileSync(this.counterPath, "utf8")) || 0;
    } catch { /* first run */ }
    for (const f of readdirSync(this.dir)) {
      const m = f.match(/^(\d+)\.json$/);
      if (!m) continue;
      const s = JSON.parse(readFileSync(join(this.dir, f), "utf8")) as Submission;
      this.entries.set(s.seq, s);
      seq = Math.max(seq, s.seq);
    }
    this.seq = seq;
  }

  /** Stores a result and returns its submission (seq assigned). Durable when this returns. */
  add(result: Result): Submission {
    const seq = ++this.seq;
    writeDurably(this.counterPath, String(seq));
    const s: Submission = { seq, result };
    writeDurably(join(this.dir, `${String(seq).padStart(16, "0")}.json`), JSON.stringify(s));
    this.entries.set(seq, s);
    return s;
  }

  /** Unacknowledged results in send order. */
  pending(): Submission[] {
    return [...this.entries.values()].sort((a, b) => a.seq - b.seq);
  }

  /** The controller has every result up to `upto`: forget them. */
  ack(upto: number): number {
    let n = 0;
    for (const seq of [...this.entries.keys()]) if (seq <= upto) { this.drop(seq); n++; }
    return n;
  }

  /** The controller refused this result for good (logged by the caller): forget it. */
  drop(seq: number): void {
    if (!this.entries.delete(seq)) return;
    try {
      unlinkSync(join(this.dir, `${String(seq).padStart(16, "0")}.json`));
    } catch { /* already gone */ }
  }

  get size(): number {
    return this.entries.size;
  }
}
