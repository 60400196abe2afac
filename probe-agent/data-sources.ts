// The appliance as a data source: the traffic classifier's reports and the DNS statistics, started when the config
// asks for them, kept on the appliance's disk, and (when the host lets them) uploaded as records the agent spools
// and sends like results (protocol/datasources.ts), under the id that says whether they are public. A closed minute
// is spooled at once (one a minute: a crash loses none the journal was given), and so is a classifier report when
// the last left 5 s ago or more; the sample's C-DNS blocks, which can come every few seconds, leave every
// UPLOAD_EVERY_S with what was written meanwhile. Record timestamps only grow, at least MIN_SPACING_S apart per kind (the controller's pace for
// built-ins), across restarts (state_dir/data-sources.json).
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Log } from "./agent.ts";
import type { AgentConfig } from "./config.ts";
import type { MonitoredInterface } from "./classifier.ts";
import type { LiveDnsStats } from "./dnsstats/live.ts";
import type { MinuteRecord } from "./dnsstats/collector.ts";
import { gzipSync } from "node:zlib";
import { type DataSourceKind, dataSourceId, type DnsStatsMinute, FIRMWARE_VERSION, MEASUREMENT_CODE_VERSION, type Result, type TrafficInterval } from "../protocol/probe.ts";

const UPLOAD_EVERY_S = 10;
const MIN_SPACING_S = 5;
/** C-DNS blocks and report intervals in one record at most (the edge's schema allows 16 and 60), and the blocks' base64. */
const MAX_BLOCKS = 16, MAX_INTERVALS = 60, MAX_RECORD_CHARS = 1024 * 1024;

export class DataSources {
  private readonly config: AgentConfig;
  private readonly log: Log;
  private readonly submit: (r: Result) => void;
  private readonly lts: () => number;
  private monitor: MonitoredInterface | null = null;
  private dns: LiveDnsStats | null = null;
  private stopped = false;
  private readonly held: { cdns: { hour: string; gz: string; pairs: number }[]; traffic: TrafficInterval[] } = { cdns: [], traffic: [] };
  private readonly last: Record<DataSourceKind, number>;
  private readonly statePath: string;
  private timer: NodeJS.Timeout | null = null;

  constructor(config: AgentConfig, log: Log, submit: (r: Result) => void, lts: () => number) {
    this.config = config;
    this.log = log;
    this.submit = submit;
    this.lts = lts;
    this.statePath = join(config.state_dir, "data-sources.json");
    let saved: Partial<Record<DataSourceKind, number>> = {};
    try { saved = JSON.parse(readFileSync(this.statePath, "utf8")) as typeof saved; } catch { /* first start */ }
    this.last = { dnsstats: saved.dnsstats ?? 0, traffic: saved.traffic ?? 0, cdns: saved.cdns ?? 0 };
  }

  start(): void {
    const classifier = this.config.classifier;
    if (classifier) {
      void import("./classifier.ts").then(({ MonitoredInterface }) => {
        if (this.stopped) return;
        this.monitor = new MonitoredInterface(classifier, this.config.state_dir, this.log, (r) => {
          if (!classifier.upload) return;
          this.held.traffic.push(r);
          // Reports every few minutes go at once; shorter intervals (down to 1 s) are gathered, one record per 5 s.
          if (Math.floor(Date.now() / 1000) >= this.last.traffic + MIN_SPACING_S) this.flush();
        });
        this.monitor.start();
      });
    }
    const dnsstats = this.config.dnsstats;
    if (dnsstats) {
      void import("./dnsstats/live.ts").then(async ({ LiveDnsStats }) => {
        if (this.stopped) return;
        const { AGENT_VERSION } = await import("./version.ts");
        const live = new LiveDnsStats(dnsstats, this.config.state_dir, `vantage-probe ${AGENT_VERSION}`, this.log,
          (m) => { if (dnsstats.upload) this.emit("dnsstats", dnsstats.public, { type: "dnsstats", source: dnsstats.interface ?? "dnstap", minutes: [uploadable(m)] }); },
          (hour, block, pairs) => { if (sampleUpload(dnsstats)) this.held.cdns.push({ hour, pairs, gz: gzipSync(block).toString("base64") }); });
        try {
          await live.start();
          this.dns = live;
          this.log("info", `DNS statistics from ${[dnsstats.interface, dnsstats.dnstap_socket && `dnstap on ${dnsstats.dnstap_socket}`].filter(Boolean).join(" and ")}`);
        } catch (e) {
          this.log("error", `DNS statistics could not start: ${(e as Error).message}`);
        }
      });
    }
    if ((dnsstats && sampleUpload(dnsstats)) || classifier?.upload) {
      this.timer = setInterval(() => this.flush(), UPLOAD_EVERY_S * 1000);
      this.timer.unref();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.monitor?.stop();
    await this.dns?.stop();
    this.flush();
  }

  /** Counters for the host's status (DNS statistics). */
  stats(): Record<string, number> | null {
    return this.dns?.stats() ?? null;
  }

  /** Spools the C-DNS blocks written and the reports gathered since the last upload (C-DNS: records of one hour's blocks). */
  flush(): void {
    const dns = this.config.dnsstats, traffic = this.config.classifier;
    while (this.held.traffic.length && traffic) {
      this.emit("traffic", traffic.public, { type: "traffic", source: traffic.interface, intervals: this.held.traffic.splice(0, MAX_INTERVALS) });
    }
    while (this.held.cdns.length && dns) {
      const hour = this.held.cdns[0]!.hour;
      let n = 0, chars = 0;
      while (n < this.held.cdns.length && n < MAX_BLOCKS && this.held.cdns[n]!.hour === hour && (n === 0 || chars + this.held.cdns[n]!.gz.length <= MAX_RECORD_CHARS)) chars += this.held.cdns[n++]!.gz.length;
      const blocks = this.held.cdns.splice(0, n).map((b) => ({ pairs: b.pairs, gz: b.gz }));
      const parameters = { sample_rate: dns.sample_rate, query_timeout_ms: 5000, ...(dns.client_addresses ? {} : { client_prefix_v4: 24, client_prefix_v6: 96 }) };
      this.emit("cdns", dns.sample_public, { type: "cdns", source: dns.interface ?? "dnstap", hour, parameters, blocks });
    }
  }

  private emit(kind: DataSourceKind, isPublic: boolean, body: Record<string, unknown>): void {
    const timestamp = Math.max(Math.floor(Date.now() / 1000), this.last[kind] + MIN_SPACING_S);
    this.last[kind] = timestamp;
    writeFileSync(this.statePath, JSON.stringify(this.last));
    this.submit({
      fw: FIRMWARE_VERSION, mver: MEASUREMENT_CODE_VERSION, lts: this.lts(), msm_id: dataSourceId(kind, isPublic), prb_id: this.config.probe_id,
      timestamp, from: "", ...body,
    } as Result);
  }
}

/** Whether the sample is uploaded: as the host said, else unless it holds whole client addresses. */
function sampleUpload(d: NonNullable<AgentConfig["dnsstats"]>): boolean {
  return d.sample_upload ?? !d.client_addresses;
}

/** A minute as it is uploaded: full client addresses (the host's `client_addresses` opt-in) stay on the appliance. */
function uploadable(m: MinuteRecord): DnsStatsMinute {
  return { ...m, servers: m.servers.map((s) => ({ ...s, datasets: s.datasets.filter((d) => d.name !== "client") })) } as DnsStatsMinute;
}
