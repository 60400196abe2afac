// Where a probe may be aimed: one policy, used by the edge when a measurement is created and by the agent before
// every packet it sends (after resolving a name on the probe, on the address it then connects to).
//
// It judges an address by its bits, never by its spelling: every form the C library's inet_aton accepts (`127.1`,
// `2130706433`, `0x7f.1`, `0177.0.0.1`) and every IPv6 spelling (compressed or not, mixed case, zone ids, IPv4
// embedded in dotted or hex form) is parsed by ipaddr.js into bits and matched against IANA's special-purpose
// registries (special-purpose.ts). An IPv6 address that carries an IPv4 address the kernel or a translator would
// reach (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo's server and client) is judged by that IPv4 address too.
import ipaddr from "ipaddr.js";
import { IPV4_SPECIAL, IPV6_GLOBAL_UNICAST, IPV6_SPECIAL, type SpecialRange } from "./special-purpose.ts";

export type AddressVerdict = {
  /** The address as the kernel reads it: dotted quad, or IPv6 as written (zone kept). */
  address: string;
  family: 4 | 6;
  /** Whether a public measurement may aim at it. */
  public: boolean;
  /** The most specific special-purpose range it lies in, if any. */
  range: SpecialRange | null;
  /** Why it is refused, naming the range and its source (empty when public). */
  reason: string;
};

type Parsed = ipaddr.IPv4 | ipaddr.IPv6;
type Table = { range: SpecialRange; net: [Parsed, number] }[];

let tables: { v4: Table; v6: Table; unicast: [ipaddr.IPv6, number] } | null = null;
/** Parsed on first use: the agent pays nothing for the table until it first checks an address. */
function table() {
  tables ??= {
    v4: IPV4_SPECIAL.map((range) => ({ range, net: ipaddr.parseCIDR(range.cidr) })),
    v6: IPV6_SPECIAL.map((range) => ({ range, net: ipaddr.parseCIDR(range.cidr) })),
    unicast: ipaddr.IPv6.parseCIDR(IPV6_GLOBAL_UNICAST),
  };
  return tables;
}

/** The address `s` denotes in any spelling the C library or an IPv6 parser accepts, or null if it is not one. */
export function parseAddress(s: string): { ip: Parsed; address: string; family: 4 | 6 } | null {
  if (typeof s !== "string" || s.length === 0 || s.length > 100 || /\s/.test(s)) return null;
  let ip: Parsed;
  try {
    // ipaddr.js reads `::a.b.c.d` as IPv4-mapped (::ffff:a.b.c.d); the kernel reads it as IPv4-compatible. An
    // embedded dotted quad is turned into its two hex groups first, so the bits are the kernel's.
    const dotted = s.includes(":") ? /(?<=:)(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?=$|%)/.exec(s) : null;
    const o = dotted?.slice(1).map(Number);
    const spelled = o && o.every((x) => x <= 255)
      ? s.slice(0, dotted!.index) + `${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}` + s.slice(dotted!.index + dotted![0].length)
      : s;
    ip = ipaddr.parse(spelled);
  } catch {
    return null;
  }
  if (ip.kind() === "ipv4") return { ip, address: ip.toString(), family: 4 };
  // An IPv6 literal goes to the kernel as written.
  return { ip, address: s.toLowerCase(), family: 6 };
}

function longest(t: Table, ip: Parsed): SpecialRange | null {
  let best: { range: SpecialRange; len: number } | null = null;
  for (const { range, net } of t) {
    if (net[0].kind() === ip.kind() && ip.match(net as [ipaddr.IPv4, number]) && (!best || net[1] > best.len)) best = { range, len: net[1] };
  }
  return best?.range ?? null;
}

const v4 = (hi: number, lo: number) => new ipaddr.IPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);
const describe = (r: SpecialRange) => `${r.name} (${r.cidr}, ${r.source})`;

function judge(ip: Parsed, address: string): AddressVerdict {
  const family = ip.kind() === "ipv4" ? 4 : 6;
  const t = table();
  if (ip instanceof ipaddr.IPv4) {
    const range = longest(t.v4, ip);
    const ok = !range || range.global;
    return { address, family, public: ok, range, reason: ok ? "" : `${address} is ${describe(range!)}` };
  }
  const v6 = ip as ipaddr.IPv6;
  const range = longest(t.v6, v6);
  if (range?.embeds) {
    const p = v6.parts;
    const inner = range.embeds === "last32" ? [v4(p[6]!, p[7]!)]
      : range.embeds === "6to4" ? [v4(p[1]!, p[2]!)]
      : [v4(p[2]!, p[3]!), v4(~p[6]! & 0xffff, ~p[7]! & 0xffff)]; // Teredo: the server, and the client (bits inverted)
    for (const a of inner) {
      const j = judge(a, a.toString());
      if (!j.public) return { address, family, public: false, range, reason: `${address} is ${range.name} (${range.cidr}) carrying ${j.reason}` };
    }
    return { address, family, public: range.global, range, reason: range.global ? "" : `${address} is ${describe(range)}` };
  }
  if (range) return { address, family, public: range.global, range, reason: range.global ? "" : `${address} is ${describe(range)}` };
  if (!v6.match(t.unicast)) return { address, family, public: false, range: null, reason: `${address} is outside global unicast space (${IPV6_GLOBAL_UNICAST}, IANA IPv6 Address Space Registry)` };
  return { address, family, public: true, range: null, reason: "" };
}

/** What an address reaches and whether a public measurement may aim at it; null if `s` is not an address. */
export function judgeAddress(s: string): AddressVerdict | null {
  const p = parseAddress(s);
  return p ? judge(p.ip, p.address) : null;
}

/** Names that only mean something inside the probe's own network (RFC 6761, RFC 6762, RFC 8375, ICANN's .internal). */
const LOCAL_NAME = /^(localhost|(.*\.)?(localhost|local|internal|home\.arpa|localdomain|invalid))\.?$/i;

/**
 * Why a measurement may not aim at `target` (an address in any spelling, or a name), or null if it may. Names are
 * judged again on the probe, on the address they resolve to there.
 */
export function targetRefusal(target: string): string | null {
  const verdict = judgeAddress(target);
  if (verdict) return verdict.public ? null : `${target === verdict.address ? "" : `${target} reaches ${verdict.address}: `}${verdict.reason}`;
  if (LOCAL_NAME.test(target)) return `${target} is a name local to the probe's own network`;
  return null;
}

/** Whether `addr` (any spelling; an IPv4-mapped address counts as its IPv4 address) lies inside `cidr`. */
export function inCidr(addr: string, cidr: string): boolean {
  const a = parseAddress(addr);
  if (!a) return false;
  try {
    const net = ipaddr.parseCIDR(cidr);
    const ip = a.ip instanceof ipaddr.IPv6 && a.ip.isIPv4MappedAddress() && net[0].kind() === "ipv4" ? a.ip.toIPv4Address() : a.ip;
    return ip.kind() === net[0].kind() && ip.match(net as [ipaddr.IPv4, number]);
  } catch {
    return false;
  }
}
