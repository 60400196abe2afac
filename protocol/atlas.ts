// RIPE Atlas shapes shared by the edge and the agent: each measurement type's spec, its own fields of an Atlas
// definition, which is what a probe is given to run. The definitions users send (specs plus scheduling) are in
// definitions.ts and the results in results.ts. Reference: ../shared/reference/atlas.md §1–§2.
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

export const opt = z.optional;
export const def = z._default;
/** An integer in [min, max]. */
export const intIn = (min: number, max: number) => z.int().check(z.minimum(min), z.maximum(max));
/** A string of at most `max` characters. */
export const str = (max: number) => z.string().check(z.maxLength(max));

const family = z.union([z.literal(4), z.literal(6)], { error: "af must be 4 or 6." });
const target = z.string({ error: "This field is required." }).check(z.refine(isTarget, "Enter a host name or an IPv4/IPv6 address."));
const port = () => intIn(1, 65_535);

/**
 * What a probe needs to run a measurement: the type's own fields. (Definitions add the scheduling metadata.)
 * Strict on the probe too: an agent that meets a field it does not know (one a newer edge added, like `tls` once)
 * refuses the command with an error result naming it, instead of measuring something other than what was asked.
 */
export const PingSpec = z.strictObject({
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

export const DnsSpec = z.strictObject({
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
  /** DNS over TLS to port 853 (RFC 7858), which runs over TCP whatever `protocol` says. */
  tls: def(z.boolean(), false),
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

export const NtpSpec = z.strictObject({
  type: z.literal("ntp"),
  af: family,
  target,
  resolve_on_probe: def(z.boolean(), false),
  packets: def(intIn(1, 16), 3),
  timeout: def(intIn(1, 60_000), 4000),
});
export type NtpSpec = z.output<typeof NtpSpec>;

export const TracerouteSpec = z.strictObject({
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

export const HttpSpec = z.strictObject({
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

export const SslcertSpec = z.strictObject({
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

/** Measurement types this edge accepts; later types join these unions. */
export const MEASUREMENT_TYPES = ["ping", "traceroute", "dns", "ntp", "http", "sslcert"] as const;
export const MeasurementSpec = z.discriminatedUnion("type", [PingSpec, TracerouteSpec, DnsSpec, NtpSpec, HttpSpec, SslcertSpec]);
export type MeasurementSpec = z.output<typeof MeasurementSpec>;

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
