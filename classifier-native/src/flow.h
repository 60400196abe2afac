// Sessions, as TIE's: bidirectional 5-tuple (+ VLAN) flows by default ("biflow"; the initiator is the sender of the
// first packet, its direction is "up"), or unidirectional flows (each direction its own session), or host pairs
// (all traffic between two addresses, any protocol and ports). The table is bounded: when full, the least recently
// seen flow is evicted (and reported), so a flood of new flows costs old idle ones, never memory without bound.
#pragma once
#include <cstdint>
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

/** Bytes of payload kept per direction for the plug-ins that look at early payload (the longest signature in
 * data/signatures.tsv needs 33). */
constexpr size_t kPayloadPrefix = 48;
/** Packets carrying payload whose sizes are kept, for the statistical plug-in (and its training). */
constexpr size_t kEarlyPackets = 6;

/**
 * One session's state: ~330 bytes, ≤ 400 with its place in the table (`tools/flow_memory.cc` measures it). Labels and
 * plug-ins are small indices into the engine's tables; plug-in state is a raw pointer the engine hands back to the
 * plug-in (Plugin::Release) when the flow ends; the LRU list runs through the flows themselves.
 */
struct Flow {
  // Identity, as the initiator sent its first packet.
  Address src, dst;
  uint16_t sport = 0, dport = 0;
  uint8_t proto = 0;
  uint16_t vlan = 0;
  double first_ts = 0, last_ts = 0;
  uint32_t packets[2] = {0, 0};   // [up, down]
  uint64_t bytes[2] = {0, 0};     // IP bytes
  uint8_t payload_packets[2] = {0, 0};  // packets with payload per direction, counted up to 255
  uint8_t prefix_len[2] = {0, 0};
  uint8_t prefix[2][kPayloadPrefix] = {};
  // IP sizes of the first packets that carry payload, signed by direction (+ up, − down), in order, and the time
  // since the flow's previous packet when each arrived (ms, up to 65535).
  int16_t early_sizes[kEarlyPackets] = {};
  uint16_t early_gaps_ms[kEarlyPackets] = {};
  uint8_t early_count = 0;
  uint8_t fin_seen = 0;           // bit 0: up, bit 1: down
  bool rst = false;
  void* plugin_state[kPluginSlots] = {nullptr, nullptr, nullptr, nullptr};  // owned by the plug-in in that slot
  // Each plug-in's standing on this flow, for the combiner: 0 still looking, 1 answered, 2 gave up.
  uint8_t plugin_status[kPluginSlots] = {0, 0, 0, 0};
  uint8_t plugin_confidence[kPluginSlots] = {0, 0, 0, 0};
  uint16_t plugin_label[kPluginSlots] = {0, 0, 0, 0};  // index into the engine's label table
  uint16_t plugin_master[kPluginSlots] = {0, 0, 0, 0};  // the protocol under an application label (0 = none)
  // Decision.
  bool decided = false;
  uint8_t confidence = 0;
  uint16_t label = 0;             // index into the engine's label table (0 = "Unknown")
  int8_t plugin = -1;             // the plug-in that decided, by position (-1: none)
  uint32_t packets_to_decision = 0;
  uint32_t decision_ns = 0;       // with Options::timing: time spent in plug-ins and combiner until the decision
  uint32_t counted_in_interval = 0;  // cyclic mode: the interval this flow was last counted in
  Flow* lru_newer = nullptr;      // the table's LRU list, through the flows (nodes of an unordered_map stay put)
  Flow* lru_older = nullptr;

  uint32_t total_packets() const { return packets[0] + packets[1]; }
  bool ended() const { return rst || fin_seen == 3; }
};

/** Features the flow table keeps for the plug-ins that declare them (counters, ports and direction always). */
enum Feature : unsigned {
  kNeedsPayload = 1,       // each direction's first payload bytes (Flow::prefix)
  kNeedsEarlyPackets = 2,  // sizes and gaps of the first packets with payload (Flow::early_sizes, early_gaps_ms)
};

enum class Sessions { Bidirectional, Unidirectional, HostPair };

class FlowTable {
 public:
  /** `active`: a session longer than this many seconds is reported and the next packet starts a new one (0: never). */
  FlowTable(size_t max_flows, Sessions sessions, double active = 0) : max_flows_(max_flows), sessions_(sessions), active_(active) {}

  /**
   * The flow of this packet and its direction: created if new (evicting the least recently seen one when the table
   * is full), or new after the active timeout. Flows that end here are moved to `ended`.
   */
  Flow& Track(const PacketInfo& p, int& direction, std::vector<Flow>& ended);

  /** Flows idle for longer than the timeouts (or ended, after `linger` seconds), removed from the table. */
  void Expire(double now, double tcp_idle, double udp_idle, std::vector<Flow>& out);

  /** Every flow still in the table, removed. */
  void Drain(std::vector<Flow>& out);

  size_t size() const { return flows_.size(); }
  /** Which features to keep (a Feature mask: what the plug-ins declared they need); all by default. */
  void Keep(unsigned features) { keep_ = features; }
  /** Flows ended early because the table was full. */
  uint64_t evictions() const { return evictions_; }

 private:
  size_t max_flows_;
  Sessions sessions_;
  double active_;
  unsigned keep_ = kNeedsPayload | kNeedsEarlyPackets;
  uint64_t evictions_ = 0;
  std::unordered_map<FlowKey, Flow, FlowKeyHash> flows_;
  Flow* newest_ = nullptr;  // the LRU list's ends
  Flow* oldest_ = nullptr;

  FlowKey KeyOf(const Address& src, uint16_t sport, const Address& dst, uint16_t dport, uint8_t proto, uint16_t vlan) const;
  void Unlink(Flow& f);
  void PushNewest(Flow& f);
  /** Moves the oldest flow out of the table into `out`. */
  void EndOldest(std::vector<Flow>& out);
};

}  // namespace classifier
