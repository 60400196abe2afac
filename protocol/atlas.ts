// RIPE Atlas shapes shared by the edge and the agent: measurement definitions as users send them
// (POST /api/v2/measurements/) and results exactly as Atlas parsers (sagan, goat, ripe-atlas-tools) read them.
// Reference: ../shared/reference/atlas.md §1–§2.
import en from "zod/v4/locales/en.js";
import * as z from "zod/mini";
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

// Schemas are zod/mini: the probe agent validates every command with them and zod's classic API alone costs a
// probe ~10 MB of RSS (docs/benchmarks.md); the edge uses the same schemas.
// zod/mini ships no messages; errors name what is wrong in English, as classic zod's do.
z.config(en());

const opt = z.optional;
const def = z._default;
/** An integer in [min, max]. */
export const intIn = (min: number, max: number) => z.int().check(z.minimum(min), z.maximum(max));
/** A string of at most `max` characters. */
const str = (max: number) => z.string().check(z.maxLength(max));

const unixOrIso = z.union([
  z.int().check(z.nonnegative()),
  z.string().check(z.refine((s) => !Number.isNaN(Date.parse(s)), "Enter a unix timestamp or an ISO-8601 date.")),
]);

/** Time fields accept unix seconds or ISO-8601; normalised to unix seconds. */
export function toUnix(v: number | string): number {
  return typeof v === "number" ? v : Math.floor(Date.parse(v) / 1000);
}

const family = z.union([z.literal(4), z.literal(6)], { error: "af must be 4 or 6." });
const target = z.string({ error: "This field is required." }).check(z.refine(isTarget, "Enter a host name or an IPv4/IPv6 address."));
const port = () => intIn(1, 65_535);

/** What a probe needs to run a measurement: the type's own fields. (Definitions add the scheduling metadata.) */
export const PingSpec = z.object({
  type: z.literal("ping"),
  af: family,
  target,
  resolve_on_probe: def(z.boolean(), false),
  packets: def(intIn(1, 16), 3),
  size: def(intIn(1, 2048), 48),
  packet_interval: def(intIn(2, 30_000), 1000),
  include_probe_id: opt(z.boolean()),
});
export type PingSpec = z.output<typeof PingSpec>;

export const DNS_QUERY_TYPES = [
  "A", "AAAA", "ANY", "CNAME", "DNSKEY", "DS", "HINFO", "MX", "NAPTR", "NS", "NSEC", "NSEC3", "NSEC3PARAM", "PTR", "RRSIG",
  "SOA", "SRV", "SSHFP", "TLSA", "TXT", "CAA", "SVCB", "HTTPS",
] as const;

export const DnsSpec = z.object({
  type: z.literal("dns"),
  af: family,
  /** The server to ask; not needed with use_probe_resolver. */
  target: opt(target),
  resolve_on_probe: def(z.boolean(), false),
  query_class: def(z.enum(["IN", "CHAOS"], { error: "query_class must be IN or CHAOS." }), "IN"),
  query_type: z.enum(DNS_QUERY_TYPES, { error: `query_type must be one of ${DNS_QUERY_TYPES.join(", ")}.` }),
  query_argument: z.string({ error: "This field is required." }).check(z.minLength(1), z.maxLength(253),
    z.refine((n) => n === "." || /^([^.\s]{1,63}\.)*[^.\s]{1,63}\.?$/.test(n), "Enter a domain name.")),
  protocol: def(z.enum(["UDP", "TCP"], { error: "protocol must be UDP or TCP." }), "UDP"),
  set_rd_bit: def(z.boolean(), false),
  set_do_bit: def(z.boolean(), false),
  set_cd_bit: def(z.boolean(), false),
  set_nsid_bit: def(z.boolean(), false),
  /** EDNS0 UDP payload size; without it (and without DO or NSID) the query carries no OPT record. */
  udp_payload_size: opt(intIn(512, 4096)),
  retry: def(intIn(0, 10), 0),
  timeout: def(intIn(100, 30_000), 5000),
  use_probe_resolver: def(z.boolean(), false),
  include_qbuf: def(z.boolean(), false),
  include_abuf: def(z.boolean(), true),
});
export type DnsSpec = z.output<typeof DnsSpec>;

export const NtpSpec = z.object({
  type: z.literal("ntp"),
  af: family,
  target,
  resolve_on_probe: def(z.boolean(), false),
  packets: def(intIn(1, 16), 3),
  timeout: def(intIn(1, 60_000), 4000),
});
export type NtpSpec = z.output<typeof NtpSpec>;

export const TracerouteSpec = z.object({
  type: z.literal("traceroute"),
  af: family,
  target,
  resolve_on_probe: def(z.boolean(), false),
  protocol: def(z.enum(["ICMP", "UDP", "TCP"], { error: "protocol must be ICMP, UDP or TCP." }), "ICMP"),
  packets: def(intIn(1, 16), 3),
  size: def(intIn(0, 2048), 48),
  /** 0 = classic traceroute; 1–64 = Paris traceroute with this flow id (one path through load balancers). */
  paris: def(intIn(0, 64), 16),
  first_hop: def(intIn(1, 255), 1),
  max_hops: def(intIn(1, 255), 32),
  port: opt(port()),
  response_timeout: def(intIn(1, 60_000), 4000),
  dont_fragment: def(z.boolean(), false),
});
export type TracerouteSpec = z.output<typeof TracerouteSpec>;

export const HttpSpec = z.object({
  type: z.literal("http"),
  af: family,
  target,
  resolve_on_probe: def(z.boolean(), false),
  method: def(z.enum(["GET", "HEAD", "POST"], { error: "method must be GET, HEAD or POST." }), "GET"),
  path: def(str(2048).check(z.regex(/^\/[^\s]*$/, "path must start with / and contain no spaces.")), "/"),
  query_string: opt(str(2048).check(z.regex(/^[^\s#]*$/, "query_string must contain no spaces."))),
  port: opt(port()),
  /** Vantage extension: speak TLS (Atlas HTTP measurements are plain HTTP to anchors). */
  https: def(z.boolean(), false),
  version: def(z.literal("1.1", { error: "version: only HTTP/1.1 is supported." }), "1.1"),
  header_bytes: def(intIn(0, 2048), 0),
  max_bytes_read: opt(intIn(0, 1_048_576)),
  user_agent: opt(str(256)),
  extended_timing: def(z.boolean(), false),
  more_extended_timing: def(z.boolean(), false),
  timeout: def(intIn(1000, 60_000), 10_000),
});
export type HttpSpec = z.output<typeof HttpSpec>;

export const SslcertSpec = z.object({
  type: z.literal("sslcert"),
  af: family,
  target,
  resolve_on_probe: def(z.boolean(), false),
  port: def(port(), 443),
  /** SNI name; defaults to the target when that is a name. */
  hostname: opt(str(253)),
  timeout: def(intIn(1000, 60_000), 10_000),
});
export type SslcertSpec = z.output<typeof SslcertSpec>;

/** Scheduling and bookkeeping fields every definition may carry; they never reach the probe. */
const metadata = {
  description: z.string({ error: "This field is required." }).check(z.maxLength(256)),
  interval: opt(z.int().check(z.minimum(60, "Ensure this value is at least 60 seconds."), z.maximum(31_536_000))),
  spread: opt(intIn(0, 400)),
  start_time: opt(unixOrIso),
  stop_time: opt(unixOrIso),
  is_oneoff: opt(z.boolean()),
  is_public: opt(z.boolean()),
  tags: opt(z.array(str(64)).check(z.maxLength(32))),
};
const METADATA_KEYS = Object.keys(metadata) as (keyof typeof metadata)[];

export const PingDefinition = z.extend(PingSpec, metadata);
export const DnsDefinition = z.extend(DnsSpec, metadata);
export const NtpDefinition = z.extend(NtpSpec, metadata);
export const TracerouteDefinition = z.extend(TracerouteSpec, metadata);
export const HttpDefinition = z.extend(HttpSpec, metadata);
export const SslcertDefinition = z.extend(SslcertSpec, metadata);
export type PingDefinition = z.output<typeof PingDefinition>;

/** Measurement types this edge accepts; later types join these unions. */
export const MEASUREMENT_TYPES = ["ping", "traceroute", "dns", "ntp", "http", "sslcert"] as const;
export const Definition = z.discriminatedUnion("type", [PingDefinition, TracerouteDefinition, DnsDefinition, NtpDefinition, HttpDefinition, SslcertDefinition], {
  error: (iss) =>
    iss.code === "invalid_union" ? `Unknown measurement type; supported: ${MEASUREMENT_TYPES.join(", ")}.` : undefined,
});
export type Definition = z.output<typeof Definition>;

export const MeasurementSpec = z.discriminatedUnion("type", [PingSpec, TracerouteSpec, DnsSpec, NtpSpec, HttpSpec, SslcertSpec]);
export type MeasurementSpec = z.output<typeof MeasurementSpec>;

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
  value: z.pipe(z.union([z.string(), z.number()]), z.transform(String)),
  requested: intIn(1, 1000),
  tags: opt(z.object({ include: opt(z.array(z.string())), exclude: opt(z.array(z.string())) })),
}).check(z.superRefine((s, ctx) => {
  const bad = (message: string) => ctx.addIssue({ code: "custom", path: ["value"], message });
  if (s.type === "area" && !(AREAS as readonly string[]).includes(s.value)) bad(`area must be one of ${AREAS.join(", ")}.`);
  if (s.type === "country" && !/^[A-Za-z]{2}$/.test(s.value)) bad("country must be a two-letter ISO 3166 code.");
  if (s.type === "asn" && !/^\d{1,10}$/.test(s.value)) bad("asn must be a number.");
  if (s.type === "prefix" && !/^[0-9a-fA-F:.]+\/\d{1,3}$/.test(s.value)) bad("prefix must be an address/length.");
  if (s.type === "probes" && !/^\d+(,\d+)*$/.test(s.value)) bad("probes must be a comma-separated list of probe ids.");
  if (s.type === "msm" && !/^\d+$/.test(s.value)) bad("msm must be a measurement id (its probes are reused).");
}));
export type ProbeSource = z.output<typeof ProbeSource>;

export const CreateMeasurements = z.object({
  definitions: z.array(Definition).check(z.minLength(1, "At least one definition is required."), z.maxLength(100)),
  probes: z.array(ProbeSource).check(z.minLength(1, "At least one probe source is required."), z.maxLength(100)),
  start_time: opt(unixOrIso),
  stop_time: opt(unixOrIso),
  is_oneoff: opt(z.boolean()),
  bill_to: opt(z.string()),
  /** Not Atlas: take the answer of an identical recent one-off (named in the response's warnings) at no cost. */
  reuse: opt(z.boolean()),
}).check(z.superRefine((req, ctx) => {
  req.definitions.forEach((d, i) => {
    if (d.type === "dns" && !d.use_probe_resolver && !d.target) {
      ctx.addIssue({ code: "custom", path: ["definitions", i, "target"], message: "This field is required unless use_probe_resolver is true." });
    }
    if (d.type === "traceroute" && d.first_hop > d.max_hops) {
      ctx.addIssue({ code: "custom", path: ["definitions", i, "first_hop"], message: "first_hop must not exceed max_hops." });
    }
  });
}));
export type CreateMeasurements = z.output<typeof CreateMeasurements>;

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

export const Result = z.discriminatedUnion("type", [PingResult, TracerouteResult, DnsResult, NtpResult, HttpResult, SslcertResult]);
export type Result = z.output<typeof Result>;
