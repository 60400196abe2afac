// Decoding: a captured frame → the fields sessions and plug-ins need. Never reads past the captured bytes; a frame
// that cannot be decoded is counted (truncated / malformed / not IP) and skipped.
#pragma once
#include <cstddef>
#include <cstdint>

namespace classifier {

struct Address {
  uint8_t version = 0;  // 4 or 6
  uint8_t bytes[16] = {0};
};

struct PacketInfo {
  double ts = 0;            // seconds
  Address src, dst;
  uint8_t proto = 0;        // IPPROTO_*
  uint16_t sport = 0, dport = 0;
  uint16_t vlan = 0;        // outermost VLAN id, 0 if none
  uint8_t tcp_flags = 0;
  uint32_t ip_bytes = 0;    // length of the IP packet as declared (wire size above the link layer)
  const uint8_t* l3 = nullptr;  // the IP header, for plug-ins that take whole packets (nDPI)
  uint32_t l3_len = 0;           // captured bytes from the IP header on
  const uint8_t* payload = nullptr;
  uint32_t payload_len = 0; // captured payload bytes available
  bool fragment = false;    // a non-first IP fragment: no transport header
  uint8_t tunnel_depth = 0; // > 0: this is the inner packet of a tunnel (VXLAN, GTP-U, CAPWAP, GRE)
};

enum class DecodeResult { Ok, Truncated, Malformed, NotIp };

struct DecodeStats {
  uint64_t packets = 0, ok = 0, truncated = 0, malformed = 0, not_ip = 0, fragments = 0;
};

/** Decodes one frame of link type `linktype` (a DLT_* value). */
DecodeResult Decode(int linktype, const uint8_t* frame, uint32_t caplen, double ts, PacketInfo& out);

}  // namespace classifier
