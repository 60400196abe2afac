// Bytes of classifier state per flow: 1,000,000 concurrent flows in the flow table, measured as malloc's bytes in
// use before and after (glibc mallinfo2: the flows, the hash table's nodes and buckets, the LRU). Plug-in state is
// not included: nDPI's own flow struct (about 1 KB in 4.2) comes on top for the flows it inspects.
// Built and run by `npm run bench:classifier`:  g++ -O2 -Isrc tools/flow_memory.cc src/flow_table.cc
#include <malloc.h>
#include <netinet/in.h>

#include <cstdio>
#include <vector>

#include "flow.h"

int main() {
  constexpr size_t kFlows = 1'000'000;
  classifier::FlowTable table(kFlows, classifier::Sessions::Bidirectional);
  std::vector<classifier::Flow> ended;
  const size_t before = mallinfo2().uordblks;
  classifier::PacketInfo p;
  p.src.version = p.dst.version = 4;
  p.proto = IPPROTO_TCP;
  p.ip_bytes = 60;
  p.dport = 443;
  p.dst.bytes[0] = 192;
  for (size_t i = 0; i < kFlows; i++) {
    p.src.bytes[0] = 10;
    p.src.bytes[1] = static_cast<uint8_t>(i >> 16);
    p.src.bytes[2] = static_cast<uint8_t>(i >> 8);
    p.src.bytes[3] = static_cast<uint8_t>(i);
    p.sport = static_cast<uint16_t>(1024 + i % 60000);
    p.ts = static_cast<double>(i) / 1000;
    int direction;
    table.Track(p, direction, ended);
  }
  const size_t after = mallinfo2().uordblks;
  std::printf("{\"flows\":%zu,\"bytes_per_flow\":%.1f,\"sizeof_flow\":%zu,\"sizeof_key\":%zu}\n", table.size(),
              static_cast<double>(after - before) / static_cast<double>(table.size()), sizeof(classifier::Flow), sizeof(classifier::FlowKey));
  return ended.empty() ? 0 : 1;
}
