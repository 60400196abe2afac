#include "flow.h"

#include <algorithm>
#include <cmath>
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

FlowKey FlowTable::KeyOf(const Address& src, uint16_t sport, const Address& dst, uint16_t dport, uint8_t proto, uint16_t vlan) const {
  FlowKey key;
  const bool pair = sessions_ == Sessions::HostPair;
  // Unidirectional: the key as sent; otherwise both directions map to one key (host pairs: by address alone).
  const bool forward = sessions_ == Sessions::Unidirectional || Less(src, pair ? 0 : sport, dst, pair ? 0 : dport);
  key.a = forward ? src : dst;
  key.b = forward ? dst : src;
  key.a_port = pair ? 0 : forward ? sport : dport;
  key.b_port = pair ? 0 : forward ? dport : sport;
  key.proto = pair ? 0 : proto;
  key.vlan = vlan;
  return key;
}

void FlowTable::Unlink(Flow& f) {
  (f.lru_newer ? f.lru_newer->lru_older : newest_) = f.lru_older;
  (f.lru_older ? f.lru_older->lru_newer : oldest_) = f.lru_newer;
  f.lru_newer = f.lru_older = nullptr;
}

void FlowTable::PushNewest(Flow& f) {
  f.lru_newer = nullptr;
  f.lru_older = newest_;
  (newest_ ? newest_->lru_newer : oldest_) = &f;
  newest_ = &f;
}

void FlowTable::EndOldest(std::vector<Flow>& out) {
  Flow& f = *oldest_;
  Unlink(f);
  const FlowKey key = KeyOf(f.src, f.sport, f.dst, f.dport, f.proto, f.vlan);
  out.push_back(std::move(f));
  flows_.erase(key);
}

Flow& FlowTable::Track(const PacketInfo& p, int& direction, std::vector<Flow>& ended) {
  const bool pair = sessions_ == Sessions::HostPair;
  const FlowKey key = KeyOf(p.src, p.sport, p.dst, p.dport, p.proto, p.vlan);
  auto it = flows_.find(key);
  if (it != flows_.end() && active_ > 0 && p.ts - it->second.first_ts >= active_) {
    // Active timeout: the long session is reported, and this packet starts the next one.
    Unlink(it->second);
    ended.push_back(std::move(it->second));
    flows_.erase(it);
    it = flows_.end();
  }
  if (it == flows_.end()) {
    if (flows_.size() >= max_flows_ && oldest_) {
      EndOldest(ended);
      evictions_++;
    }
    Flow f;
    f.src = p.src;
    f.dst = p.dst;
    f.sport = p.sport;
    f.dport = p.dport;
    f.proto = p.proto;
    f.vlan = p.vlan;
    f.first_ts = p.ts;
    it = flows_.emplace(key, std::move(f)).first;
    PushNewest(it->second);
  } else if (newest_ != &it->second) {
    Unlink(it->second);
    PushNewest(it->second);
  }
  Flow& f = it->second;
  direction = std::memcmp(p.src.bytes, f.src.bytes, 16) == 0 && (pair || p.sport == f.sport) ? 0 : 1;
  const double gap_ms = f.total_packets() ? (p.ts - f.last_ts) * 1000 : 0;
  f.last_ts = p.ts;
  f.packets[direction]++;
  f.bytes[direction] += p.ip_bytes;
  if (p.payload_len > 0 && p.proto != IPPROTO_ICMP && p.proto != IPPROTO_ICMPV6) {
    if (f.payload_packets[direction] < 255) f.payload_packets[direction]++;
    if ((keep_ & kNeedsEarlyPackets) && f.early_count < kEarlyPackets) {
      const int size = p.ip_bytes > 32767 ? 32767 : static_cast<int>(p.ip_bytes);
      f.early_gaps_ms[f.early_count] = static_cast<uint16_t>(gap_ms < 0 ? 0 : gap_ms > 65535 ? 65535 : std::lround(gap_ms));
      f.early_sizes[f.early_count++] = static_cast<int16_t>(direction == 0 ? size : -size);
    }
    if ((keep_ & kNeedsPayload) && f.prefix_len[direction] < kPayloadPrefix) {
      const size_t room = kPayloadPrefix - f.prefix_len[direction];
      const size_t n = p.payload_len < room ? p.payload_len : room;
      std::memcpy(f.prefix[direction] + f.prefix_len[direction], p.payload, n);
      f.prefix_len[direction] = static_cast<uint8_t>(f.prefix_len[direction] + n);
    }
  }
  // A TCP connection's end ends its session (a one-way session at its own FIN); a host pair outlives connections.
  if (p.proto == IPPROTO_TCP && !pair) {
    if (p.tcp_flags & 0x01) f.fin_seen |= static_cast<uint8_t>(sessions_ == Sessions::Unidirectional ? 3 : 1 << direction);
    if (p.tcp_flags & 0x04) f.rst = true;
  }
  return f;
}

void FlowTable::Expire(double now, double tcp_idle, double udp_idle, std::vector<Flow>& out) {
  // The LRU list is ordered by last activity: walk from the oldest until a flow is still live.
  while (oldest_) {
    const Flow& f = *oldest_;
    const double idle = f.proto == IPPROTO_TCP ? (f.ended() ? 1.0 : tcp_idle) : sessions_ == Sessions::HostPair ? tcp_idle : udp_idle;
    if (now - f.last_ts < idle) break;
    EndOldest(out);
  }
}

void FlowTable::Drain(std::vector<Flow>& out) {
  // In order of their first packet, so a run's output does not depend on hash order.
  const size_t from = out.size();
  for (auto& [key, flow] : flows_) {
    flow.lru_newer = flow.lru_older = nullptr;
    out.push_back(std::move(flow));
  }
  std::sort(out.begin() + static_cast<std::ptrdiff_t>(from), out.end(), [](const Flow& x, const Flow& y) { return x.first_ts < y.first_ts; });
  flows_.clear();
  newest_ = oldest_ = nullptr;
}

}  // namespace classifier
