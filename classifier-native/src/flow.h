// Sessions: bidirectional 5-tuple (+ VLAN) flows, as TIE's "biflow". The initiator is the sender of the first
// packet; its direction is "up". The table is bounded: when full, the least recently seen flow is evicted (and
// reported), so a flood of new flows costs old idle ones, never memory without bound.
#pragma once
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "packet.h"

namespace classifier {

struct FlowKey {
  Address a, b;          // a < b (by bytes), so both directions map to one key
  uint16_t a_port = 0, b_port = 0;
  uint8_t proto = 0;
  uint16_t vlan = 0;
  bool operator==(const FlowKey& o) const;
};

struct FlowKeyHash {
  size_t operator()(const FlowKey& k) const;
};

/** Plug-ins that keep per-flow state (nDPI's flow struct, say) get one slot each. */
constexpr size_t kPluginSlots = 4;

/** Bytes of payload kept per direction for the plug-ins that look at early payload. */
constexpr size_t kPayloadPrefix = 64;
/** Packets carrying payload whose sizes are kept, for the statistical plug-in (and its training). */
constexpr size_t kEarlyPackets = 6;

struct Flow {
  // Identity, as the initiator sent its first packet.
  Address src, dst;
  uint16_t sport = 0, dport = 0;
  uint8_t proto = 0;
  uint16_t vlan = 0;
  double first_ts = 0, last_ts = 0;
  uint32_t packets[2] = {0, 0};   // [up, down]
  uint64_t bytes[2] = {0, 0};     // IP bytes
  uint32_t payload_packets[2] = {0, 0};
  uint8_t prefix_len[2] = {0, 0};
  uint8_t prefix[2][kPayloadPrefix] = {};
  // IP sizes of the first packets that carry payload, signed by direction (+ up, − down), in order.
  int16_t early_sizes[kEarlyPackets] = {};
  uint8_t early_count = 0;
  uint8_t fin_seen = 0;           // bit 0: up, bit 1: down
  bool rst = false;
  std::shared_ptr<void> plugin_state[kPluginSlots];  // released with the flow
  // Each plug-in's standing on this flow, for the combiner: 0 still looking, 1 answered, 2 gave up.
  uint8_t plugin_status[kPluginSlots] = {0, 0, 0, 0};
  uint8_t plugin_confidence[kPluginSlots] = {0, 0, 0, 0};
  uint16_t plugin_label[kPluginSlots] = {0, 0, 0, 0};  // index into the engine's label table
  uint16_t plugin_master[kPluginSlots] = {0, 0, 0, 0};  // the protocol under an application label (0 = none)
  // Decision.
  bool decided = false;
  std::string label = "Unknown";
  uint8_t confidence = 0;
  std::string plugin;
  uint32_t packets_to_decision = 0;
  uint32_t decision_ns = 0;          // with Options::timing: time spent in plug-ins and combiner until the decision
  uint64_t counted_in_interval = 0;  // cyclic mode: the interval this flow was last counted in
  std::list<FlowKey>::iterator lru;

  uint32_t total_packets() const { return packets[0] + packets[1]; }
  bool ended() const { return rst || fin_seen == 3; }
};

class FlowTable {
 public:
  explicit FlowTable(size_t max_flows) : max_flows_(max_flows) {}

  /** The flow of this packet (created if new; evicting the least recently seen one when full) and its direction. */
  Flow& Track(const PacketInfo& p, int& direction, std::vector<Flow>& evicted);

  /** Flows idle for longer than the timeouts (or ended, after `linger` seconds), removed from the table. */
  void Expire(double now, double tcp_idle, double udp_idle, std::vector<Flow>& out);

  /** Every flow still in the table, removed. */
  void Drain(std::vector<Flow>& out);

  size_t size() const { return flows_.size(); }

 private:
  size_t max_flows_;
  std::unordered_map<FlowKey, Flow, FlowKeyHash> flows_;
  std::list<FlowKey> lru_;  // most recently seen at the front
};

}  // namespace classifier
