// Records of an appliance's data sources, sent like results (spool → frame → durable → ack) under the data-source
// ids of protocol/builtins.ts and validated by the controller like any result: per-minute DNS statistics (DSC
// datasets per server, a HyperLogLog of clients) and the classifier's traffic per application. Bounds keep one
// record small (a probe's per-minute allowance bounds how many): a dishonest appliance can lie about its traffic,
// not make the edge hold more than a few hundred KB for it.
import * as z from "zod/mini";
import { opt } from "./atlas.ts";

const count = () => z.int().check(z.nonnegative());
const unixTime = () => z.int().check(z.positive());
const label = (max: number) => z.string().check(z.maxLength(max));

/** The datasets a collector sends (probe-agent/dnsstats/collector.ts DATASETS). */
export const DNSSTATS_DATASETS = ["qtype", "rcode", "opcode", "transport_vs_qtype", "dns_ip_version", "edns_version", "do_bit", "rd_bit", "query_size",
  "rcode_vs_replylen", "qtype_vs_qnamelen", "qtype_vs_tld", "qname", "client_subnet", "response_time"] as const;
/** Cells of one row at most (the folded datasets keep 200 and two for what they fold). */
export const MAX_ROW_CELLS = 512;

const dscCell = z.strictObject({ val: label(300), count: count() });
const dscDataset = z.strictObject({
  name: z.enum(DNSSTATS_DATASETS),
  start_time: unixTime(),
  stop_time: unixTime(),
  dimensions: z.tuple([label(32), label(32)]),
  data: z.array(z.record(label(32), z.union([label(300), z.array(dscCell).check(z.maxLength(MAX_ROW_CELLS))]))).check(z.maxLength(64)),
});
export type DscDatasetRecord = z.output<typeof dscDataset>;

const hll = z.union([
  z.strictObject({ sparse: z.array(z.int().check(z.nonnegative(), z.lt(4096 * 32))).check(z.maxLength(512)) }),
  z.strictObject({ dense: z.string().check(z.length(5464)) }),
]);

export const DnsStatsMinute = z.strictObject({
  start_time: unixTime(),
  stop_time: unixTime(),
  capture: z.strictObject({ packets: count(), not_dns: count(), fragments: count(), tcp_partial: count(), malformed: count(), messages: count() }),
  servers: z.array(z.strictObject({
    server: label(64),
    queries: count(),
    responses: count(),
    clients: z.strictObject({ estimate: count(), hll }),
    datasets: z.array(dscDataset).check(z.maxLength(DNSSTATS_DATASETS.length)),
  })).check(z.maxLength(33)),
});
export type DnsStatsMinute = z.output<typeof DnsStatsMinute>;

const header = {
  fw: z.int(),
  mver: z.string(),
  lts: z.int(),
  msm_id: z.int().check(z.positive()),
  prb_id: z.int().check(z.positive()),
  timestamp: unixTime(),
  from: z.string(),
  stored_timestamp: opt(z.int()),
};

export const DnsStatsResult = z.strictObject({
  ...header,
  type: z.literal("dnsstats"),
  /** What the collector watched: an interface's name, or "dnstap". */
  source: label(64),
  minutes: z.array(DnsStatsMinute).check(z.minLength(1), z.maxLength(10)),
});
export type DnsStatsResult = z.output<typeof DnsStatsResult>;

export const TrafficInterval = z.strictObject({
  start: z.number().check(z.nonnegative()),
  end: z.number().check(z.nonnegative()),
  apps: z.array(z.strictObject({ label: label(64), flows: count(), packets_up: count(), bytes_up: count(), packets_down: count(), bytes_down: count() })).check(z.maxLength(512)),
});
export type TrafficInterval = z.output<typeof TrafficInterval>;

export const TrafficResult = z.strictObject({
  ...header,
  type: z.literal("traffic"),
  /** The monitored interface. */
  source: label(64),
  intervals: z.array(TrafficInterval).check(z.minLength(1), z.maxLength(60)),
});
export type TrafficResult = z.output<typeof TrafficResult>;

/** What the C-DNS blocks of a record were written with: the file's storage parameters are made from it. */
export const CdnsParameters = z.strictObject({
  sample_rate: z.number().check(z.minimum(0), z.maximum(1)),
  query_timeout_ms: z.int().check(z.positive(), z.lte(600_000)),
  client_prefix_v4: opt(z.int().check(z.gte(1), z.lte(32))),
  client_prefix_v6: opt(z.int().check(z.gte(1), z.lte(128))),
});
export type CdnsParameters = z.output<typeof CdnsParameters>;

/** Sampled pairs: C-DNS blocks (RFC 8618 §7.3.2, each one CBOR map), gzipped and in base64, of one hour's file. */
export const CdnsResult = z.strictObject({
  ...header,
  type: z.literal("cdns"),
  source: label(64),
  /** The hour of the appliance's file, YYYYMMDD-HH (UTC). */
  hour: z.string().check(z.regex(/^\d{8}-\d{2}$/, "hour must be YYYYMMDD-HH")),
  parameters: CdnsParameters,
  blocks: z.array(z.strictObject({ pairs: z.int().check(z.positive(), z.lte(5000)), gz: z.base64().check(z.maxLength(2 * 1024 * 1024)) })).check(z.minLength(1), z.maxLength(16)),
});
export type CdnsResult = z.output<typeof CdnsResult>;
