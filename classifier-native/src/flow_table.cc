#include "flow.h"

#include <algorithm>
#include <cstring>
#include <netinet/in.h>

namespace classifier {

bool FlowKey::operator==(const FlowKey& o) const {
  return a.version == o.a.version && std::memcmp(a.bytes, o.a.bytes, 16) == 0 && std::memcmp(b.bytes, o.b.bytes, 16) == 0 &&
         a_port == o.a_port && b_port == o.b_port && proto == o.proto && vlan == o.vlan;
}

size_t FlowKeyHash::operator()(const FlowKey& k) const {
  // FNV-1a over the key's fields.
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
  };
  mix(k.a.bytes, 16);
  mix(k.b.bytes, 16);
  mix(&k.a_port, 2);
  mix(&k.b_port, 2);
  mix(&k.proto, 1);
  mix(&k.vlan, 2);
  return static_cast<size_t>(h);
}

static bool Less(const Address& x, uint16_t xp, const Address& y, uint16_t yp) {
  const int c = std::memcmp(x.bytes, y.bytes, 16);
  return c < 0 || (c == 0 && xp < yp);
}

Flow& FlowTable::Track(const PacketInfo& p, int& direction, std::vector<Flow>& evicted) {
  FlowKey key;
  const bool forward = Less(p.src, p.sport, p.dst, p.dport);
  key.a = forward ? p.src : p.dst;
  key.b = forward ? p.dst : p.src;
  key.a_port = forward ? p.sport : p.dport;
  key.b_port = forward ? p.dport : p.sport;
  key.proto = p.proto;
  key.vlan = p.vlan;
  auto it = flows_.find(key);
  if (it == flows_.end()) {
    if (flows_.size() >= max_flows_ && !lru_.empty()) {
      auto victim = flows_.find(lru_.back());
      evicted.push_back(std::move(victim->second));
      flows_.erase(victim);
      lru_.pop_back();
    }
    Flow f;
    f.src = p.src;
    f.dst = p.dst;
    f.sport = p.sport;
    f.dport = p.dport;
    f.proto = p.proto;
    f.vlan = p.vlan;
    f.first_ts = p.ts;
    lru_.push_front(key);
    f.lru = lru_.begin();
    it = flows_.emplace(key, std::move(f)).first;
  } else {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
  }
  Flow& f = it->second;
  direction = std::memcmp(p.src.bytes, f.src.bytes, 16) == 0 && p.sport == f.sport ? 0 : 1;
  f.last_ts = p.ts;
  f.packets[direction]++;
  f.bytes[direction] += p.ip_bytes;
  if (p.payload_len > 0 && p.proto != IPPROTO_ICMP && p.proto != IPPROTO_ICMPV6) {
    f.payload_packets[direction]++;
    if (f.early_count < kEarlyPackets) {
      const int size = p.ip_bytes > 32767 ? 32767 : static_cast<int>(p.ip_bytes);
      f.early_sizes[f.early_count++] = static_cast<int16_t>(direction == 0 ? size : -size);
    }
    if (f.prefix_len[direction] < kPayloadPrefix) {
      const size_t room = kPayloadPrefix - f.prefix_len[direction];
      const size_t n = p.payload_len < room ? p.payload_len : room;
      std::memcpy(f.prefix[direction] + f.prefix_len[direction], p.payload, n);
      f.prefix_len[direction] = static_cast<uint8_t>(f.prefix_len[direction] + n);
    }
  }
  if (p.proto == IPPROTO_TCP) {
    if (p.tcp_flags & 0x01) f.fin_seen |= static_cast<uint8_t>(1 << direction);
    if (p.tcp_flags & 0x04) f.rst = true;
  }
  return f;
}

void FlowTable::Expire(double now, double tcp_idle, double udp_idle, std::vector<Flow>& out) {
  // The LRU list is ordered by last activity: walk from the oldest until a flow is still live.
  while (!lru_.empty()) {
    auto it = flows_.find(lru_.back());
    const Flow& f = it->second;
    const double idle = f.proto == IPPROTO_TCP ? (f.ended() ? 1.0 : tcp_idle) : udp_idle;
    if (now - f.last_ts < idle) break;
    out.push_back(std::move(it->second));
    flows_.erase(it);
    lru_.pop_back();
  }
}

void FlowTable::Drain(std::vector<Flow>& out) {
  // In order of their first packet, so a run's output does not depend on hash order.
  const size_t from = out.size();
  for (auto& [key, flow] : flows_) out.push_back(std::move(flow));
  std::sort(out.begin() + static_cast<std::ptrdiff_t>(from), out.end(), [](const Flow& x, const Flow& y) { return x.first_ts < y.first_ts; });
  flows_.clear();
  lru_.clear();
}

}  // namespace classifier
