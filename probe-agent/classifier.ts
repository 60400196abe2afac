// The traffic classifier on a monitored interface, started by the agent when its config asks for it: cyclic
// reports (traffic per application and direction every interval) appended as JSON lines to
// <state_dir>/classifier/reports.jsonl, and each handed to `onReport` (data-sources.ts uploads them).
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { AGENT_DIR } from "./dir.ts";
import type { AgentConfig } from "./config.ts";
import type { Log } from "./agent.ts";
import type { TrafficInterval } from "../protocol/probe.ts";

const CLI = join(AGENT_DIR, "..", "classifier-native", "cli.ts");
/** Each run captures this long, then the agent starts the next one (and after a crash, waits a little first). */
const RUN_SECONDS = 3600;

export class MonitoredInterface {
  private child: ChildProcess | null = null;
  private stopped = false;
  private readonly config: NonNullable<AgentConfig["classifier"]>;
  private readonly reports: string;
  private readonly log: Log;
  private readonly onReport: (r: TrafficInterval) => void;

  constructor(config: NonNullable<AgentConfig["classifier"]>, stateDir: string, log: Log, onReport: (r: TrafficInterval) => void = () => {}) {
    this.config = config;
    this.reports = join(stateDir, "classifier", "reports.jsonl");
    this.log = log;
    this.onReport = onReport;
  }

  start(): void {
    mkdirSync(dirname(this.reports), { recursive: true });
    const out = createWriteStream(this.reports, { flags: "a" });
    const child = spawn(process.execPath, [CLI, "-i", this.config.interface, "--duration", String(RUN_SECONDS), "--mode", "cyclic",
      "--interval", String(this.config.interval_s), "--format", "jsonl", "--plugins", this.config.plugins.join(",")], { stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    child.stdout!.pipe(out);
    let partial = "";
    child.stdout!.on("data", (d: Buffer) => {
      const lines = (partial + d.toString("utf8")).split("\n");
      partial = lines.pop()!;
      for (const line of lines) {
        try {
          const r = JSON.parse(line) as { type?: string } & TrafficInterval;
          if (r.type === "interval") this.onReport({ start: r.start, end: r.end, apps: r.apps });
        } catch { /* the file keeps it as it came */ }
      }
    });
    let stderr = "";
    child.stderr!.on("data", (d) => (stderr = (stderr + d).slice(-2000)));
    child.on("exit", (code) => {
      this.child = null;
      if (this.stopped) return;
      if (code !== 0) this.log("warn", `classifier on ${this.config.interface} exited (${code}): ${stderr.trim()}`);
      setTimeout(() => this.start(), code === 0 ? 0 : 30_000).unref();
    });
  }

  stop(): void {
    this.stopped = true;
    this.child?.kill("SIGTERM");
  }
}
