// A measurement that crashes the agent must not crash it forever. A supervisor (systemd) restarts a dead agent; the
// controller hands it the same assignments; if one of them kills the process (a bug in a measurement type, an
// unhandled socket error as once in NTP, a native fault), the probe would fall in a loop of crashes and lose every
// other measurement's results with it. So the agent notes which measurements are running in a small file in its state
// directory, and a measurement that was running when the agent died CRASH_LIMIT times in a row, with no run of it
// finishing in between, is not run again by this agent version for QUARANTINE_S: each of its runs is answered with an
// error result saying why, so its owner sees it. A clean stop clears the note, so a restart or upgrade blames nobody.
//
// The note is rewritten when a measurement starts or finishes running (not each run of one already running): a small
// synchronous write, not fsync'd — what it guards against is the process dying, and the kernel keeps what it wrote.
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const CRASH_LIMIT = 3;
export const QUARANTINE_S = 86_400;

type Note = {
  /** The agent version that wrote it: a new version is a new chance for every measurement. */
  version: string;
  /** Measurements running when the note was written. */
  running: number[];
  /** Per measurement: crashes in a row while it ran, and when the last one was found. */
  crashes: Record<string, { count: number; at: number }>;
};

export class CrashGuard {
  private readonly path: string;
  private note: Note;
  private readonly counts = new Map<number, number>();
  private writeFailed = false;
  private readonly version: string;
  private readonly log: (message: string) => void;
  private readonly now: () => number;

  /** Reads the last note: what was running then was running when the agent died (a clean stop leaves none). */
  constructor(stateDir: string, version: string, log: (message: string) => void, now = () => Date.now() / 1000) {
    this.version = version;
    this.log = log;
    this.now = now;
    this.path = join(stateDir, "running.json");
    let last: Note | null = null;
    try {
      last = JSON.parse(readFileSync(this.path, "utf8")) as Note;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") log(`crash guard: ${this.path} is unreadable (${(e as Error).message}); starting afresh`);
    }
    this.note = { version, running: [], crashes: last && last.version === version ? { ...last.crashes } : {} };
    for (const msm of last && last.version === version ? last.running : []) {
      const count = (this.note.crashes[msm]?.count ?? 0) + 1;
      this.note.crashes[msm] = { count, at: this.now() };
      log(`crash guard: measurement ${msm} was running when the agent last died (${count} time${count === 1 ? "" : "s"} in a row)` +
        (count >= CRASH_LIMIT ? `; it is not run again by agent ${version} for ${QUARANTINE_S / 3600} h` : ""));
    }
    this.write();
  }

  /** Why the measurement is not to be run, or null. */
  refusal(msmId: number): string | null {
    const c = this.note.crashes[msmId];
    if (!c || c.count < CRASH_LIMIT || this.now() - c.at > QUARANTINE_S) return null;
    return `not run: measurement ${msmId} was running each of the last ${c.count} times this probe's agent (${this.version}) crashed; ` +
      `it is held back until ${new Date((c.at + QUARANTINE_S) * 1000).toISOString()} or a new agent version`;
  }

  started(msmId: number): void {
    const n = this.counts.get(msmId) ?? 0;
    this.counts.set(msmId, n + 1);
    if (n === 0) this.write();
  }

  /** A run ended; `completed` when it finished (its result is in), which clears the measurement's crash count. */
  finished(msmId: number, completed: boolean): void {
    const n = (this.counts.get(msmId) ?? 1) - 1;
    if (n > 0) this.counts.set(msmId, n);
    else this.counts.delete(msmId);
    const cleared = completed && msmId in this.note.crashes;
    if (cleared) delete this.note.crashes[msmId];
    if (n <= 0 || cleared) this.write();
  }

  /** A clean stop: nothing was running when the agent ended. */
  close(): void {
    this.counts.clear();
    this.write();
  }

  private write(): void {
    this.note.running = [...this.counts.keys()];
    try {
      // Whole or not at all: a note cut short by a crash mid-write would blame nobody and forget the counts.
      writeFileSync(`${this.path}.tmp`, JSON.stringify(this.note));
      renameSync(`${this.path}.tmp`, this.path);
      this.writeFailed = false;
    } catch (e) {
      // Said once until it works again (a full disk would otherwise fill the log with it).
      if (!this.writeFailed) this.log(`crash guard: cannot write ${this.path}: ${(e as Error).message}`);
      this.writeFailed = true;
    }
  }
}
