// Results the controller refused for good (not a valid result, not this probe's measurement, outside its window):
// they leave the spool, which would otherwise offer them forever, but not silently. Each is logged, and kept with
// the controller's reason in `state_dir/refused.jsonl` (one JSON object a line: when, seq, reason, the result), so
// the host can see what was refused and why; the file is rotated to `refused.jsonl.1` past 1 MiB.
import { appendFile, rename, stat } from "node:fs/promises";
import { join } from "node:path";

const MAX_BYTES = 1024 * 1024;

export class RefusedResults {
  private readonly path: string;
  private readonly report: (line: string) => void;
  private writing: Promise<void> = Promise.resolve();
  /** Refused since the agent started, and the last refusal (for the probe's status). */
  count = 0;
  last: { at: number; seq: number; reason: string } | null = null;

  constructor(stateDir: string, report: (line: string) => void) {
    this.path = join(stateDir, "refused.jsonl");
    this.report = report;
  }

  /** Records a refusal; `result` is the refused result's JSON text when the spool still had it. */
  record(seq: number, reason: string, result: string | null): Promise<void> {
    const at = Math.floor(Date.now() / 1000);
    this.count++;
    this.last = { at, seq, reason };
    const line = `{"at":${at},"seq":${seq},"reason":${JSON.stringify(reason)},"result":${result ?? "null"}}\n`;
    this.writing = this.writing.then(async () => {
      try {
        if (((await stat(this.path).catch(() => null))?.size ?? 0) > MAX_BYTES) await rename(this.path, `${this.path}.1`);
        await appendFile(this.path, line, { mode: 0o600 });
      } catch (e) {
        this.report(`cannot keep refused result ${seq} in ${this.path}: ${(e as Error).message}`);
      }
    });
    return this.writing;
  }
}
