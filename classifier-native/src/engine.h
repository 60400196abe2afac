// The offline pipeline: capture (libpcap: pcap and pcapng files, BPF) → decode → sessions → plug-ins → combiner →
// one record per flow. Realtime and cyclic modes, and more plug-ins, build on the same engine.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "flow.h"
#include "plugin.h"

namespace classifier {

struct Options {
  std::string data_dir;
  std::vector<std::string> plugins{"port"};
  std::string bpf;
  size_t max_flows = 1'000'000;
  double tcp_idle = 300, udp_idle = 120;  // seconds without a packet before a flow is over
};

struct Stats {
  DecodeStats decode;
  uint64_t flows = 0, evicted = 0;
};

class Engine {
 public:
  bool Init(const Options& options, std::string& error);
  /** Reads one capture file through the pipeline; its flows end with it and accumulate in flows(). */
  bool ProcessFile(const std::string& path, std::string& error);
  /** Ends every flow still open (end of input). */
  void Finish();
  std::vector<Flow>& flows() { return done_; }
  const Stats& stats() const { return stats_; }

 private:
  void Packet(int linktype, const uint8_t* data, uint32_t caplen, double ts);
  void Decide(Flow& flow, const PacketInfo& packet, int direction);
  void Conclude(size_t from);

  Options options_;
  std::vector<std::unique_ptr<Plugin>> plugins_;
  std::unique_ptr<FlowTable> table_;
  std::vector<Flow> done_;
  Stats stats_;
  double last_expiry_ = 0;
};

}  // namespace classifier
