// RIPE Atlas results exactly as Atlas parsers (sagan, goat, ripe-atlas-tools) read them (reference/atlas.md §2),
// validated by the controller on every result a probe sends. The probe agent builds results by these types but
// never imports the schemas (probe-agent/build.ts checks), so they cost it no memory.
import * as z from "zod/mini";
import { opt } from "./atlas.ts";
import { CdnsResult, DnsStatsResult, TrafficResult } from "./datasources.ts";

const nonNegative = () => z.number().check(z.nonnegative());
const count = () => z.int().check(z.nonnegative());
const positiveInt = () => z.int().check(z.positive());
const addressFamily = () => z.union([z.literal(4), z.literal(6)]);

/** One reply in a ping result: an RTT, a timeout, or an error. */
export const PingReply = z.union([
  z.strictObject({ rtt: nonNegative(), ttl: opt(z.int()), dup: opt(z.literal(1)), srcaddr: opt(z.string()) }),
  z.strictObject({ x: z.literal("*") }),
  z.strictObject({ error: z.string() }),
]);

/** Fields every Atlas result has. */
const resultHeader = {
  fw: z.int(),
  mver: z.string(),
  lts: z.int(),
  msm_id: positiveInt(),
  prb_id: positiveInt(),
  timestamp: positiveInt(),
  from: z.string(),
  stored_timestamp: opt(z.int()),
  group_id: opt(z.int()),
};

const resultCommon = {
  ...resultHeader,
  msm_name: z.string(),
  src_addr: z.string(),
  dst_addr: z.string(),
  dst_name: z.string(),
  af: addressFamily(),
  ttr: opt(z.number()),
};

/** The Atlas ping result (reference/atlas.md §2). */
export const PingResult = z.strictObject({
  ...resultCommon,
  type: z.literal("ping"),
  msm_name: z.literal("Ping"),
  proto: z.literal("ICMP"),
  size: z.int(),
  ttl: opt(z.int()),
  sent: count(),
  rcvd: count(),
  dup: count(),
  min: z.number(),
  avg: z.number(),
  max: z.number(),
  step: z.nullable(z.int()),
  result: z.array(PingReply),
});
export type PingResult = z.output<typeof PingResult>;

const dnsAnswer = z.strictObject({
  rt: nonNegative(),
  size: count(),
  ID: z.int(),
  QDCOUNT: z.int(),
  ANCOUNT: z.int(),
  NSCOUNT: z.int(),
  ARCOUNT: z.int(),
  abuf: opt(z.string()),
});
const dnsError = z.record(z.string(), z.union([z.string(), z.number()]));

/** One exchange with one server (also the element of `resultset` when the probe's own resolvers are used). */
const dnsExchange = {
  af: opt(addressFamily()),
  dst_addr: opt(z.string()),
  dst_name: opt(z.string()),
  dst_port: opt(z.string()),
  proto: z.enum(["UDP", "TCP"]),
  src_addr: opt(z.string()),
  qbuf: opt(z.string()),
  retry: opt(z.int()),
  result: opt(dnsAnswer),
  error: opt(dnsError),
};

/** The Atlas DNS result ("Tdig", reference/atlas.md §2). */
export const DnsResult = z.strictObject({
  ...resultHeader,
  msm_name: z.literal("Tdig"),
  type: z.literal("dns"),
  ttr: opt(z.number()),
  ...dnsExchange,
  proto: opt(z.enum(["UDP", "TCP"])),
  resultset: opt(z.array(z.strictObject({ time: z.int(), lts: z.int(), subid: z.int(), submax: z.int(), ...dnsExchange }))),
});
export type DnsResult = z.output<typeof DnsResult>;

const ntpReply = z.union([
  z.strictObject({
    "origin-ts": z.number(), "receive-ts": z.number(), "transmit-ts": z.number(), "final-ts": z.number(),
    rtt: z.number(), offset: z.number(),
  }),
  z.strictObject({ x: z.literal("*") }),
]);

/** The Atlas NTP result ("Ntp", reference/atlas.md §2). Header fields come from the last reply. */
export const NtpResult = z.strictObject({
  ...resultCommon,
  type: z.literal("ntp"),
  msm_name: z.literal("Ntp"),
  proto: z.literal("UDP"),
  version: opt(z.int()),
  li: opt(z.enum(["no", "59", "61", "unknown"])),
  mode: opt(z.string()),
  stratum: opt(z.int()),
  poll: opt(z.number()),
  precision: opt(z.number()),
  "root-delay": opt(z.number()),
  "root-dispersion": opt(z.number()),
  "ref-id": opt(z.string()),
  "ref-ts": opt(z.number()),
  result: z.array(ntpReply),
  error: opt(z.string()),
});
export type NtpResult = z.output<typeof NtpResult>;

const traceReply = z.union([
  z.strictObject({
    from: z.string(), rtt: opt(nonNegative()), size: z.int(), ttl: z.int(),
    err: opt(z.union([z.string(), z.int()])), ittl: opt(z.int()), flags: opt(z.string()),
    late: opt(z.int()), edst: opt(z.string()),
    icmpext: opt(z.strictObject({
      version: z.int(),
      rfc4884: z.union([z.literal(0), z.literal(1)]),
      obj: z.array(z.strictObject({
        class: z.int(), type: z.int(),
        mpls: opt(z.array(z.strictObject({ label: z.int(), exp: z.int(), s: z.int(), ttl: z.int() }))),
      })),
    })),
  }),
  z.strictObject({ x: z.literal("*") }),
]);

/** The Atlas traceroute result ("Traceroute", reference/atlas.md §2). */
export const TracerouteResult = z.strictObject({
  ...resultCommon,
  type: z.literal("traceroute"),
  msm_name: z.literal("Traceroute"),
  proto: z.enum(["ICMP", "UDP", "TCP"]),
  paris_id: z.int(),
  size: z.int(),
  endtime: z.int(),
  result: z.array(z.union([
    z.strictObject({ hop: z.int(), result: z.array(traceReply) }),
    z.strictObject({ hop: z.int(), error: z.string() }),
  ])),
});
export type TracerouteResult = z.output<typeof TracerouteResult>;

/** One fetch in an Atlas HTTP result ("HTTPGet"). */
const httpFetch = z.strictObject({
  af: addressFamily(),
  method: z.string(),
  dst_addr: opt(z.string()),
  src_addr: opt(z.string()),
  res: opt(z.int()),
  ver: opt(z.string()),
  hsize: opt(z.int()),
  bsize: opt(z.int()),
  rt: opt(z.number()),
  header: opt(z.array(z.string())),
  ttc: opt(z.number()),
  ttfb: opt(z.number()),
  readtiming: opt(z.array(z.strictObject({ o: z.int(), t: z.number() }))),
  dnserr: opt(z.string()),
  err: opt(z.string()),
});

export const HttpResult = z.strictObject({
  ...resultHeader,
  msm_name: z.literal("HTTPGet"),
  type: z.literal("http"),
  uri: z.string(),
  result: z.array(httpFetch),
});
export type HttpResult = z.output<typeof HttpResult>;

export const SslcertResult = z.strictObject({
  ...resultHeader,
  msm_name: z.literal("SSLCert"),
  type: z.literal("sslcert"),
  af: addressFamily(),
  dst_name: z.string(),
  dst_addr: opt(z.string()),
  dst_port: z.string(),
  src_addr: opt(z.string()),
  ttr: opt(z.number()),
  method: opt(z.string()),
  ver: opt(z.string()),
  server_cipher: opt(z.string()),
  ttc: opt(z.number()),
  rt: opt(z.number()),
  cert: opt(z.array(z.string())),
  alert: opt(z.strictObject({ level: z.int(), description: z.int() })),
  err: opt(z.string()),
  dnserr: opt(z.string()),
});
export type SslcertResult = z.output<typeof SslcertResult>;

/** What a probe sends under a measurement id: an Atlas result, or (under a data-source id) an appliance's record. */
export const Result = z.discriminatedUnion("type", [PingResult, TracerouteResult, DnsResult, NtpResult, HttpResult, SslcertResult, DnsStatsResult, TrafficResult, CdnsResult]);
export type Result = z.output<typeof Result>;
