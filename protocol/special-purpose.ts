// The special-purpose address ranges, as data: IANA's IPv4 and IPv6 Special-Purpose Address Registries
// (https://www.iana.org/assignments/iana-ipv4-special-registry, …/iana-ipv6-special-registry, RFC 6890), plus the
// multicast blocks and the space IANA has not allocated for global unicast, which those registries leave to others.
// `global` is the registry's "Globally Reachable" column: true only for the anycast services and AS112 blocks a
// measurement may legitimately aim at. Ranges that embed an IPv4 address (`embeds`) are judged by that address.
// Checked against the registries as published on 2026-09-01; a new entry is a new line here, nothing else.

export type SpecialRange = {
  cidr: string;
  name: string;
  /** Where it is defined. */
  source: string;
  /** Whether the registry says the range is globally reachable (a public destination). */
  global: boolean;
  /** The IPv4 address this range carries, judged instead of the range itself. */
  embeds?: "last32" | "6to4" | "teredo";
};

const V4 = "IANA IPv4 Special-Purpose Address Registry";
const V6 = "IANA IPv6 Special-Purpose Address Registry";

export const IPV4_SPECIAL: readonly SpecialRange[] = [
  { cidr: "0.0.0.0/8", name: "This network", source: `${V4}, RFC 791`, global: false },
  { cidr: "0.0.0.0/32", name: "This host on this network", source: `${V4}, RFC 1122`, global: false },
  { cidr: "10.0.0.0/8", name: "Private-Use", source: `${V4}, RFC 1918`, global: false },
  { cidr: "100.64.0.0/10", name: "Shared Address Space (CGNAT)", source: `${V4}, RFC 6598`, global: false },
  { cidr: "127.0.0.0/8", name: "Loopback", source: `${V4}, RFC 1122`, global: false },
  { cidr: "169.254.0.0/16", name: "Link Local (incl. cloud metadata 169.254.169.254)", source: `${V4}, RFC 3927`, global: false },
  { cidr: "172.16.0.0/12", name: "Private-Use", source: `${V4}, RFC 1918`, global: false },
  { cidr: "192.0.0.0/24", name: "IETF Protocol Assignments", source: `${V4}, RFC 6890`, global: false },
  { cidr: "192.0.0.0/29", name: "IPv4 Service Continuity Prefix", source: `${V4}, RFC 7335`, global: false },
  { cidr: "192.0.0.8/32", name: "IPv4 dummy address", source: `${V4}, RFC 7600`, global: false },
  { cidr: "192.0.0.9/32", name: "Port Control Protocol Anycast", source: `${V4}, RFC 7723`, global: true },
  { cidr: "192.0.0.10/32", name: "Traversal Using Relays around NAT Anycast", source: `${V4}, RFC 8155`, global: true },
  { cidr: "192.0.0.170/32", name: "NAT64/DNS64 Discovery", source: `${V4}, RFC 8880`, global: false },
  { cidr: "192.0.0.171/32", name: "NAT64/DNS64 Discovery", source: `${V4}, RFC 8880`, global: false },
  { cidr: "192.0.2.0/24", name: "Documentation (TEST-NET-1)", source: `${V4}, RFC 5737`, global: false },
  { cidr: "192.31.196.0/24", name: "AS112-v4", source: `${V4}, RFC 7535`, global: true },
  { cidr: "192.52.193.0/24", name: "AMT", source: `${V4}, RFC 7450`, global: true },
  { cidr: "192.88.99.0/24", name: "Deprecated (6to4 Relay Anycast)", source: `${V4}, RFC 7526`, global: false },
  { cidr: "192.168.0.0/16", name: "Private-Use", source: `${V4}, RFC 1918`, global: false },
  { cidr: "192.175.48.0/24", name: "Direct Delegation AS112 Service", source: `${V4}, RFC 7534`, global: true },
  { cidr: "198.18.0.0/15", name: "Benchmarking", source: `${V4}, RFC 2544`, global: false },
  { cidr: "198.51.100.0/24", name: "Documentation (TEST-NET-2)", source: `${V4}, RFC 5737`, global: false },
  { cidr: "203.0.113.0/24", name: "Documentation (TEST-NET-3)", source: `${V4}, RFC 5737`, global: false },
  { cidr: "224.0.0.0/4", name: "Multicast", source: "IANA IPv4 Multicast Address Space Registry, RFC 5771", global: false },
  { cidr: "240.0.0.0/4", name: "Reserved", source: `${V4}, RFC 1112`, global: false },
  { cidr: "255.255.255.255/32", name: "Limited Broadcast", source: `${V4}, RFC 8190`, global: false },
];

export const IPV6_SPECIAL: readonly SpecialRange[] = [
  { cidr: "::1/128", name: "Loopback Address", source: `${V6}, RFC 4291`, global: false },
  { cidr: "::/128", name: "Unspecified Address", source: `${V6}, RFC 4291`, global: false },
  { cidr: "::ffff:0:0/96", name: "IPv4-mapped Address", source: `${V6}, RFC 4291`, global: false, embeds: "last32" },
  // Deprecated, and not in the registry any more, but the kernel still reaches the IPv4 address it embeds.
  { cidr: "::/96", name: "IPv4-compatible Address (deprecated)", source: "RFC 4291 §2.5.5.1", global: false, embeds: "last32" },
  { cidr: "64:ff9b::/96", name: "IPv4-IPv6 Translation (NAT64 well-known prefix)", source: `${V6}, RFC 6052`, global: true, embeds: "last32" },
  { cidr: "64:ff9b:1::/48", name: "IPv4-IPv6 Translation (local-use NAT64)", source: `${V6}, RFC 8215`, global: false },
  { cidr: "100::/64", name: "Discard-Only Address Block", source: `${V6}, RFC 6666`, global: false },
  { cidr: "100:0:0:1::/64", name: "Dummy IPv6 Prefix", source: `${V6}, RFC 9780`, global: false },
  { cidr: "2001::/23", name: "IETF Protocol Assignments", source: `${V6}, RFC 2928`, global: false },
  { cidr: "2001::/32", name: "TEREDO", source: `${V6}, RFC 4380`, global: true, embeds: "teredo" },
  { cidr: "2001:1::1/128", name: "Port Control Protocol Anycast", source: `${V6}, RFC 7723`, global: true },
  { cidr: "2001:1::2/128", name: "Traversal Using Relays around NAT Anycast", source: `${V6}, RFC 8155`, global: true },
  { cidr: "2001:1::3/128", name: "DNS-SD Service Registration Protocol Anycast", source: `${V6}, RFC 9665`, global: true },
  { cidr: "2001:2::/48", name: "Benchmarking", source: `${V6}, RFC 5180`, global: false },
  { cidr: "2001:3::/32", name: "AMT", source: `${V6}, RFC 7450`, global: true },
  { cidr: "2001:4:112::/48", name: "AS112-v6", source: `${V6}, RFC 7535`, global: true },
  { cidr: "2001:10::/28", name: "Deprecated (previously ORCHID)", source: `${V6}, RFC 4843`, global: false },
  { cidr: "2001:20::/28", name: "ORCHIDv2", source: `${V6}, RFC 7343`, global: true },
  { cidr: "2001:30::/28", name: "Drone Remote ID Protocol Entity Tags (DETs) Prefix", source: `${V6}, RFC 9374`, global: true },
  { cidr: "2001:db8::/32", name: "Documentation", source: `${V6}, RFC 3849`, global: false },
  { cidr: "2002::/16", name: "6to4", source: `${V6}, RFC 3056`, global: true, embeds: "6to4" },
  { cidr: "2620:4f:8000::/48", name: "Direct Delegation AS112 Service", source: `${V6}, RFC 7534`, global: true },
  { cidr: "3fff::/20", name: "Documentation", source: `${V6}, RFC 9637`, global: false },
  { cidr: "5f00::/16", name: "Segment Routing (SRv6) SIDs", source: `${V6}, RFC 9602`, global: false },
  { cidr: "fc00::/7", name: "Unique-Local (incl. cloud metadata fd00:ec2::254)", source: `${V6}, RFC 4193`, global: false },
  { cidr: "fe80::/10", name: "Link-Local Unicast", source: `${V6}, RFC 4291`, global: false },
  { cidr: "fec0::/10", name: "Site-Local (deprecated)", source: "IANA IPv6 Address Space Registry, RFC 3879", global: false },
  { cidr: "ff00::/8", name: "Multicast", source: "IANA IPv6 Multicast Address Space Registry, RFC 4291", global: false },
];

/** Global unicast: IANA has allocated nothing outside it for public use (IANA IPv6 Address Space Registry). */
export const IPV6_GLOBAL_UNICAST = "2000::/3";
