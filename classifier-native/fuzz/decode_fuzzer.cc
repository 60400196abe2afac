// libFuzzer target: arbitrary bytes as a captured frame of one of the supported link types, through decoding and
// session tracking. Run by fuzz/run.sh under ASan and UBSan; the corpus lives in fuzz/corpus/.
#include <cstddef>
#include <cstdint>
#include <pcap/dlt.h>
#include <vector>

#include "flow.h"
#include "packet.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const int kLinkTypes[] = {DLT_EN10MB, DLT_LINUX_SLL, DLT_LINUX_SLL2, DLT_NULL, DLT_LOOP, DLT_RAW, DLT_IPV4, DLT_IPV6};
  if (size < 1) return 0;
  const int linktype = kLinkTypes[data[0] % (sizeof kLinkTypes / sizeof kLinkTypes[0])];
  // Copy into a buffer of exactly the frame's size, so ASan sees any read past the captured bytes.
  std::vector<uint8_t> frame(data + 1, data + size);
  classifier::PacketInfo p;
  if (classifier::Decode(linktype, frame.data(), static_cast<uint32_t>(frame.size()), 1.0, p) != classifier::DecodeResult::Ok) return 0;
  if (p.payload && p.payload_len) {
    volatile uint8_t sink = p.payload[p.payload_len - 1];  // the payload must be readable to its last byte
    (void)sink;
  }
  if (p.fragment) return 0;
  // Small tables, so eviction runs too; every kind of session.
  static classifier::FlowTable tables[] = {{64, classifier::Sessions::Bidirectional}, {64, classifier::Sessions::Unidirectional},
                                          {64, classifier::Sessions::HostPair}};
  for (auto& table : tables) {
    std::vector<classifier::Flow> ended;
    int direction;
    table.Track(p, direction, ended);
    table.Expire(1e9, 300, 120, ended);
  }
  return 0;
}
