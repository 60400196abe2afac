// Signed releases on the probe. A controller offers a release (version, SHA-256, size, signature, edge path); the
// probe downloads it, checks it against the release key pinned in its config (protocol/release.ts) and only then
// switches to it, in place: process.execve keeps the pid, so the service manager sees nothing. The new version is on
// probation until it reaches its controller; one that does not within `release_health_s` (it cannot register, or
// hangs) rolls itself back to the installed bundle, and one that dies is rolled back by the installed bundle when
// the service manager starts that again. Refused and rolled-back versions are never tried again and are reported
// to the controller, whose rollout halts on failures (durable-objects/brain.ts).
//
// A release replaces the agent's JavaScript; the native addon stays the installed package's (dir.ts).
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";
import compare from "semver/functions/compare.js";
import gt from "semver/functions/gt.js";
import valid from "semver/functions/valid.js";
import type { ReleaseManifest, ReleaseOffer } from "../protocol/release.ts";
import { verifyRelease } from "../protocol/release.ts";
import type { Log } from "./agent.ts";
import { httpRequest } from "./agent.ts";
import type { AgentConfig } from "./config.ts";
import { AGENT_DIR } from "./dir.ts";
import { AGENT_VERSION } from "./version.ts";

type Installed = ReleaseManifest & { rollout: number; file: string };
export type ReleaseReport = { rollout: number; version: string; state: "running" | "refused" | "rolled_back"; detail: string };
type ReleaseState = {
  /** The release this probe runs instead of its installed bundle, since it proved healthy. */
  current: Installed | null;
  /** The release on probation, and how often it was started. */
  trial: (Installed & { attempts: number }) | null;
  /** What to tell the controller on the next connection. */
  reports: ReleaseReport[];
  /** Versions refused or rolled back here: never tried again. */
  failed: string[];
};

/** Largest bundle a probe downloads. */
const MAX_BUNDLE_BYTES = 32 * 1024 * 1024;

export class Releases {
  private readonly dir: string;
  private readonly config: AgentConfig;
  private readonly configPath: string;
  private readonly log: Log;
  /** The bundle the service manager starts; a release falls back to it. */
  private readonly installed: string;
  private readonly running: string;
  private downloading = false;
  private probation: NodeJS.Timeout | null = null;

  constructor(config: AgentConfig, configPath: string, log: Log) {
    this.config = config;
    this.configPath = configPath;
    this.log = log;
    this.dir = join(config.state_dir, "releases");
    this.running = resolve(process.argv[1] ?? "");
    this.installed = process.env.VANTAGE_INSTALLED_BUNDLE ?? this.running;
  }

  /**
   * Decides at start-up what this process should be: the file of the release to switch to (a healthy release, or
   * a trial not started yet), or null to run as it is. A trial started before that never reached its controller
   * (it died) is rolled back here.
   */
  async atStart(): Promise<string | null> {
    const s = this.load();
    if (s.trial && s.trial.file !== this.running) {
      if (s.trial.attempts >= 1) {
        this.rollBack(s, "it stopped before it reached its controller (it crashed or was killed)");
      } else {
        s.trial.attempts++;
        this.save(s);
        return s.trial.file;
      }
    }
    if (s.current && this.running === this.installed && compareVersions(AGENT_VERSION, s.current.version) >= 0) {
      // The installed agent was upgraded past the release (a package upgrade): it wins.
      this.log("info", `the installed agent ${AGENT_VERSION} is not older than release ${s.current.version}: running it`);
      s.current = null;
      this.save(s);
    }
    if (s.current && s.current.file !== this.running) {
      // Checked again at every start: a release file altered on disk is not run.
      const why = await this.check(s.current);
      if (!why) return s.current.file;
      this.log("error", `release ${s.current.version} on disk is refused: ${why}; running the installed ${AGENT_VERSION}`);
      s.reports.push({ rollout: s.current.rollout, version: s.current.version, state: "refused", detail: `on disk: ${why}` });
      s.failed.push(s.current.version);
      s.current = null;
      this.save(s);
    }
    return null;
  }

  /** If this process is a release on probation: rolls back unless it reaches its controller in time. */
  startProbation(stopAgent: () => Promise<void>): void {
    const s = this.load();
    if (s.trial?.file !== this.running) return;
    this.log("info", `release ${AGENT_VERSION} is on probation for ${this.config.release_health_s} s`);
    this.probation = setTimeout(() => {
      const now = this.load();
      if (now.trial?.file !== this.running) return;
      this.rollBack(now, `it did not reach its controller within ${this.config.release_health_s} s`);
      void stopAgent().then(() => this.become(this.installed));
    }, this.config.release_health_s * 1000);
  }

  /** The agent reached its controller: a release on probation is now the one this probe runs. */
  healthy(): void {
    if (this.probation) clearTimeout(this.probation);
    this.probation = null;
    const s = this.load();
    if (s.trial?.file !== this.running) return;
    const { attempts: _, ...release } = s.trial;
    s.current = release;
    s.trial = null;
    s.reports.push({ rollout: release.rollout, version: release.version, state: "running", detail: `healthy; was ${process.env.VANTAGE_PREVIOUS_VERSION ?? "unknown"}` });
    this.save(s);
    this.log("info", `release ${release.version} is healthy and now this probe's version`);
  }

  /** Reports for the controller; they are forgotten once taken (a lost one only leaves a rollout's count short). */
  takeReports(): ReleaseReport[] {
    const s = this.load();
    if (!s.reports.length) return [];
    const reports = s.reports;
    s.reports = [];
    this.save(s);
    return reports;
  }

  /**
   * A controller offers a release: downloaded from `edge`, verified, then switched to (this process becomes it
   * after `stopAgent`). A release that fails verification is refused and reported; a download that fails is not a
   * verdict and is tried again at the next offer.
   */
  async offer(o: ReleaseOffer, edge: URL, stopAgent: () => Promise<void>): Promise<void> {
    const s = this.load();
    if (o.version === AGENT_VERSION || s.failed.includes(o.version) || this.downloading) return;
    const pinned = this.config.release_public_jwk;
    if (!pinned) return this.refuse(s, o, "no release key is pinned in this probe's config (release_public_jwk)");
    // A release signed long ago is still signed: an edge (or a stolen operator token) offering an older version
    // would take probes back to code with known faults. Versions only move forward (semver's order, pre-releases
    // before their release).
    if (!valid(o.version) || !gt(o.version, AGENT_VERSION)) return this.refuse(s, o, `${o.version} is not newer than the running ${AGENT_VERSION}: releases only move forward`);
    this.downloading = true;
    try {
      let body: Buffer;
      try {
        const res = await httpRequest(new URL(o.path, edge), { method: "GET", timeoutMs: 120_000, maxBytes: MAX_BUNDLE_BYTES });
        if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
        body = res.body;
      } catch (e) {
        this.log("warn", `release ${o.version}: download failed (${(e as Error).message}); it will be tried again when offered`);
        return;
      }
      const why = await verifyRelease(body, o, pinned);
      if (why) return this.refuse(s, o, why);
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      const file = join(this.dir, `vantage-probe-${o.version}.mjs`);
      writeDurably(file, body, 0o755);
      s.trial = { version: o.version, sha256: o.sha256, size: o.size, signature: o.signature, rollout: o.rollout, file, attempts: 1 };
      this.save(s);
      this.log("info", `release ${o.version} verified with the pinned release key; switching from ${AGENT_VERSION}`);
    } finally {
      this.downloading = false;
    }
    await stopAgent();
    try {
      this.become(this.load().trial!.file);
    } catch (e) {
      // The agent is stopped and could not become the release: roll it back and let the service manager start the
      // installed bundle again.
      this.rollBack(this.load(), `it could not be started: ${(e as Error).message}`);
      process.exit(1);
    }
  }

  private refuse(s: ReleaseState, o: ReleaseOffer, why: string): void {
    this.log("error", `release ${o.version} refused: ${why}`);
    s.failed.push(o.version);
    s.reports.push({ rollout: o.rollout, version: o.version, state: "refused", detail: why });
    this.save(s);
  }

  private rollBack(s: ReleaseState, why: string): void {
    const trial = s.trial!;
    this.log("error", `release ${trial.version} rolled back: ${why}`);
    s.failed.push(trial.version);
    s.reports.push({ rollout: trial.rollout, version: trial.version, state: "rolled_back", detail: why });
    s.trial = null;
    this.save(s);
  }

  private async check(r: Installed): Promise<string | null> {
    if (!this.config.release_public_jwk) return "no release key is pinned in this probe's config";
    let bytes: Buffer;
    try { bytes = readFileSync(r.file); } catch (e) { return `cannot read ${r.file}: ${(e as Error).message}`; }
    return verifyRelease(bytes, r, this.config.release_public_jwk);
  }

  /** Replaces this process with `file` (same pid, flags and environment), telling it where the installed agent is. */
  become(file: string): never {
    this.log("info", `becoming ${file}`);
    if (!process.execve) throw new Error("this Node has no process.execve (needs 22.15 or later): cannot switch releases");
    process.execve(process.execPath, [process.execPath, ...process.execArgv, file, "run", "--config", this.configPath], {
      ...process.env, VANTAGE_AGENT_DIR: AGENT_DIR, VANTAGE_INSTALLED_BUNDLE: this.installed, VANTAGE_PREVIOUS_VERSION: AGENT_VERSION,
    });
    throw new Error(`execve of ${file} returned`);  // it does not: on failure it throws
  }

  private load(): ReleaseState {
    const path = join(this.dir, "state.json");
    if (!existsSync(path)) return { current: null, trial: null, reports: [], failed: [] };
    return JSON.parse(readFileSync(path, "utf8")) as ReleaseState;
  }

  private save(s: ReleaseState): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeDurably(join(this.dir, "state.json"), Buffer.from(JSON.stringify(s, null, 2)), 0o600);
  }
}

/** Writes a file so that after a crash it is either whole or absent (temporary file, fsync, rename, fsync dir). */
function writeDurably(path: string, data: Buffer, mode: number): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, "w", mode);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const d = openSync(join(path, ".."), "r");
  try { fsyncSync(d); } finally { closeSync(d); }
}

/** Orders versions as semver does (1.2.3-rc.9 before 1.2.3-rc.10 before 1.2.3): the semver package, not our own. */
export function compareVersions(a: string, b: string): number {
  return compare(a, b);
}
