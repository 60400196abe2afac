// DNS statistics while the agent runs: packets from an interface (the capture addon, probe-agent/capture/) and/or
// dnstap from a DNS server on a unix socket, into one collector whose clock is the agent's (minutes close on time
// even when no packet comes), minutes and the sample into state_dir/dnsstats/, and each closed minute and each
// written C-DNS block handed over for upload (`onMinute`, `onBlock`).
import { createRequire } from "node:module";
import { join } from "node:path";
import type { AgentConfig } from "../config.ts";
import { AGENT_DIR } from "../dir.ts";
import type { Log } from "../agent.ts";
import { DnsStatsCollector, type MinuteRecord } from "./collector.ts";
import { decodeFrame, DnsPacket } from "./decode.ts";
import { type DnstapCounters, type DnstapListener, dnstapMessage, serveDnstap } from "./dnstap.ts";
import { DnsStatsStore } from "./store.ts";

type CaptureHandle = { close(): void; stats(): { received: number; kernel_dropped: number; batches_dropped: number } };
/** onBatch(null, -1) ends the capture: nothing comes after it. */
type CaptureAddon = { Capture: new (o: { interface: string; filter: string; snaplen: number }, onBatch: (b: Buffer | null, linkType: number) => void) => CaptureHandle };

export const CAPTURE_ADDON = join(AGENT_DIR, "capture", "build", "Release", "vantage_capture.node");

export class LiveDnsStats {
  private readonly config: NonNullable<AgentConfig["dnsstats"]>;
  private readonly log: Log;
  private readonly store: DnsStatsStore;
  private readonly collector: DnsStatsCollector;
  private readonly packet = new DnsPacket();
  private readonly each = (p: DnsPacket) => this.collector.message(p);
  private capture: CaptureHandle | null = null;
  private captureEnded: Promise<void> = Promise.resolve();
  private dnstap: DnstapListener | null = null;
  private clock: NodeJS.Timeout | null = null;
  readonly dnstapCounters: DnstapCounters = { frames: 0, messages: 0, other_types: 0, malformed: 0 };

  constructor(config: NonNullable<AgentConfig["dnsstats"]>, stateDir: string, generator: string, log: Log, onMinute: (m: MinuteRecord) => void,
    onBlock: (hour: string, block: Uint8Array, pairs: number) => void = () => {}) {
    this.config = config;
    this.log = log;
    this.store = new DnsStatsStore(join(stateDir, "dnsstats"), {
      sampleRate: config.sample_rate, queryTimeoutMs: 5000, generator, ...(config.interface ? { interfaces: [config.interface] } : {}),
      ...(config.client_addresses ? {} : { clientPrefixV4: 24, clientPrefixV6: 96 }),
    }, onBlock);
    this.collector = new DnsStatsCollector({ sampleRate: config.sample_rate, clientAddresses: config.client_addresses }, (m) => {
      this.store.minute(m);
      onMinute(m);
    }, (p) => this.store.sample(p));
  }

  /** Opens the inputs; an input that cannot open is said in the log and the error thrown (the other is closed). */
  async start(): Promise<void> {
    try {
      if (this.config.dnstap_socket) {
        const c = this.dnstapCounters;
        this.dnstap = await serveDnstap(this.config.dnstap_socket, (frame) => { this.collector.counters.packets++; dnstapMessage(frame, this.packet, c, this.each); }, (m) => this.log("warn", m));
      }
      if (this.config.interface) {
        const addon = createRequire(import.meta.url)(CAPTURE_ADDON) as CaptureAddon;
        const counters = this.collector.counters;
        let ended: () => void = () => {};
        this.captureEnded = new Promise((r) => (ended = r));
        this.capture = new addon.Capture({ interface: this.config.interface, filter: this.config.filter, snaplen: 65535 }, (batch, linkType) => {
          if (batch === null) { ended(); return; }
          // The batch is in pcap's record layout: 16-byte header (seconds, µs, captured and original length), bytes.
          for (let off = 0; off + 16 <= batch.length;) {
            const caplen = batch.readUInt32LE(off + 8);
            decodeFrame(batch.readUInt32LE(off) * 1e6 + batch.readUInt32LE(off + 4), linkType, batch, off + 16, caplen, this.packet, counters, this.each);
            off += 16 + caplen;
          }
        });
      }
    } catch (e) {
      await this.stop();
      throw e;
    }
    this.clock = setInterval(() => this.collector.advance(Date.now() * 1000), 1000);
    this.clock.unref();
  }

  /** Closes the inputs and writes what is held: the minute in progress is emitted as it stands. */
  async stop(): Promise<void> {
    if (this.clock) clearInterval(this.clock);
    this.clock = null;
    // The capture hands over what the kernel still held before it ends; only then is the collector finished.
    this.capture?.close();
    await this.captureEnded;
    const listener = this.dnstap;
    this.dnstap = null;
    await listener?.close();
    this.collector.finish();
    this.store.close();
  }

  /** Counters for the host's status: packets seen and what the capture lost. */
  stats(): Record<string, number> {
    const s = this.capture?.stats();
    return { ...this.collector.counters, ...(s ?? {}), dnstap_frames: this.dnstapCounters.frames };
  }
}
