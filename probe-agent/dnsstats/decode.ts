// From a captured frame to the DNS message in it: link layer (Ethernet with VLAN tags, Linux cooked v1/v2, raw IP,
// BSD loopback), IPv4/IPv6 (extension headers skipped), UDP or TCP on port 53. Then the DNS header, the first
// question and the query's OPT record, read in place.
//
// Written by hand rather than with a DNS library (dns-packet): the collector's goal is 200,000 queries a second on
// one core, 5 µs for a query and its response together, and dns-packet's decode alone took 0.96 µs per message
// here (a 45-byte query and its 66-byte answer, warmed up), 40 % of that budget, in objects for the collector to
// collect; statistics need the header, one name and one OPT record.

/** One DNS message found in a packet; the object is reused for every packet (copy what outlives the call). */
export class DnsPacket {
  tsUs = 0;
  v6 = false;
  /** IPv4 addresses as unsigned 32-bit numbers; IPv6 ones as 32 hex digits. */
  src: number | string = 0;
  dst: number | string = 0;
  srcPort = 0;
  dstPort = 0;
  /** Stream (TCP, TLS, HTTPS) rather than datagram: queries and responses are matched per transport kind. */
  tcp = false;
  /** How the message travelled, as the statistics name it: udp, tcp, and from dnstap also tls, https, quic. */
  transport = "udp";
  /** The whole packet and where the DNS message is in it. */
  buf: Uint8Array = new Uint8Array(0);
  off = 0;
  len = 0;
  hopLimit = 0;
}

export type DecodeCounters = { packets: number; not_dns: number; fragments: number; tcp_partial: number; malformed: number };

const ETH_IPV4 = 0x0800, ETH_IPV6 = 0x86dd, ETH_VLAN = 0x8100, ETH_QINQ = 0x88a8;

/**
 * Finds the DNS messages in one frame and calls `each` for every one (a TCP segment may hold several). Anything
 * that is not DNS over UDP/TCP port 53 is counted, not thrown.
 */
export function decodeFrame(tsUs: number, linkType: number, d: Uint8Array, start: number, length: number, p: DnsPacket, c: DecodeCounters, each: (p: DnsPacket) => void): void {
  c.packets++;
  const frameEnd = start + length;
  let off: number;
  let ethType: number;
  switch (linkType) {
    case 1: { // Ethernet
      if (length < 14) { c.malformed++; return; }
      ethType = (d[start + 12]! << 8) | d[start + 13]!;
      off = start + 14;
      while ((ethType === ETH_VLAN || ethType === ETH_QINQ) && off + 4 <= frameEnd) {
        ethType = (d[off + 2]! << 8) | d[off + 3]!;
        off += 4;
      }
      break;
    }
    case 113: // Linux cooked capture v1
      if (length < 16) { c.malformed++; return; }
      ethType = (d[start + 14]! << 8) | d[start + 15]!;
      off = start + 16;
      break;
    case 276: // Linux cooked capture v2
      if (length < 20) { c.malformed++; return; }
      ethType = (d[start]! << 8) | d[start + 1]!;
      off = start + 20;
      break;
    case 0: case 108: { // BSD loopback: the address family in host (0) or network (108) order
      if (length < 4) { c.malformed++; return; }
      const fam = linkType === 108 ? d[start + 3]! : d[start]! || d[start + 3]!;
      ethType = fam === 2 ? ETH_IPV4 : fam === 24 || fam === 28 || fam === 30 ? ETH_IPV6 : 0;
      off = start + 4;
      break;
    }
    case 101: case 12: case 14: case 228: case 229: // raw IP
      off = start;
      ethType = length > 0 && d[start]! >> 4 === 6 ? ETH_IPV6 : ETH_IPV4;
      break;
    default:
      c.not_dns++;
      return;
  }
  p.tsUs = tsUs;
  p.buf = d;
  let proto: number;
  let end: number;
  if (ethType === ETH_IPV4) {
    if (off + 20 > frameEnd || d[off]! >> 4 !== 4) { c.malformed++; return; }
    const ihl = (d[off]! & 15) * 4;
    const total = (d[off + 2]! << 8) | d[off + 3]!;
    if (ihl < 20 || total < ihl) { c.malformed++; return; }
    const frag = ((d[off + 6]! << 8) | d[off + 7]!) & 0x3fff;
    proto = d[off + 9]!;
    if (frag !== 0) { c.fragments++; return; }
    p.v6 = false;
    p.hopLimit = d[off + 8]!;
    p.src = ((d[off + 12]! << 24) | (d[off + 13]! << 16) | (d[off + 14]! << 8) | d[off + 15]!) >>> 0;
    p.dst = ((d[off + 16]! << 24) | (d[off + 17]! << 16) | (d[off + 18]! << 8) | d[off + 19]!) >>> 0;
    end = Math.min(frameEnd, off + total);
    off += ihl;
  } else if (ethType === ETH_IPV6) {
    if (off + 40 > frameEnd || d[off]! >> 4 !== 6) { c.malformed++; return; }
    const payloadLen = (d[off + 4]! << 8) | d[off + 5]!;
    proto = d[off + 6]!;
    p.v6 = true;
    p.hopLimit = d[off + 7]!;
    p.src = hex(d, off + 8);
    p.dst = hex(d, off + 24);
    end = Math.min(frameEnd, off + 40 + payloadLen);
    off += 40;
    // Hop-by-hop, routing and destination options; a fragment header means a fragment.
    while (proto === 0 || proto === 43 || proto === 60 || proto === 44) {
      if (proto === 44) { c.fragments++; return; }
      if (off + 8 > end) { c.malformed++; return; }
      proto = d[off]!;
      off += (d[off + 1]! + 1) * 8;
    }
  } else {
    c.not_dns++;
    return;
  }
  if (proto === 17) {
    if (off + 8 > end) { c.malformed++; return; }
    p.srcPort = (d[off]! << 8) | d[off + 1]!;
    p.dstPort = (d[off + 2]! << 8) | d[off + 3]!;
    if (p.srcPort !== 53 && p.dstPort !== 53) { c.not_dns++; return; }
    p.tcp = false;
    p.transport = "udp";
    p.off = off + 8;
    p.len = end - p.off;
    each(p);
  } else if (proto === 6) {
    if (off + 20 > end) { c.malformed++; return; }
    p.srcPort = (d[off]! << 8) | d[off + 1]!;
    p.dstPort = (d[off + 2]! << 8) | d[off + 3]!;
    if (p.srcPort !== 53 && p.dstPort !== 53) { c.not_dns++; return; }
    let at = off + (d[off + 12]! >> 4) * 4;
    if (at >= end) return; // a handshake or a bare ack
    // Messages that a segment holds whole (each with its 2-byte length); without stream reassembly, a message
    // split across segments is counted as tcp_partial (DSC and dnscap do the same without their reassembly option).
    p.tcp = true;
    p.transport = "tcp";
    while (at + 2 <= end) {
      const mlen = (d[at]! << 8) | d[at + 1]!;
      if (at + 2 + mlen > end || mlen < 12) { c.tcp_partial++; return; }
      p.off = at + 2;
      p.len = mlen;
      each(p);
      at += 2 + mlen;
    }
    if (at !== end) c.tcp_partial++;
  } else {
    c.not_dns++;
  }
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
function hex(d: Uint8Array, off: number): string {
  let s = "";
  for (let i = off; i < off + 16; i++) s += HEX[d[i]!];
  return s;
}

/** What the statistics need of a DNS message; reused for every message. */
export class DnsHeader {
  id = 0;
  qr = false;
  opcode = 0;
  /** The header's 4-bit RCODE (extended RCODEs need the response's OPT, which is not read). */
  rcode = 0;
  flags = 0;
  qdcount = 0;
  ancount = 0;
  nscount = 0;
  arcount = 0;
  /**
   * The first question's name: a 52-bit hash of it in lower case (a key that costs no string), the hash of its
   * last label, its length as text without the final dot (0 for the root), and where it is, for qnameText().
   * qtype is -1 when there is no question.
   */
  qnameHash = 0;
  tldHash = 0;
  qnameLength = 0;
  qtype = -1;
  qclass = 0;
  private buf: Uint8Array = EMPTY;
  private msgOff = 0;
  private nameOff = -1;
  /** EDNS version of the query's OPT record, -1 without one; its DO bit and UDP payload size. */
  ednsVersion = -1;
  do = false;
  udpSize = 0;

  /** The name as text, lower case, without the final dot ("" for the root; other bytes as \DDD). Valid during the call only. */
  qnameText(): string {
    if (this.nameOff < 0) return "";
    return nameText(this.buf, this.msgOff, this.nameOff);
  }
  /** The last label of the name as text ("." for the root). */
  tldText(): string {
    const n = this.qnameText();
    return n === "" ? "." : n.slice(n.lastIndexOf(".") + 1);
  }
  bind(buf: Uint8Array, msgOff: number, nameOff: number): void {
    this.buf = buf;
    this.msgOff = msgOff;
    this.nameOff = nameOff;
  }
}
const EMPTY = new Uint8Array(0);

function nameText(d: Uint8Array, msgOff: number, p: number): string {
  let name = "";
  for (let guard = 0; guard < 128; guard++) {
    const l = d[p]!;
    if (l === 0) break;
    if ((l & 0xc0) === 0xc0) { p = msgOff + (((l & 0x3f) << 8) | d[p + 1]!); continue; }
    if (name.length > 0) name += ".";
    for (let i = p + 1; i <= p + l; i++) {
      let ch = d[i]!;
      if (ch >= 65 && ch <= 90) ch += 32;
      name += ch > 32 && ch < 127 && ch !== 46 && ch !== 92 ? String.fromCharCode(ch) : "\\" + String(ch).padStart(3, "0");
    }
    p += 1 + l;
  }
  return name;
}

/** Reads the header, the first question and (in queries) the OPT record. Returns false for a message too short or malformed to count. */
export function readDns(d: Uint8Array, off: number, len: number, h: DnsHeader): boolean {
  if (len < 12) return false;
  const end = off + len;
  h.id = (d[off]! << 8) | d[off + 1]!;
  const f = (d[off + 2]! << 8) | d[off + 3]!;
  h.flags = f;
  h.qr = (f & 0x8000) !== 0;
  h.opcode = (f >> 11) & 15;
  h.rcode = f & 15;
  h.qdcount = (d[off + 4]! << 8) | d[off + 5]!;
  h.ancount = (d[off + 6]! << 8) | d[off + 7]!;
  h.nscount = (d[off + 8]! << 8) | d[off + 9]!;
  h.arcount = (d[off + 10]! << 8) | d[off + 11]!;
  h.qtype = -1;
  h.qclass = 0;
  h.qnameHash = 0;
  h.tldHash = 0;
  h.qnameLength = 0;
  h.bind(d, off, -1);
  h.ednsVersion = -1;
  h.do = false;
  h.udpSize = 0;
  let at = off + 12;
  if (h.qdcount > 0) {
    // Two FNV-1a lanes over the lower-cased name, labels separated by their lengths; a pointer (rare in a
    // question) is followed, backwards only.
    let h1 = 0x811c9dc5, h2 = 0x050c5d1f, t1 = 0x811c9dc5, t2 = 0x050c5d1f;
    let p = at;
    let jumped = false;
    let length = 0;
    for (let guard = 0; ; guard++) {
      if (p >= end || guard > 128) return false;
      const l = d[p]!;
      if (l === 0) { p++; break; }
      if ((l & 0xc0) === 0xc0) {
        if (p + 1 >= end) return false;
        const target = off + (((l & 0x3f) << 8) | d[p + 1]!);
        if (target >= p) return false;
        if (!jumped) at = p + 2;
        jumped = true;
        p = target;
        continue;
      }
      if (l > 63 || p + 1 + l > end) return false;
      if (length > 0) length++;
      h1 = Math.imul(h1 ^ l, 0x01000193);
      h2 = Math.imul(h2 ^ l, 0x01000193);
      t1 = Math.imul(0x811c9dc5 ^ l, 0x01000193);
      t2 = Math.imul(0x050c5d1f ^ l, 0x01000193);
      for (let i = p + 1; i <= p + l; i++) {
        let ch = d[i]!;
        if (ch >= 65 && ch <= 90) ch += 32;
        // Bytes shown as \DDD take four characters of text.
        length += ch > 32 && ch < 127 && ch !== 46 && ch !== 92 ? 1 : 4;
        h1 = Math.imul(h1 ^ ch, 0x01000193);
        h2 = Math.imul(h2 ^ ch, 0x01000197);
        t1 = Math.imul(t1 ^ ch, 0x01000193);
        t2 = Math.imul(t2 ^ ch, 0x01000197);
      }
      p += 1 + l;
    }
    if (!jumped) at = p;
    if (at + 4 > end) return false;
    h.bind(d, off, off + 12);
    h.qnameHash = (h1 & 0xfffff) * 4294967296 + (h2 >>> 0);
    h.tldHash = (t1 & 0xfffff) * 4294967296 + (t2 >>> 0);
    h.qnameLength = length;
    h.qtype = (d[at]! << 8) | d[at + 1]!;
    h.qclass = (d[at + 2]! << 8) | d[at + 3]!;
    at += 4;
  }
  if (!h.qr && h.arcount > 0 && h.qdcount <= 1) {
    // A query's OPT: skip any answer/authority records (queries rarely have them), then look through the additional section.
    let records = h.ancount + h.nscount + h.arcount;
    let index = 0;
    while (records-- > 0) {
      at = skipName(d, at, end);
      if (at < 0 || at + 10 > end) return true;
      const type = (d[at]! << 8) | d[at + 1]!;
      const rdlen = (d[at + 8]! << 8) | d[at + 9]!;
      if (type === 41 && index >= h.ancount + h.nscount) {
        h.udpSize = (d[at + 2]! << 8) | d[at + 3]!;
        h.ednsVersion = d[at + 5]!;
        h.do = (d[at + 6]! & 0x80) !== 0;
        return true;
      }
      at += 10 + rdlen;
      index++;
    }
  }
  return true;
}

function skipName(d: Uint8Array, at: number, end: number): number {
  for (let guard = 0; at < end && guard < 128; guard++) {
    const l = d[at]!;
    if (l === 0) return at + 1;
    if ((l & 0xc0) === 0xc0) return at + 2;
    at += 1 + l;
  }
  return -1;
}
