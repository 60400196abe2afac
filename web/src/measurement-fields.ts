// The new-measurement form's fields: Atlas's definition fields for each of the six types, with Atlas's defaults
// (docs/api.md), as data. The console does not bundle the edge's schemas (zod would triple its script); instead
// test/node/web-fields.test.ts checks every field and default here against protocol/atlas.ts, so they cannot drift.

export type Field = {
  name: string;
  label: string;
  kind: "text" | "number" | "boolean" | "select";
  /** Atlas's default: shown filled in (a select's or a checkbox's) or as the placeholder (numbers, text). */
  default?: string | number | boolean;
  options?: readonly string[];
  min?: number;
  max?: number;
  required?: boolean;
  help?: string;
};

export const TYPES = ["ping", "traceroute", "dns", "sslcert", "http", "ntp"] as const;
export type MeasurementType = (typeof TYPES)[number];

export const TYPE_LABELS: Record<MeasurementType, string> = {
  ping: "Ping", traceroute: "Traceroute", dns: "DNS", sslcert: "TLS certificate", http: "HTTP", ntp: "NTP",
};

export const DNS_QUERY_TYPES = [
  "A", "AAAA", "ANY", "CNAME", "DNSKEY", "DS", "HINFO", "MX", "NAPTR", "NS", "NSEC", "NSEC3", "NSEC3PARAM", "PTR", "RRSIG",
  "SOA", "SRV", "SSHFP", "TLSA", "TXT", "CAA", "SVCB", "HTTPS",
] as const;

/** Every type's first fields: what to measure, over which address family. */
const common = (targetHelp: string): Field[] => [
  { name: "target", label: "Target", kind: "text", required: true, help: targetHelp },
  { name: "af", label: "Address family", kind: "select", options: ["4", "6"], default: "4" },
  { name: "description", label: "Description", kind: "text", required: true },
  { name: "resolve_on_probe", label: "Resolve the target on each probe", kind: "boolean", default: false },
];

export const FIELDS: Record<MeasurementType, Field[]> = {
  ping: [
    ...common("A host name or an IPv4/IPv6 address."),
    { name: "packets", label: "Packets", kind: "number", default: 3, min: 1, max: 16 },
    { name: "size", label: "Packet size (bytes)", kind: "number", default: 48, min: 1, max: 2048 },
    { name: "packet_interval", label: "Time between packets (ms)", kind: "number", default: 1000, min: 2, max: 30_000 },
  ],
  traceroute: [
    ...common("A host name or an IPv4/IPv6 address."),
    { name: "protocol", label: "Protocol", kind: "select", options: ["ICMP", "UDP", "TCP"], default: "ICMP" },
    { name: "packets", label: "Packets per hop", kind: "number", default: 3, min: 1, max: 16 },
    { name: "size", label: "Packet size (bytes)", kind: "number", default: 48, min: 0, max: 2048 },
    { name: "paris", label: "Paris flow id (0: classic)", kind: "number", default: 16, min: 0, max: 64 },
    { name: "first_hop", label: "First hop", kind: "number", default: 1, min: 1, max: 255 },
    { name: "max_hops", label: "Maximum hops", kind: "number", default: 32, min: 1, max: 255 },
    { name: "port", label: "Destination port", kind: "number", min: 1, max: 65_535, help: "UDP 33434 and TCP 80 when left empty." },
    { name: "response_timeout", label: "Reply timeout (ms)", kind: "number", default: 4000, min: 1, max: 60_000 },
    { name: "dont_fragment", label: "Don't fragment", kind: "boolean", default: false },
  ],
  dns: [
    ...common("The server to ask; leave it empty to ask each probe's own resolver.").map((f) => f.name === "target" ? { ...f, required: false } : f),
    { name: "query_class", label: "Query class", kind: "select", options: ["IN", "CHAOS"], default: "IN" },
    { name: "query_type", label: "Query type", kind: "select", options: DNS_QUERY_TYPES, default: "A", required: true },
    { name: "query_argument", label: "Name to ask for", kind: "text", required: true },
    { name: "protocol", label: "Protocol", kind: "select", options: ["UDP", "TCP"], default: "UDP" },
    { name: "tls", label: "DNS over TLS (port 853)", kind: "boolean", default: false },
    { name: "use_probe_resolver", label: "Ask the probe's own resolver", kind: "boolean", default: false },
    { name: "set_rd_bit", label: "Recursion desired (RD)", kind: "boolean", default: false },
    { name: "set_do_bit", label: "DNSSEC OK (DO)", kind: "boolean", default: false },
    { name: "set_cd_bit", label: "Checking disabled (CD)", kind: "boolean", default: false },
    { name: "set_nsid_bit", label: "Ask for the server's NSID", kind: "boolean", default: false },
    { name: "udp_payload_size", label: "EDNS UDP payload size", kind: "number", min: 512, max: 4096, help: "No EDNS unless set (or DO or NSID)." },
    { name: "retry", label: "Retries", kind: "number", default: 0, min: 0, max: 10 },
    { name: "timeout", label: "Timeout (ms)", kind: "number", default: 5000, min: 100, max: 30_000 },
    { name: "include_qbuf", label: "Keep the query's bytes", kind: "boolean", default: false },
    { name: "include_abuf", label: "Keep the answer's bytes", kind: "boolean", default: true },
  ],
  sslcert: [
    ...common("A host name or an IPv4/IPv6 address."),
    { name: "port", label: "Port", kind: "number", default: 443, min: 1, max: 65_535 },
    { name: "hostname", label: "Server name (SNI)", kind: "text", help: "The target when it is a name." },
    { name: "timeout", label: "Timeout (ms)", kind: "number", default: 10_000, min: 1000, max: 60_000 },
  ],
  http: [
    ...common("A host name or an IPv4/IPv6 address."),
    { name: "method", label: "Method", kind: "select", options: ["GET", "HEAD", "POST"], default: "GET" },
    { name: "path", label: "Path", kind: "text", default: "/" },
    { name: "query_string", label: "Query string", kind: "text" },
    { name: "port", label: "Port", kind: "number", min: 1, max: 65_535, help: "80, or 443 with HTTPS, when left empty." },
    { name: "https", label: "HTTPS (Vantage)", kind: "boolean", default: false },
    { name: "header_bytes", label: "Header bytes to keep", kind: "number", default: 0, min: 0, max: 2048 },
    { name: "max_bytes_read", label: "Body bytes to read", kind: "number", min: 0, max: 1_048_576 },
    { name: "user_agent", label: "User agent", kind: "text" },
    { name: "extended_timing", label: "Extended timing", kind: "boolean", default: false },
    { name: "more_extended_timing", label: "More extended timing", kind: "boolean", default: false },
    { name: "timeout", label: "Timeout (ms)", kind: "number", default: 10_000, min: 1000, max: 60_000 },
  ],
  ntp: [
    ...common("A host name or an IPv4/IPv6 address of an NTP server."),
    { name: "packets", label: "Packets", kind: "number", default: 3, min: 1, max: 16 },
    { name: "timeout", label: "Timeout (ms)", kind: "number", default: 4000, min: 1, max: 60_000 },
  ],
};

/** Where the probes come from, as Atlas's probe sources. */
export const SOURCE_TYPES: [string, string, string][] = [
  ["area", "Area", "WW, West, North-Central, South-Central, North-East or South-East"],
  ["country", "Country", "two letters, e.g. NL"],
  ["asn", "ASN", "e.g. 3333"],
  ["prefix", "Prefix", "e.g. 193.0.0.0/21"],
  ["probes", "Probe ids", "e.g. 1000001,1000002"],
  ["msm", "An earlier measurement's probes", "a measurement id"],
];
export const AREAS = ["WW", "West", "North-Central", "South-Central", "North-East", "South-East"] as const;

/** A periodic measurement's interval when none is given (the brain's DEFAULT_INTERVAL). */
export const DEFAULT_INTERVAL = 240;
