// DNS statistics from a file, the way `vantage-probe dnsstats --read` and the benchmark run it: a capture (pcap,
// pcapng) through the packet decoder, or a dnstap file (Frame Streams), then the collector, and minutes and the
// C-DNS sample into a store directory.
import { open } from "node:fs/promises";
import { readCaptureFile } from "./capture-file.ts";
import { type CollectorOptions, DEFAULT_COLLECTOR, DnsStatsCollector } from "./collector.ts";
import { decodeFrame, DnsPacket } from "./decode.ts";
import { type DnstapCounters, dnstapMessage, FrameStreamReader } from "./dnstap.ts";
import { DnsStatsStore } from "./store.ts";

export type CollectSummary = DnsStatsCollector["counters"] & { minutes: number; cdns: string[]; seconds: number; dnstap?: DnstapCounters };

export async function collectFile(path: string, outDir: string, options: Partial<CollectorOptions>, generator: string): Promise<CollectSummary> {
  const o = { ...DEFAULT_COLLECTOR, ...options };
  const store = new DnsStatsStore(outDir, {
    sampleRate: o.sampleRate, queryTimeoutMs: o.timeoutMs, generator,
    ...(o.clientAddresses ? {} : { clientPrefixV4: 24, clientPrefixV6: 96 }),
  });
  const collector = new DnsStatsCollector(o, (m) => store.minute(m), (p) => store.sample(p));
  const packet = new DnsPacket();
  const each = (p: DnsPacket) => collector.message(p);
  const started = process.hrtime.bigint();
  let dnstap: DnstapCounters | undefined;
  if (await isFrameStream(path)) {
    const c: DnstapCounters = { frames: 0, messages: 0, other_types: 0, malformed: 0 };
    dnstap = c;
    const reader = new FrameStreamReader((frame) => { collector.counters.packets++; dnstapMessage(frame, packet, c, each); });
    const file = await open(path, "r");
    try {
      for await (const chunk of file.createReadStream({ highWaterMark: 1 << 20 })) reader.push(chunk as Buffer);
    } catch (e) {
      throw new Error(`${path}: ${(e as Error).message}`);
    } finally {
      await file.close();
    }
    if (!reader.whole) throw new Error(`${path}: the dnstap file ends inside a frame: truncated file`);
  } else {
    await readCaptureFile(path, (ts, linkType, buf, off, len) => decodeFrame(ts, linkType, buf, off, len, packet, collector.counters, each));
  }
  collector.finish();
  store.close();
  return { ...collector.counters, minutes: store.written.minutes, cdns: store.written.cdns, seconds: Number(process.hrtime.bigint() - started) / 1e9, ...(dnstap ? { dnstap } : {}) };
}

/** A Frame Streams file starts with the escape of its START control frame (four zero bytes). */
async function isFrameStream(path: string): Promise<boolean> {
  const file = await open(path, "r");
  try {
    const b = Buffer.alloc(4);
    const { bytesRead } = await file.read(b, 0, 4, 0);
    return bytesRead === 4 && b.readUInt32BE(0) === 0;
  } finally {
    await file.close();
  }
}
