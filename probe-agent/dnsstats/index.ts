// DNS statistics from a capture file, the way `vantage-probe dnsstats --read` and the benchmark run it: every packet
// through the decoder and the collector, minutes and the C-DNS sample into a store directory.
import { readCaptureFile } from "./capture-file.ts";
import { type CollectorOptions, DEFAULT_COLLECTOR, DnsStatsCollector } from "./collector.ts";
import { decodeFrame, DnsPacket } from "./decode.ts";
import { DnsStatsStore } from "./store.ts";

export type CollectSummary = DnsStatsCollector["counters"] & { minutes: number; cdns: string[]; seconds: number };

export async function collectCaptureFile(path: string, outDir: string, options: Partial<CollectorOptions>, generator: string): Promise<CollectSummary> {
  const o = { ...DEFAULT_COLLECTOR, ...options };
  const store = new DnsStatsStore(outDir, {
    sampleRate: o.sampleRate, queryTimeoutMs: o.timeoutMs, generator,
    ...(o.clientAddresses ? {} : { clientPrefixV4: 24, clientPrefixV6: 96 }),
  });
  const collector = new DnsStatsCollector(o, (m) => store.minute(m), (p) => store.sample(p));
  const packet = new DnsPacket();
  const each = (p: DnsPacket) => collector.message(p);
  const started = process.hrtime.bigint();
  await readCaptureFile(path, (ts, linkType, data) => decodeFrame(ts, linkType, data, packet, collector.counters, each));
  collector.finish();
  store.close();
  return { ...collector.counters, minutes: store.written.minutes, cdns: store.written.cdns, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}
