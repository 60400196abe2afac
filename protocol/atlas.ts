// RIPE Atlas shapes shared by the edge and the agent: measurement definitions as users send them
// (POST /api/v2/measurements/) and results exactly as Atlas parsers (sagan, goat, ripe-atlas-tools) read them.
// Reference: ../shared/reference/atlas.md §1–§2.
import { z } from "zod";
import { isTarget } from "./net.ts";

/** Atlas measurement status ids and names. */
export const STATUS = {
  specified: { id: 0, name: "Specified" },
  scheduled: { id: 1, name: "Scheduled" },
  ongoing: { id: 2, name: "Ongoing" },
  stopped: { id: 4, name: "Stopped" },
  forcedToStop: { id: 5, name: "Forced to stop" },
  noSuitableProbes: { id: 6, name: "No suitable probes" },
  failed: { id: 7, name: "Failed" },
} as const;
export type Status = (typeof STATUS)[keyof typeof STATUS];

/** Firmware version we report: ≥ 5000 makes Atlas parsers pick the current result schema. */
export const FIRMWARE_VERSION = 5020;
export const MEASUREMENT_CODE_VERSION = "1.0.0";

const unixOrIso = z.union([
  z.number().int().nonnegative(),
  z.string().refine((s) => !Number.isNaN(Date.parse(s)), "Enter a unix timestamp or an ISO-8601 date."),
]);

/** Time fields accept unix seconds or ISO-8601; normalised to unix seconds. */
export function toUnix(v: number | string): number {
  return typeof v === "number" ? v : Math.floor(Date.parse(v) / 1000);
}

const family = z.union([z.literal(4), z.literal(6)], { error: "af must be 4 or 6." });
const target = z.string({ error: "This field is required." }).refine(isTarget, "Enter a host name or an IPv4/IPv6 address.");

/** What a probe needs to run a measurement: the type's own fields. (Definitions add the scheduling metadata.) */
export const PingSpec = z.object({
  type: z.literal("ping"),
  af: family,
  target,
  resolve_on_probe: z.boolean().default(false),
  packets: z.number().int().min(1).max(16).default(3),
  size: z.number().int().min(1).max(2048).default(48),
  packet_interval: z.number().int().min(2).max(30_000).default(1000),
  include_probe_id: z.boolean().optional(),
});
export type PingSpec = z.infer<typeof PingSpec>;

export const DNS_QUERY_TYPES = [
  "A", "AAAA", "ANY", "CNAME", "DNSKEY", "DS", "HINFO", "MX", "NAPTR", "NS", "NSEC", "NSEC3", "NSEC3PARAM", "PTR", "RRSIG",
  "SOA", "SRV", "SSHFP", "TLSA", "TXT", "CAA", "SVCB", "HTTPS",
] as const;

export const DnsSpec = z.object({
  type: z.literal("dns"),
  af: family,
  /** The server to ask; not needed with use_probe_resolver. */
  target: target.optional(),
  resolve_on_probe: z.boolean().default(false),
  query_class: z.enum(["IN", "CHAOS"], { error: "query_class must be IN or CHAOS." }).default("IN"),
  query_type: z.enum(DNS_QUERY_TYPES, { error: `query_type must be one of ${DNS_QUERY_TYPES.join(", ")}.` }),
  query_argument: z.string({ error: "This field is required." }).min(1).max(253)
    .refine((n) => n === "." || /^([^.\s]{1,63}\.)*[^.\s]{1,63}\.?$/.test(n), "Enter a domain name."),
  protocol: z.enum(["UDP", "TCP"], { error: "protocol must be UDP or TCP." }).default("UDP"),
  set_rd_bit: z.boolean().default(false),
  set_do_bit: z.boolean().default(false),
  set_cd_bit: z.boolean().default(false),
  set_nsid_bit: z.boolean().default(false),
  /** EDNS0 UDP payload size; without it (and without DO or NSID) the query carries no OPT record. */
  udp_payload_size: z.number().int().min(512).max(4096).optional(),
  retry: z.number().int().min(0).max(10).default(0),
  timeout: z.number().int().min(100).max(30_000).default(5000),
  use_probe_resolver: z.boolean().default(false),
  include_qbuf: z.boolean().default(false),
  include_abuf: z.boolean().default(true),
});
export type DnsSpec = z.infer<typeof DnsSpec>;

export const NtpSpec = z.object({
  type: z.literal("ntp"),
  af: family,
  target,
  resolve_on_probe: z.boolean().default(false),
  packets: z.number().int().min(1).max(16).default(3),
  timeout: z.number().int().min(1).max(60_000).default(4000),
});
export type NtpSpec = z.infer<typeof NtpSpec>;

export const TracerouteSpec = z.object({
  type: z.literal("traceroute"),
  af: family,
  target,
  resolve_on_probe: z.boolean().default(false),
  protocol: z.enum(["ICMP", "UDP", "TCP"], { error: "protocol must be ICMP, UDP or TCP." }).default("ICMP"),
  packets: z.number().int().min(1).max(16).default(3),
  size: z.number().int().min(0).max(2048).default(48),
  /** 0 = classic traceroute; 1–64 = Paris traceroute with this flow id (one path through load balancers). */
  paris: z.number().int().min(0).max(64).default(16),
  first_hop: z.number().int().min(1).max(255).default(1),
  max_hops: z.number().int().min(1).max(255).default(32),
  port: z.number().int().min(1).max(65_535).optional(),
  response_timeout: z.number().int().min(1).max(60_000).default(4000),
  dont_fragment: z.boolean().default(false),
});
export type TracerouteSpec = z.infer<typeof TracerouteSpec>;

export const HttpSpec = z.object({
  type: z.literal("http"),
  af: family,
  target,
  resolve_on_probe: z.boolean().default(false),
  method: z.enum(["GET", "HEAD", "POST"], { error: "method must be GET, HEAD or POST." }).default("GET"),
  path: z.string().max(2048).regex(/^\/[^\s]*$/, "path must start with / and contain no spaces.").default("/"),
  query_string: z.string().max(2048).regex(/^[^\s#]*$/, "query_string must contain no spaces.").optional(),
  port: z.number().int().min(1).max(65_535).optional(),
  /** Vantage extension: speak TLS (Atlas HTTP measurements are plain HTTP to anchors). */
  https: z.boolean().default(false),
  version: z.literal("1.1", { error: "version: only HTTP/1.1 is supported." }).default("1.1"),
  header_bytes: z.number().int().min(0).max(2048).default(0),
  max_bytes_read: z.number().int().min(0).max(1_048_576).optional(),
  user_agent: z.string().max(256).optional(),
  extended_timing: z.boolean().default(false),
  more_extended_timing: z.boolean().default(false),
  timeout: z.number().int().min(1000).max(60_000).default(10_000),
});
export type HttpSpec = z.infer<typeof HttpSpec>;

export const SslcertSpec = z.object({
  type: z.literal("sslcert"),
  af: family,
  target,
  resolve_on_probe: z.boolean().default(false),
  port: z.number().int().min(1).max(65_535).default(443),
  /** SNI name; defaults to the target when that is a name. */
  hostname: z.string().max(253).optional(),
  timeout: z.number().int().min(1000).max(60_000).default(10_000),
});
export type SslcertSpec = z.infer<typeof SslcertSpec>;

/** Scheduling and bookkeeping fields every definition may carry; they never reach the probe. */
const metadata = {
  description: z.string({ error: "This field is required." }).max(256),
  interval: z.number().int().min(60, "Ensure this value is at least 60 seconds.").max(31_536_000).optional(),
  spread: z.number().int().min(0).max(400).optional(),
  start_time: unixOrIso.optional(),
  stop_time: unixOrIso.optional(),
  is_oneoff: z.boolean().optional(),
  is_public: z.boolean().optional(),
  tags: z.array(z.string().max(64)).max(32).optional(),
};
const METADATA_KEYS = Object.keys(metadata) as (keyof typeof metadata)[];

export const PingDefinition = PingSpec.extend(metadata);
export const DnsDefinition = DnsSpec.extend(metadata);
export const NtpDefinition = NtpSpec.extend(metadata);
export const TracerouteDefinition = TracerouteSpec.extend(metadata);
export const HttpDefinition = HttpSpec.extend(metadata);
export const SslcertDefinition = SslcertSpec.extend(metadata);
export type PingDefinition = z.infer<typeof PingDefinition>;

/** Measurement types this edge accepts; later types join these unions. */
export const MEASUREMENT_TYPES = ["ping", "traceroute", "dns", "ntp", "http", "sslcert"] as const;
export const Definition = z.discriminatedUnion("type", [PingDefinition, TracerouteDefinition, DnsDefinition, NtpDefinition, HttpDefinition, SslcertDefinition], {
  error: (iss) =>
    iss.code === "invalid_union" ? `Unknown measurement type; supported: ${MEASUREMENT_TYPES.join(", ")}.` : undefined,
});
export type Definition = z.infer<typeof Definition>;

export const MeasurementSpec = z.discriminatedUnion("type", [PingSpec, TracerouteSpec, DnsSpec, NtpSpec, HttpSpec, SslcertSpec]);
export type MeasurementSpec = z.infer<typeof MeasurementSpec>;

/** The probe's part of a definition. */
export function specOf(def: Definition): MeasurementSpec {
  const spec: Record<string, unknown> = { ...def };
  for (const k of METADATA_KEYS) delete spec[k];
  return spec as MeasurementSpec;
}

/** How long one run of a measurement can take at most (seconds), for deciding when a one-off is over. */
export function runSeconds(spec: MeasurementSpec): number {
  switch (spec.type) {
    case "ping": return Math.ceil((spec.packets * spec.packet_interval) / 1000) + 1;
    case "traceroute": return Math.ceil(((spec.max_hops - spec.first_hop + 1) * spec.packets * spec.response_timeout) / 1000);
    case "dns": return Math.ceil(((spec.retry + 1) * spec.timeout) / 1000);
    case "ntp": return Math.ceil((spec.packets * spec.timeout) / 1000);
    case "http":
    case "sslcert": return Math.ceil(spec.timeout / 1000);
  }
}

export const AREAS = ["WW", "West", "North-Central", "South-Central", "North-East", "South-East"] as const;

export const ProbeSource = z.object({
  type: z.enum(["area", "country", "asn", "prefix", "probes", "msm"], {
    error: "type must be one of area, country, asn, prefix, probes, msm.",
  }),
  value: z.union([z.string(), z.number()]).transform(String),
  requested: z.number().int().min(1).max(1000),
  tags: z.object({ include: z.array(z.string()).optional(), exclude: z.array(z.string()).optional() }).optional(),
}).superRefine((s, ctx) => {
  const bad = (message: string) => ctx.addIssue({ code: "custom", path: ["value"], message });
  if (s.type === "area" && !(AREAS as readonly string[]).includes(s.value)) bad(`area must be one of ${AREAS.join(", ")}.`);
  if (s.type === "country" && !/^[A-Za-z]{2}$/.test(s.value)) bad("country must be a two-letter ISO 3166 code.");
  if (s.type === "asn" && !/^\d{1,10}$/.test(s.value)) bad("asn must be a number.");
  if (s.type === "prefix" && !/^[0-9a-fA-F:.]+\/\d{1,3}$/.test(s.value)) bad("prefix must be an address/length.");
  if (s.type === "probes" && !/^\d+(,\d+)*$/.test(s.value)) bad("probes must be a comma-separated list of probe ids.");
  if (s.type === "msm" && !/^\d+$/.test(s.value)) bad("msm must be a measurement id (its probes are reused).");
});
export type ProbeSource = z.infer<typeof ProbeSource>;

export const CreateMeasurements = z.object({
  definitions: z.array(Definition).min(1, "At least one definition is required.").max(100),
  probes: z.array(ProbeSource).min(1, "At least one probe source is required.").max(100),
  start_time: unixOrIso.optional(),
  stop_time: unixOrIso.optional(),
  is_oneoff: z.boolean().optional(),
  bill_to: z.string().optional(),
  /** Not Atlas: take the answer of an identical recent one-off (named in the response's warnings) at no cost. */
  reuse: z.boolean().optional(),
}).superRefine((req, ctx) => {
  req.definitions.forEach((d, i) => {
    if (d.type === "dns" && !d.use_probe_resolver && !d.target) {
      ctx.addIssue({ code: "custom", path: ["definitions", i, "target"], message: "This field is required unless use_probe_resolver is true." });
    }
    if (d.type === "traceroute" && d.first_hop > d.max_hops) {
      ctx.addIssue({ code: "custom", path: ["definitions", i, "first_hop"], message: "first_hop must not exceed max_hops." });
    }
  });
});
export type CreateMeasurements = z.infer<typeof CreateMeasurements>;

/** One reply in a ping result: an RTT, a timeout, or an error. */
export const PingReply = z.union([
  z.object({ rtt: z.number().nonnegative(), ttl: z.number().int().optional(), dup: z.literal(1).optional(), srcaddr: z.string().optional() }).strict(),
  z.object({ x: z.literal("*") }).strict(),
  z.object({ error: z.string() }).strict(),
]);

const resultCommon = {
  fw: z.number().int(),
  mver: z.string(),
  lts: z.number().int(),
  msm_id: z.number().int().positive(),
  msm_name: z.string(),
  prb_id: z.number().int().positive(),
  timestamp: z.number().int().positive(),
  from: z.string(),
  src_addr: z.string(),
  dst_addr: z.string(),
  dst_name: z.string(),
  af: z.union([z.literal(4), z.literal(6)]),
  ttr: z.number().optional(),
  group_id: z.number().int().optional(),
  stored_timestamp: z.number().int().optional(),
};

/** The Atlas ping result (reference/atlas.md §2). */
export const PingResult = z.object({
  ...resultCommon,
  type: z.literal("ping"),
  msm_name: z.literal("Ping"),
  proto: z.literal("ICMP"),
  size: z.number().int(),
  ttl: z.number().int().optional(),
  sent: z.number().int().nonnegative(),
  rcvd: z.number().int().nonnegative(),
  dup: z.number().int().nonnegative(),
  min: z.number(),
  avg: z.number(),
  max: z.number(),
  step: z.number().int().nullable(),
  result: z.array(PingReply),
}).strict();
export type PingResult = z.infer<typeof PingResult>;

const dnsAnswer = z.object({
  rt: z.number().nonnegative(),
  size: z.number().int().nonnegative(),
  ID: z.number().int(),
  QDCOUNT: z.number().int(),
  ANCOUNT: z.number().int(),
  NSCOUNT: z.number().int(),
  ARCOUNT: z.number().int(),
  abuf: z.string().optional(),
}).strict();
const dnsError = z.record(z.string(), z.union([z.string(), z.number()]));

/** One exchange with one server (also the element of `resultset` when the probe's own resolvers are used). */
const dnsExchange = {
  af: z.union([z.literal(4), z.literal(6)]).optional(),
  dst_addr: z.string().optional(),
  dst_name: z.string().optional(),
  dst_port: z.string().optional(),
  proto: z.enum(["UDP", "TCP"]),
  src_addr: z.string().optional(),
  qbuf: z.string().optional(),
  retry: z.number().int().optional(),
  result: dnsAnswer.optional(),
  error: dnsError.optional(),
};

/** The Atlas DNS result ("Tdig", reference/atlas.md §2). */
export const DnsResult = z.object({
  fw: z.number().int(), mver: z.string(), lts: z.number().int(), msm_id: z.number().int().positive(),
  msm_name: z.literal("Tdig"), prb_id: z.number().int().positive(), timestamp: z.number().int().positive(),
  from: z.string(), type: z.literal("dns"), stored_timestamp: z.number().int().optional(), group_id: z.number().int().optional(),
  ttr: z.number().optional(),
  ...dnsExchange,
  proto: z.enum(["UDP", "TCP"]).optional(),
  resultset: z.array(z.object({ time: z.number().int(), lts: z.number().int(), subid: z.number().int(), submax: z.number().int(), ...dnsExchange }).strict()).optional(),
}).strict();
export type DnsResult = z.infer<typeof DnsResult>;

const ntpReply = z.union([
  z.object({
    "origin-ts": z.number(), "receive-ts": z.number(), "transmit-ts": z.number(), "final-ts": z.number(),
    rtt: z.number(), offset: z.number(),
  }).strict(),
  z.object({ x: z.literal("*") }).strict(),
]);

/** The Atlas NTP result ("Ntp", reference/atlas.md §2). Header fields come from the last reply. */
export const NtpResult = z.object({
  ...resultCommon,
  type: z.literal("ntp"),
  msm_name: z.literal("Ntp"),
  proto: z.literal("UDP"),
  version: z.number().int().optional(),
  li: z.enum(["no", "59", "61", "unknown"]).optional(),
  mode: z.string().optional(),
  stratum: z.number().int().optional(),
  poll: z.number().optional(),
  precision: z.number().optional(),
  "root-delay": z.number().optional(),
  "root-dispersion": z.number().optional(),
  "ref-id": z.string().optional(),
  "ref-ts": z.number().optional(),
  result: z.array(ntpReply),
  error: z.string().optional(),
}).strict();
export type NtpResult = z.infer<typeof NtpResult>;

const traceReply = z.union([
  z.object({
    from: z.string(), rtt: z.number().nonnegative().optional(), size: z.number().int(), ttl: z.number().int(),
    err: z.union([z.string(), z.number().int()]).optional(), ittl: z.number().int().optional(), flags: z.string().optional(),
    late: z.number().int().optional(), edst: z.string().optional(),
    icmpext: z.object({
      version: z.number().int(),
      rfc4884: z.union([z.literal(0), z.literal(1)]),
      obj: z.array(z.object({
        class: z.number().int(), type: z.number().int(),
        mpls: z.array(z.object({ label: z.number().int(), exp: z.number().int(), s: z.number().int(), ttl: z.number().int() }).strict()).optional(),
      }).strict()),
    }).strict().optional(),
  }).strict(),
  z.object({ x: z.literal("*") }).strict(),
]);

/** The Atlas traceroute result ("Traceroute", reference/atlas.md §2). */
export const TracerouteResult = z.object({
  ...resultCommon,
  type: z.literal("traceroute"),
  msm_name: z.literal("Traceroute"),
  proto: z.enum(["ICMP", "UDP", "TCP"]),
  paris_id: z.number().int(),
  size: z.number().int(),
  endtime: z.number().int(),
  result: z.array(z.union([
    z.object({ hop: z.number().int(), result: z.array(traceReply) }).strict(),
    z.object({ hop: z.number().int(), error: z.string() }).strict(),
  ])),
}).strict();
export type TracerouteResult = z.infer<typeof TracerouteResult>;

/** One fetch in an Atlas HTTP result ("HTTPGet"). */
const httpFetch = z.object({
  af: z.union([z.literal(4), z.literal(6)]),
  method: z.string(),
  dst_addr: z.string().optional(),
  src_addr: z.string().optional(),
  res: z.number().int().optional(),
  ver: z.string().optional(),
  hsize: z.number().int().optional(),
  bsize: z.number().int().optional(),
  rt: z.number().optional(),
  header: z.array(z.string()).optional(),
  ttc: z.number().optional(),
  ttfb: z.number().optional(),
  readtiming: z.array(z.object({ o: z.number().int(), t: z.number() }).strict()).optional(),
  dnserr: z.string().optional(),
  err: z.string().optional(),
}).strict();

export const HttpResult = z.object({
  fw: z.number().int(), mver: z.string(), lts: z.number().int(), msm_id: z.number().int().positive(), msm_name: z.literal("HTTPGet"),
  prb_id: z.number().int().positive(), timestamp: z.number().int().positive(), from: z.string(), type: z.literal("http"),
  stored_timestamp: z.number().int().optional(), group_id: z.number().int().optional(),
  uri: z.string(),
  result: z.array(httpFetch),
}).strict();
export type HttpResult = z.infer<typeof HttpResult>;

export const SslcertResult = z.object({
  fw: z.number().int(), mver: z.string(), lts: z.number().int(), msm_id: z.number().int().positive(), msm_name: z.literal("SSLCert"),
  prb_id: z.number().int().positive(), timestamp: z.number().int().positive(), from: z.string(), type: z.literal("sslcert"),
  stored_timestamp: z.number().int().optional(), group_id: z.number().int().optional(),
  af: z.union([z.literal(4), z.literal(6)]),
  dst_name: z.string(),
  dst_addr: z.string().optional(),
  dst_port: z.string(),
  src_addr: z.string().optional(),
  ttr: z.number().optional(),
  method: z.string().optional(),
  ver: z.string().optional(),
  server_cipher: z.string().optional(),
  ttc: z.number().optional(),
  rt: z.number().optional(),
  cert: z.array(z.string()).optional(),
  alert: z.object({ level: z.number().int(), description: z.number().int() }).strict().optional(),
  err: z.string().optional(),
  dnserr: z.string().optional(),
}).strict();
export type SslcertResult = z.infer<typeof SslcertResult>;

export const Result = z.discriminatedUnion("type", [PingResult, TracerouteResult, DnsResult, NtpResult, HttpResult, SslcertResult]);
export type Result = z.infer<typeof Result>;
