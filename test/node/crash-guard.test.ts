// The agent's crash guard with real process deaths: a measurement running each time the agent is killed (SIGKILL,
// as a fault in a measurement type would kill it) is held back after three crashes in a row, and only then; a run
// that finishes, a clean stop or a new agent version gives it its chance back.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CRASH_LIMIT, CrashGuard, QUARANTINE_S } from "../../probe-agent/crash-guard.ts";
import { tempDir } from "./system.ts";

const GUARD = join(import.meta.dirname, "..", "..", "probe-agent", "crash-guard.ts");

/** A real agent-like process that starts running `msm` with the guard and dies by SIGKILL mid-run. */
function crashWhileRunning(dir: string, msm: number, version = "1.0.0"): string[] {
  const script = `
    import { CrashGuard } from ${JSON.stringify(GUARD)};
    const logged = [];
    const guard = new CrashGuard(${JSON.stringify(dir)}, ${JSON.stringify(version)}, (m) => logged.push(m));
    console.log(JSON.stringify(logged));
    guard.started(${msm});
    process.kill(process.pid, "SIGKILL");`;
  try {
    execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  } catch (e) {
    const x = e as { signal?: string; stdout?: string };
    expect(x.signal).toBe("SIGKILL");
    return JSON.parse(x.stdout!.trim()) as string[];
  }
  throw new Error("the process was meant to die");
}

describe("crash guard", () => {
  it("holds back a measurement that was running at each of three crashes in a row, with a reason its owner can read", () => {
    const dir = tempDir("crash-guard");
    crashWhileRunning(dir, 10_000_007);
    crashWhileRunning(dir, 10_000_007);
    const said = crashWhileRunning(dir, 10_000_007);
    expect(said).toEqual(["crash guard: measurement 10000007 was running when the agent last died (2 times in a row)"]);
    const logged: string[] = [];
    const guard = new CrashGuard(dir, "1.0.0", (m) => logged.push(m));
    expect(logged[0]).toMatch(/measurement 10000007 .* \(3 times in a row\); it is not run again by agent 1\.0\.0 for 24 h/);
    expect(guard.refusal(10_000_007)).toMatch(/^not run: measurement 10000007 was running each of the last 3 times this probe's agent \(1\.0\.0\) crashed/);
    expect(guard.refusal(10_000_008)).toBeNull();
    // Held back across a clean restart too (what the note counts is kept), and released by a new version.
    guard.close();
    expect(new CrashGuard(dir, "1.0.0", () => undefined).refusal(10_000_007)).not.toBeNull();
    expect(new CrashGuard(dir, "1.0.1", () => undefined).refusal(10_000_007)).toBeNull();
  });

  it("blames nobody for a clean stop, forgets a crash once a run of the measurement finishes, and lets the hold expire", () => {
    const dir = tempDir("crash-guard");
    let guard = new CrashGuard(dir, "1.0.0", () => undefined);
    guard.started(10_000_001);
    guard.close();  // SIGTERM: runs aborted, nothing was running when the agent ended
    for (let i = 0; i < CRASH_LIMIT; i++) expect(new CrashGuard(dir, "1.0.0", () => undefined).refusal(10_000_001)).toBeNull();

    crashWhileRunning(dir, 10_000_002);
    crashWhileRunning(dir, 10_000_002);
    guard = new CrashGuard(dir, "1.0.0", () => undefined);
    guard.started(10_000_002);
    guard.finished(10_000_002, true);  // it worked this time: the two crashes were someone else's fault
    crashWhileRunning(dir, 10_000_002);
    expect(new CrashGuard(dir, "1.0.0", () => undefined).refusal(10_000_002)).toBeNull();

    // Two runs of one measurement at once: it is running until the last of them ends.
    guard = new CrashGuard(dir, "1.0.0", () => undefined);
    guard.started(10_000_003);
    guard.started(10_000_003);
    guard.finished(10_000_003, false);
    for (let i = 0; i < CRASH_LIMIT - 1; i++) crashWhileRunning(dir, 10_000_003);
    let clock = Date.now() / 1000;
    const late = new CrashGuard(dir, "1.0.0", () => undefined, () => clock);
    expect(late.refusal(10_000_003)).not.toBeNull();  // the first process's crash, then two more
    clock += QUARANTINE_S + 1;
    expect(late.refusal(10_000_003)).toBeNull();
  });

  it("starts afresh on a note it cannot read, and says so", () => {
    const dir = tempDir("crash-guard");
    writeFileSync(join(dir, "running.json"), "{\"version\": \"1.0.0\", \"runn");
    const logged: string[] = [];
    const guard = new CrashGuard(dir, "1.0.0", (m) => logged.push(m));
    expect(logged[0]).toMatch(/running\.json is unreadable .*starting afresh/);
    expect(guard.refusal(1)).toBeNull();
  });
});
