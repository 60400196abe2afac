// The result spool: every result is on disk (written with O_DSYNC) before it is offered to the controller, and
// forgotten only when the controller acknowledges it. Results carry a strictly increasing sequence number that
// survives restarts, which is what lets the edge store each result exactly once.
//
// On disk it is a journal: spool/<first seq>.log segments of JSON lines, appended with group commit (results added
// within `commitEveryMs` of a commit's start, or while it is written, share the next durable write, off the event
// loop), and spool/acked holding the highest acknowledged seq. A segment is deleted once every result in it is
// acknowledged, except the newest, which keeps the numbering. The acked mark is written without fsync and at most
// once a second: if it is lost or behind, a restart resends results the controller already has, and its per-probe
// high-water mark drops them.
import { close, closeSync, constants, existsSync, fsyncSync, mkdirSync, open, openSync, readdirSync, readFileSync, readSync, truncateSync, unlinkSync, write, writeFile } from "node:fs";
import { join } from "node:path";
import type { Result, Submission } from "../protocol/probe.ts";
import { monotonicMs } from "./clock.ts";

/** A new segment is started once the current one is this large. */
const SEGMENT_BYTES = 1 << 20;
const ACK_WRITE_MS = 1000;
/** A write that failed (disk full, I/O error) is tried again this often, its results kept in memory meanwhile. */
const RETRY_MS = 2000;
/** Results kept in memory while the disk refuses them; past this the oldest are given up (and reported). */
const MAX_WAITING = 20_000;

type Segment = { first: number; last: number; path: string };
/** A durable submission as it is journalled and sent: its JSON text (a journal line: serialised once). */
export type Spooled = { seq: number; msmId: number; json: string };
/**
 * What the spool keeps in memory of an unacknowledged submission: where its line is in the journal, not its text
 * (read back when it is sent), so a probe cut off from its controller does not grow by each result it spools.
 */
type Located = { seq: number; msmId: number; segment: Segment; offset: number; length: number };
type Waiter = { entry: Spooled; resolve: (e: Spooled) => void; reject: (e: Error) => void };

const segmentName = (first: number) => `${String(first).padStart(16, "0")}.log`;

// node:fs's callback API in promises of our own: node:fs/promises loads nine more modules (readline, watchers; 0.6 MB
// of RSS measured) into an agent that needs three calls.
const done = <T>(resolve: (v: T) => void, reject: (e: Error) => void) => (e: Error | null, v?: T) => (e ? reject(e) : resolve(v as T));
const openFile = (path: string, flags: number) => new Promise<number>((resolve, reject) => open(path, flags, 0o600, done(resolve, reject)));
const closeFile = (fd: number) => new Promise<void>((resolve, reject) => close(fd, done(resolve, reject)));
/** Writes all of `data` at the file's end. */
async function append(fd: number, data: Buffer): Promise<void> {
  for (let at = 0; at < data.length;) {
    at += await new Promise<number>((resolve, reject) => write(fd, data, at, data.length - at, null, done(resolve, reject)));
  }
}

/** What is on disk in a state directory: the acknowledged mark and every journalled submission, in order. */
function readJournal(dir: string): { acked: number; segments: Segment[]; sizes: number[]; entries: (Spooled & Located)[]; tornTail: { path: string; size: number } | null; corrupt: { path: string; line: number }[] } {
  let acked = 0;
  try { acked = Number(readFileSync(join(dir, "acked"), "utf8")) || 0; } catch { /* nothing acknowledged yet */ }
  const segments: Segment[] = [];
  const sizes: number[] = [];
  const entries: (Spooled & Located)[] = [];
  let tornTail = null;
  const corrupt: { path: string; line: number }[] = [];
  let lastSeq = 0;
  const names = existsSync(dir) ? readdirSync(dir).filter((f) => /^\d{16}\.log$/.test(f)).sort() : [];
  for (const name of names) {
    const path = join(dir, name);
    const bytes = readFileSync(path);
    const segment = { first: Number(name.slice(0, 16)), last: Number(name.slice(0, 16)) - 1, path };
    // A crash in the middle of a write leaves a partial last line: it was never durable, so never offered.
    const end = bytes.lastIndexOf(0x0a) + 1;
    if (end < bytes.length) tornTail = { path, size: end };
    for (let offset = 0, line = 1; offset < end; line++) {
      const nl = bytes.indexOf(0x0a, offset);
      if (nl > offset) {
        const json = bytes.toString("utf8", offset, nl);
        // A line the disk damaged (or a journal edited by hand) is dropped and reported, never fatal: the agent
        // starts with every whole line. Seqs only grow, so one out of order is damaged too.
        let s: Submission | null = null;
        try {
          s = JSON.parse(json) as Submission;
          if (!Number.isSafeInteger(s.seq) || s.seq <= lastSeq || typeof s.result?.msm_id !== "number") s = null;
        } catch { /* damaged */ }
        if (s) {
          entries.push({ seq: s.seq, msmId: s.result.msm_id, json, segment, offset, length: nl - offset });
          segment.last = lastSeq = s.seq;
        } else corrupt.push({ path, line });
      }
      offset = nl + 1;
    }
    segments.push(segment);
    sizes.push(end);
  }
  return { acked, segments, sizes, entries, tornTail, corrupt };
}

/** Reads journal lines back, each segment's run of them with one read. */
function readLines(located: Located[]): Spooled[] {
  const out: Spooled[] = [];
  for (let i = 0; i < located.length;) {
    const segment = located[i]!.segment;
    let j = i;
    while (j < located.length && located[j]!.segment === segment) j++;
    const from = located[i]!.offset;
    const last = located[j - 1]!;
    const bytes = Buffer.allocUnsafe(last.offset + last.length - from);
    const fd = openSync(segment.path, "r");
    try {
      for (let got = 0; got < bytes.length;) {
        const n = readSync(fd, bytes, got, bytes.length - got, from + got);
        if (n === 0) throw new Error(`spool: ${segment.path} is shorter than its journal says`);
        got += n;
      }
    } finally {
      closeSync(fd);
    }
    for (; i < j; i++) {
      const e = located[i]!;
      out.push({ seq: e.seq, msmId: e.msmId, json: bytes.toString("utf8", e.offset - from, e.offset - from + e.length) });
    }
  }
  return out;
}

export class Spool {
  private readonly dir: string;
  private seq: number;
  private acked: number;
  /**
   * Durable, unacknowledged submissions, by where they are in the journal, from `head` on, in seq order (seqs only
   * grow): acknowledgements consume them from the front, and a seq is found by bisection.
   */
  private unacked: Located[] = [];
  private head = 0;
  /** How many of those each measurement has (a resent one-off is not run again while its result waits). */
  private readonly byMeasurement = new Map<number, number>();
  private readonly segments: Segment[];
  /** The segment appended to, its open file and its size. */
  private active: { segment: Segment; fd: number | null; bytes: number };
  private batch: Waiter[] = [];
  private writing: Promise<void> | null = null;
  private ackWrite: Promise<void> = Promise.resolve();
  private ackTimer: NodeJS.Timeout | null = null;
  private readonly commitEveryMs: number;
  /** When the last commit started (monotonicMs()). */
  private lastCommit = -Infinity;
  private closing = false;
  /** Ends the wait before the next commit (close() does not wait for the window). */
  private wakeCommit: (() => void) | null = null;

  /** What went wrong on disk, for the agent's log (a damaged journal at start, a full disk). */
  private readonly report: (message: string) => void;
  /** Damaged journal lines dropped at start (the agent's status says so). */
  readonly dropped: { path: string; line: number }[];

  /**
   * `commitEveryMs`: commits start at most this often (0: as soon as the event loop turns). `report`: told what
   * went wrong on disk.
   */
  constructor(stateDir: string, commitEveryMs = 0, report: (message: string) => void = () => {}) {
    this.commitEveryMs = commitEveryMs;
    this.report = report;
    this.dir = join(stateDir, "spool");
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const journal = readJournal(this.dir);
    if (journal.tornTail) truncateSync(journal.tornTail.path, journal.tornTail.size);
    this.dropped = journal.corrupt;
    for (const c of journal.corrupt) report(`spool: dropped a damaged journal line (${c.path}, line ${c.line}); every whole line is kept`);
    this.acked = journal.acked;
    this.segments = journal.segments;
    for (const e of journal.entries) {
      if (e.seq > this.acked) this.keep({ seq: e.seq, msmId: e.msmId, segment: e.segment, offset: e.offset, length: e.length });
    }
    const newest = this.segments.at(-1);
    // A damaged line hides its seq: numbering goes on past what it could have been, so no seq is used twice.
    this.seq = Math.max(this.acked, newest?.last ?? 0) + journal.corrupt.length;
    // Appends go on in the newest segment; a first start makes one, named with the first seq it will hold.
    const segment = newest ?? this.createSegment(this.seq + 1);
    if (!newest) this.segments.push(segment);
    this.active = { segment, fd: null, bytes: journal.sizes.at(-1) ?? 0 };
  }

  /** What a restart of the agent on this state directory would offer the controller, oldest first. */
  static unacknowledged(stateDir: string): Submission[] {
    const j = readJournal(join(stateDir, "spool"));
    return j.entries.filter((e) => e.seq > j.acked).map((e) => JSON.parse(e.json) as Submission);
  }

  /** Stores a result; resolves with its entry (seq assigned) once it is durable. */
  add(result: Result): Promise<Spooled> {
    const seq = ++this.seq;
    const entry = { seq, msmId: result.msm_id, json: JSON.stringify({ seq, result } satisfies Submission) };
    return new Promise((resolve, reject) => {
      this.batch.push({ entry, resolve, reject });
      this.writing ??= this.commit();
    });
  }

  /** Unacknowledged durable results with a seq above `after`, in send order, at most `limit`: read from the journal. */
  pending(after = 0, limit = Infinity): Spooled[] {
    const from = this.firstAfter(after);
    return readLines(this.unacked.slice(from, Math.min(this.unacked.length, from + limit)));
  }

  /** How many unacknowledged results have a seq up to `upto` (those sent and not yet acknowledged, say). */
  countUpTo(upto: number): number {
    return this.firstAfter(upto) - this.head;
  }

  /** Whether a durable result with a seq above `after` waits for acknowledgement. */
  hasAfter(after: number): boolean {
    return this.unacked.length > this.head && this.unacked.at(-1)!.seq > after;
  }

  /** The index of the first unacknowledged submission with a seq above `after`. */
  private firstAfter(after: number): number {
    let lo = this.head, hi = this.unacked.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.unacked[mid]!.seq > after) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** Whether a result of this measurement is waiting (written or being written) for acknowledgement. */
  holds(msmId: number): boolean {
    return this.byMeasurement.has(msmId) || this.batch.some((w) => w.entry.msmId === msmId);
  }

  private keep(e: Located): void {
    this.unacked.push(e);
    this.byMeasurement.set(e.msmId, (this.byMeasurement.get(e.msmId) ?? 0) + 1);
  }

  private forget(e: Located): void {
    const n = this.byMeasurement.get(e.msmId)!;
    if (n > 1) this.byMeasurement.set(e.msmId, n - 1);
    else this.byMeasurement.delete(e.msmId);
  }

  /** The controller has every result up to `upto`: forget them, and the segments that hold nothing else. */
  ack(upto: number): void {
    if (upto <= this.acked) return;
    this.acked = Math.min(upto, this.seq);
    while (this.head < this.unacked.length && this.unacked[this.head]!.seq <= this.acked) this.forget(this.unacked[this.head++]!);
    // The consumed front is cut off once it is most of the array (amortised O(1) per acknowledged result).
    if (this.head > 1024 && this.head * 2 > this.unacked.length) {
      this.unacked = this.unacked.slice(this.head);
      this.head = 0;
    }
    while (this.segments.length > 1 && this.segments[0]!.last <= this.acked) unlinkSync(this.segments.shift()!.path);
    // The mark is written at most once a second: losing it costs only resends the controller drops.
    this.ackTimer ??= setTimeout(() => { this.ackTimer = null; void this.writeAcked(); }, ACK_WRITE_MS);
  }

  private async writeAcked(): Promise<void> {
    // Best effort: a mark that could not be written is only behind.
    await (this.ackWrite = this.ackWrite.then(() => new Promise<void>((resolve, reject) => writeFile(join(this.dir, "acked"), String(this.acked), { mode: 0o600 }, done(resolve, reject)))).catch(() => {}));
  }

  /**
   * The controller refused this result for good: it is not offered again. Returns it (its line, read back) for the
   * caller to keep where the host can see it; null if it is not waiting here.
   */
  drop(seq: number): Spooled | null {
    const i = this.firstAfter(seq - 1);
    const located = this.unacked[i];
    if (located?.seq !== seq) return null;
    let entry: Spooled | null = null;
    try {
      entry = readLines([located])[0] ?? null;
    } catch { /* its segment is gone: the refusal is still recorded, without the result */ }
    this.forget(located);
    this.unacked.splice(i, 1);
    return entry;
  }

  /** The highest seq the controller has acknowledged. */
  get ackedUpTo(): number {
    return this.acked;
  }

  get size(): number {
    return this.unacked.length - this.head;
  }

  /** Waits for writes in progress and closes the journal. */
  async close(): Promise<void> {
    this.closing = true;
    this.wakeCommit?.();
    while (this.writing) await this.writing;
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = null;
    await this.writeAcked();
    if (this.active.fd !== null) await closeFile(this.active.fd);
    this.active.fd = null;
  }

  private async commit(): Promise<void> {
    while (this.batch.length) {
      const wait = this.lastCommit + this.commitEveryMs - monotonicMs();
      if (wait > 0 && !this.closing) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => this.wakeCommit!(), wait);
          this.wakeCommit = () => { clearTimeout(timer); this.wakeCommit = null; resolve(); };
        });
      }
      this.lastCommit = monotonicMs();
      const batch = this.batch;
      this.batch = [];
      try {
        if (this.active.bytes >= SEGMENT_BYTES) await this.roll(batch[0]!.entry.seq);
        // O_DSYNC: the write returns once the data is durable, as write + fdatasync would, in one thread-pool job.
        this.active.fd ??= await openFile(this.active.segment.path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_DSYNC);
        const data = Buffer.from(batch.map((w) => w.entry.json + "\n").join(""));
        await append(this.active.fd, data);
        let offset = this.active.bytes;
        this.active.bytes += data.length;
        this.active.segment.last = batch.at(-1)!.entry.seq;
        for (const w of batch) {
          const length = Buffer.byteLength(w.entry.json);
          this.keep({ seq: w.entry.seq, msmId: w.entry.msmId, segment: this.active.segment, offset, length });
          offset += length + 1;
          w.resolve(w.entry);
        }
      } catch (e) {
        // Nothing of a failed write may stay (a partial line would damage the next one): cut the segment back.
        try { truncateSync(this.active.segment.path, this.active.bytes); } catch { /* it will fail again, or not */ }
        if (this.closing) {
          for (const w of batch) w.reject(new Error(`spool: cannot store result ${w.entry.seq}: ${(e as Error).message}`));
          continue;
        }
        // A full (or failing) disk: the results wait in memory, in order, and the write is tried again. Only past
        // MAX_WAITING are the oldest given up, said loudly.
        this.batch = [...batch, ...this.batch];
        const over = this.batch.length - MAX_WAITING;
        if (over > 0) for (const w of this.batch.splice(0, over)) w.reject(new Error(`spool: result ${w.entry.seq} given up: ${MAX_WAITING} results already wait for the disk`));
        this.report(`spool: cannot write ${this.batch.length} results (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); they wait in memory and the write is retried every ${RETRY_MS / 1000} s`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => this.wakeCommit!(), RETRY_MS);
          this.wakeCommit = () => { clearTimeout(timer); this.wakeCommit = null; resolve(); };
        });
      }
    }
    this.writing = null;
  }

  /** Closes the full segment and starts the next, named with the first seq it holds. */
  private async roll(first: number): Promise<void> {
    if (this.active.fd !== null) await closeFile(this.active.fd);
    this.active.fd = null;
    const segment = this.createSegment(first);
    this.segments.push(segment);
    this.active = { segment, fd: null, bytes: 0 };
  }

  private createSegment(first: number): Segment {
    const path = join(this.dir, segmentName(first));
    closeSync(openSync(path, "a", 0o600));
    // The new name must be durable too, or a crash could lose the numbering it carries.
    const d = openSync(this.dir, "r");
    try { fsyncSync(d); } finally { closeSync(d); }
    return { first, last: first - 1, path };
  }
}
