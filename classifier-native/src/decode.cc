#include "packet.h"

#include <cstring>
#include <netinet/in.h>
#include <pcap/dlt.h>

namespace classifier {
namespace {

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

DecodeResult Network(uint16_t ethertype, const uint8_t* p, uint32_t avail, PacketInfo& out);
DecodeResult Ethernet(const uint8_t* f, uint32_t caplen, PacketInfo& out);

constexpr int kMaxTunnelDepth = 3;

/**
 * An IEEE 802.11 data frame (as CAPWAP carries it): its MAC header, then LLC/SNAP naming the ethertype.
 * Management and control frames carry no IP.
 */
DecodeResult Ieee80211(const uint8_t* f, uint32_t len, PacketInfo& out) {
  if (len < 24) return DecodeResult::Truncated;
  // Some access points (Cisco's, notably) send the frame control field byte-swapped; take whichever order says data.
  const bool swapped = ((f[0] >> 2) & 3) != 2 && ((f[1] >> 2) & 3) == 2;
  const uint8_t fc0 = swapped ? f[1] : f[0], fc1 = swapped ? f[0] : f[1];
  if (((fc0 >> 2) & 3) != 2) return DecodeResult::NotIp;  // not a data frame
  uint32_t at = 24;
  if ((fc1 & 3) == 3) at += 6;       // ToDS and FromDS: a fourth address
  if (fc0 & 0x80) at += 2;           // QoS data: QoS control
  if (fc1 & 0x80) at += 4;           // +HTC (order bit on QoS frames)
  if (len < at + 8) return DecodeResult::Truncated;
  if (f[at] != 0xaa || f[at + 1] != 0xaa || f[at + 2] != 0x03) return DecodeResult::NotIp;  // LLC/SNAP
  return Network(be16(f + at + 6), f + at + 8, len - at - 8, out);
}

/** UDP payloads that are tunnels: the inner packet is what gets classified (outer VLAN kept). */
bool Tunnel(uint16_t sport, uint16_t dport, const uint8_t* p, uint32_t len, PacketInfo& out, DecodeResult& result) {
  if (out.tunnel_depth >= kMaxTunnelDepth) return false;
  const uint16_t vlan = out.vlan;
  const double ts = out.ts;
  const int depth = out.tunnel_depth + 1;
  auto inner = [&](auto&& decode) {
    PacketInfo in;
    in.ts = ts;
    in.vlan = vlan;
    in.tunnel_depth = depth;
    result = decode(in);
    if (result == DecodeResult::Ok) out = in;
    return result == DecodeResult::Ok;
  };
  if (dport == 4789 || sport == 4789) {  // VXLAN: 8-byte header (I flag), then Ethernet
    if (len < 8 + 14 || !(p[0] & 0x08)) return false;
    return inner([&](PacketInfo& in) { return Ethernet(p + 8, len - 8, in); });
  }
  if (dport == 2152 || sport == 2152) {  // GTP-U version 1, T-PDU
    if (len < 8 || (p[0] >> 5) != 1 || p[1] != 0xff) return false;
    uint32_t at = 8;
    if (p[0] & 0x07) {  // sequence number, N-PDU number or extension headers present
      if (len < 12) return false;
      uint8_t next = p[11];
      at = 12;
      for (int n = 0; next && n < 8; n++) {  // extension headers: length in 4-byte units, next type in the last byte
        if (len < at + 1 || p[at] == 0) return false;
        const uint32_t ext = p[at] * 4u;
        if (len < at + ext) return false;
        next = p[at + ext - 1];
        at += ext;
      }
    }
    if (len <= at) return false;
    return inner([&](PacketInfo& in) {
      const int v = p[at] >> 4;
      return v == 4 || v == 6 ? Network(v == 4 ? 0x0800 : 0x86dd, p + at, len - at, in) : DecodeResult::NotIp;
    });
  }
  if (dport == 5247 || sport == 5247) {  // CAPWAP data channel
    if (len < 8 || (p[0] >> 4) != 0) return false;
    const uint32_t hlen = ((p[1] >> 3) & 0x1f) * 4u;
    const bool native = p[2] & 0x01;  // T: native frame format of the wireless binding
    const uint8_t wbid = (p[2] >> 1) & 0x1f;  // wireless binding: 1 = IEEE 802.11
    if (hlen < 8 || len <= hlen) return false;
    return inner([&](PacketInfo& in) {
      if (native && wbid == 1) return Ieee80211(p + hlen, len - hlen, in);
      return native ? DecodeResult::NotIp : Ethernet(p + hlen, len - hlen, in);
    });
  }
  return false;
}

DecodeResult Transport(const uint8_t* p, uint32_t avail, uint32_t declared, PacketInfo& out) {
  // `declared`: transport bytes the IP header says there are; `avail`: bytes actually captured.
  const uint32_t len = avail < declared ? avail : declared;
  switch (out.proto) {
    case IPPROTO_TCP: {
      if (len < 20) return DecodeResult::Truncated;
      const uint32_t off = (p[12] >> 4) * 4u;
      if (off < 20) return DecodeResult::Malformed;
      if (len < off) return DecodeResult::Truncated;
      out.sport = be16(p);
      out.dport = be16(p + 2);
      out.tcp_flags = p[13];
      out.payload = p + off;
      out.payload_len = len - off;
      return DecodeResult::Ok;
    }
    case IPPROTO_UDP:
    case IPPROTO_SCTP: {
      const uint32_t hdr = out.proto == IPPROTO_UDP ? 8 : 12;
      if (len < hdr) return DecodeResult::Truncated;
      out.sport = be16(p);
      out.dport = be16(p + 2);
      out.payload = p + hdr;
      out.payload_len = len - hdr;
      DecodeResult inner;
      if (out.proto == IPPROTO_UDP && Tunnel(out.sport, out.dport, out.payload, out.payload_len, out, inner)) return inner;
      return DecodeResult::Ok;
    }
    case 47: {  // GRE: the inner IP packet (or Ethernet frame) is what gets classified
      if (len < 4 || out.tunnel_depth >= kMaxTunnelDepth || (p[1] & 0x07) > 1) break;  // versions 0 and 1 (PPTP) only
      uint32_t at = 4 + ((p[0] & 0x80) ? 4 : 0) + ((p[0] & 0x20) ? 4 : 0) + ((p[0] & 0x10) ? 4 : 0) + ((p[1] & 0x80) ? 4 : 0);
      const uint16_t type = be16(p + 2);
      if (len <= at || (type != 0x0800 && type != 0x86dd && type != 0x6558)) break;
      PacketInfo in;
      in.ts = out.ts;
      in.vlan = out.vlan;
      in.tunnel_depth = out.tunnel_depth + 1;
      const DecodeResult r = type == 0x6558 ? Ethernet(p + at, len - at, in) : Network(type, p + at, len - at, in);
      if (r == DecodeResult::Ok) {
        out = in;
        return r;
      }
      break;
    }
    default:
      break;
  }
  // ICMP, ICMPv6, IGMP, an undecodable GRE…: no ports; the whole rest is "payload" for the plug-ins.
  out.payload = p;
  out.payload_len = len;
  return DecodeResult::Ok;
}

DecodeResult Ipv4(const uint8_t* p, uint32_t avail, PacketInfo& out) {
  if (avail < 20) return DecodeResult::Truncated;
  out.l3 = p;
  out.l3_len = avail;
  if ((p[0] >> 4) != 4) return DecodeResult::Malformed;
  const uint32_t ihl = (p[0] & 0x0f) * 4u;
  const uint32_t total = be16(p + 2);
  if (ihl < 20 || total < ihl) return DecodeResult::Malformed;
  if (avail < ihl) return DecodeResult::Truncated;
  out.src.version = out.dst.version = 4;
  std::memcpy(out.src.bytes, p + 12, 4);
  std::memcpy(out.dst.bytes, p + 16, 4);
  out.proto = p[9];
  out.ip_bytes = total;
  const uint16_t frag = be16(p + 6);
  if (frag & 0x1fff) {  // not the first fragment
    out.fragment = true;
    return DecodeResult::Ok;
  }
  return Transport(p + ihl, avail - ihl, total - ihl, out);
}

DecodeResult Ipv6(const uint8_t* p, uint32_t avail, PacketInfo& out) {
  if (avail < 40) return DecodeResult::Truncated;
  out.l3 = p;
  out.l3_len = avail;
  if ((p[0] >> 4) != 6) return DecodeResult::Malformed;
  out.src.version = out.dst.version = 6;
  std::memcpy(out.src.bytes, p + 8, 16);
  std::memcpy(out.dst.bytes, p + 24, 16);
  uint32_t declared = be16(p + 4);
  out.ip_bytes = 40 + declared;
  uint8_t next = p[6];
  uint32_t at = 40;
  // Extension headers, at most 8 of them (a loop of bogus headers must not hang us).
  for (int hops = 0; hops < 8; hops++) {
    if (next == 0 || next == 43 || next == 60 || next == 51 || next == 44) {
      if (avail < at + 8) return DecodeResult::Truncated;
      uint32_t len = next == 44 ? 8 : next == 51 ? (p[at + 1] + 2u) * 4u : (p[at + 1] + 1u) * 8u;
      if (next == 44 && (be16(p + at + 2) & 0xfff8)) {  // not the first fragment
        out.proto = p[at];
        out.fragment = true;
        return DecodeResult::Ok;
      }
      if (declared < len) return DecodeResult::Malformed;
      next = p[at];
      at += len;
      declared -= len;
      continue;
    }
    out.proto = next;
    if (avail < at) return DecodeResult::Truncated;
    return Transport(p + at, avail - at, declared, out);
  }
  return DecodeResult::Malformed;
}

DecodeResult Network(uint16_t ethertype, const uint8_t* p, uint32_t avail, PacketInfo& out) {
  if (ethertype == 0x0800) return Ipv4(p, avail, out);
  if (ethertype == 0x86dd) return Ipv6(p, avail, out);
  return DecodeResult::NotIp;
}

DecodeResult Ethernet(const uint8_t* f, uint32_t caplen, PacketInfo& out) {
  if (caplen < 14) return DecodeResult::Truncated;
  uint32_t at = 12;
  uint16_t type = be16(f + at);
  // VLAN and QinQ tags (at most two levels are common; accept up to four).
  for (int tags = 0; (type == 0x8100 || type == 0x88a8 || type == 0x9100) && tags < 4; tags++) {
    if (caplen < at + 6) return DecodeResult::Truncated;
    if (out.vlan == 0) out.vlan = be16(f + at + 2) & 0x0fff;
    at += 4;
    type = be16(f + at);
  }
  return Network(type, f + at + 2, caplen - at - 2, out);
}

DecodeResult ByVersion(const uint8_t* p, uint32_t avail, PacketInfo& out) {
  if (avail < 1) return DecodeResult::Truncated;
  const int v = p[0] >> 4;
  return v == 4 ? Ipv4(p, avail, out) : v == 6 ? Ipv6(p, avail, out) : DecodeResult::NotIp;
}

}  // namespace

DecodeResult Decode(int linktype, const uint8_t* f, uint32_t caplen, double ts, PacketInfo& out) {
  out = PacketInfo{};
  out.ts = ts;
  switch (linktype) {
    case DLT_EN10MB:
      return Ethernet(f, caplen, out);
    case DLT_LINUX_SLL:
      if (caplen < 16) return DecodeResult::Truncated;
      return Network(be16(f + 14), f + 16, caplen - 16, out);
    case DLT_LINUX_SLL2:
      if (caplen < 20) return DecodeResult::Truncated;
      return Network(be16(f), f + 20, caplen - 20, out);
    case DLT_NULL:
    case DLT_LOOP: {
      if (caplen < 4) return DecodeResult::Truncated;
      // The family is in host order (NULL) or network order (LOOP); 2 = IPv4, 24/28/30 = IPv6 on the BSDs.
      uint32_t fam;
      std::memcpy(&fam, f, 4);
      if (linktype == DLT_LOOP || fam > 0xffff) fam = __builtin_bswap32(fam);
      if (fam == 2) return Ipv4(f + 4, caplen - 4, out);
      if (fam == 24 || fam == 28 || fam == 30) return Ipv6(f + 4, caplen - 4, out);
      return DecodeResult::NotIp;
    }
    case DLT_RAW:
    case DLT_IPV4:
    case DLT_IPV6:
    case 101:  // LINKTYPE_RAW as some writers leave it
      return ByVersion(f, caplen, out);
    default:
      return DecodeResult::NotIp;
  }
}

}  // namespace classifier
