// ndpi: Debian's nDPI 4.2 as the deep-inspection plug-in. One detection module per engine (one per thread: nDPI is
// not thread-safe); one nDPI flow struct per flow, kept in the flow's plug-in slot and freed with it. Whole IP
// packets go in until nDPI names the protocol or the packet budget (as ndpiReader's: 80 TCP, 24 UDP) runs out;
// a flow that ends undecided gets nDPI's guess from its ports, at lower confidence.
#include <cstring>
#include <netinet/in.h>

extern "C" {
#include <ndpi_api.h>
}

#include "plugins.h"

namespace classifier {
namespace {

constexpr uint32_t kTcpBudget = 80, kUdpBudget = 24;  // ndpiReader 4.2 defaults (-T, -U)

class NdpiPlugin : public Plugin {
 public:
  ~NdpiPlugin() override {
    if (ndpi_) ndpi_exit_detection_module(ndpi_);
  }

  const char* name() const override { return "ndpi"; }

  bool Load(const std::string&, std::string& error) override {
    ndpi_ = ndpi_init_detection_module(ndpi_no_prefs);
    if (!ndpi_) {
      error = "nDPI: cannot initialise a detection module";
      return false;
    }
    NDPI_PROTOCOL_BITMASK all;
    NDPI_BITMASK_SET_ALL(all);
    ndpi_set_protocol_detection_bitmask2(ndpi_, &all);
    ndpi_finalize_initialization(ndpi_);
    return true;
  }

  Decision Classify(Flow& f, const PacketInfo& p, int) override {
    Decision d;
    if (!p.l3 || p.l3_len == 0) return d;
    auto* flow = State(f);
    const uint16_t len = static_cast<uint16_t>(p.l3_len > 65535 ? 65535 : p.l3_len);
    const ndpi_protocol proto = ndpi_detection_process_packet(ndpi_, flow, p.l3, len, static_cast<uint64_t>(p.ts * 1000));
    if (proto.app_protocol != NDPI_PROTOCOL_UNKNOWN || proto.master_protocol != NDPI_PROTOCOL_UNKNOWN) {
      Name(proto, d);
      d.confidence = 100;  // found by inspecting the traffic
      d.flags = Decision::NoMore;
      return d;
    }
    const uint32_t budget = f.proto == IPPROTO_TCP ? kTcpBudget : kUdpBudget;
    d.flags = f.total_packets() >= budget ? Decision::NoMore : Decision::Redo;
    return d;
  }

  Decision Conclude(Flow& f) override {
    Decision d;
    auto* flow = static_cast<ndpi_flow_struct*>(f.plugin_state[slot]);
    if (!flow) return d;
    uint8_t guessed = 0;
    const ndpi_protocol proto = ndpi_detection_giveup(ndpi_, flow, 1, &guessed);
    if (proto.app_protocol == NDPI_PROTOCOL_UNKNOWN && proto.master_protocol == NDPI_PROTOCOL_UNKNOWN) return d;
    Name(proto, d);
    d.confidence = guessed ? 30 : 80;
    return d;
  }

 private:
  void Release(void* state) override { ndpi_free_flow(static_cast<ndpi_flow_struct*>(state)); }

  ndpi_flow_struct* State(Flow& f) {
    void*& state = f.plugin_state[slot];
    if (!state) {
      state = ndpi_flow_malloc(SIZEOF_FLOW_STRUCT);
      std::memset(state, 0, SIZEOF_FLOW_STRUCT);
    }
    return static_cast<ndpi_flow_struct*>(state);
  }

  /** The application's name when nDPI knows one (e.g. "Google" for TLS to Google), with its protocol as master. */
  void Name(const ndpi_protocol& p, Decision& d) {
    const bool app = p.app_protocol != NDPI_PROTOCOL_UNKNOWN;
    const char* label = ndpi_get_proto_name(ndpi_, app ? p.app_protocol : p.master_protocol);
    d.label = label ? label : "Unknown";
    const char* master = app && p.master_protocol != NDPI_PROTOCOL_UNKNOWN && p.master_protocol != p.app_protocol ? ndpi_get_proto_name(ndpi_, p.master_protocol) : nullptr;
    if (master) d.master = master;
  }

  ndpi_detection_module_struct* ndpi_ = nullptr;
};

}  // namespace

std::unique_ptr<Plugin> MakeNdpiPlugin() { return std::make_unique<NdpiPlugin>(); }

}  // namespace classifier
