// The offline pipeline: capture (libpcap: pcap and pcapng files, BPF) → decode → sessions → plug-ins → combiner →
// one record per flow. Realtime and cyclic modes, and more plug-ins, build on the same engine.
#pragma once
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <pcap/pcap.h>

#include "flow.h"
#include "plugin.h"

namespace classifier {

struct Options {
  std::string data_dir;
  std::vector<std::string> plugins{"port"};
  std::string bpf;
  size_t max_flows = 1'000'000;
  double tcp_idle = 300, udp_idle = 120;  // seconds without a packet before a flow is over
  double active = 0;                       // a session longer than this (s) is reported and a new one begins (0: never, as ndpiReader)
  double interval = 0;                     // cyclic mode: report traffic per application every `interval` s
  /**
   * How plug-in answers become a decision: "priority" (the first plug-in in order that answers, once every one
   * before it has answered or given up), "majority" (most answers, ties to the earlier plug-in) or "weighted" (each
   * answer weighs its plug-in's learned precision for that label, from `weights`; an answer weighing at least the
   * file's `early` threshold decides at once).
   */
  std::string combiner = "priority";
  std::string sessions = "bidirectional";  // or "unidirectional" (each direction its own) or "host-pair"
  std::string weights;  // the weighted combiner's model (TSV from train.ts); default <data_dir>/weights.tsv
  bool keep_flows = true;  // false: ended flows only count in totals() (summary, as ndpiReader -q), then are freed
  bool timing = false;     // measure each flow's decision time (plug-ins + combiner), by deciding plug-in
  bool features = false;   // keep the statistical features for every flow (records carry them, for training)
};

/** Traffic per application in one interval of capture time (cyclic mode). */
struct IntervalReport {
  double start = 0, end = 0;
  struct Counters { uint64_t flows = 0, packets[2] = {0, 0}, bytes[2] = {0, 0}; };
  std::map<std::string, Counters> apps;  // by label; flows still undecided count as "Unknown"
};

using Totals = std::map<std::string, IntervalReport::Counters>;

struct Stats {
  DecodeStats decode;
  uint64_t flows = 0, evicted = 0;
  /**
   * With Options::timing: each decided flow's decision time in ns, by the plug-in that decided ("" = Unknown;
   * "<plug-in> (sure)" = the weighted combiner's decisions by a sure answer, before later plug-ins were asked).
   */
  std::map<std::string, std::vector<uint32_t>> decision_ns;
};

class Engine {
 public:
  ~Engine();
  bool Init(const Options& options, std::string& error);
  /** Reads one capture file through the pipeline; its flows end with it and accumulate in flows(). */
  bool ProcessFile(const std::string& path, std::string& error);
  /**
   * Live capture on `iface` for `seconds` (or until `stop` is set): the same pipeline as files, packets as they
   * come. False with `error` set if the interface cannot be opened (it needs CAP_NET_RAW).
   */
  bool ProcessLive(const std::string& iface, double seconds, const std::atomic<bool>& stop, std::string& error);
  /** Ends every flow still open (end of input). */
  void Finish();
  std::vector<Flow>& flows() { return done_; }
  /** Realtime: called the moment a flow is decided (label, confidence, plug-in, packets it took). */
  std::function<void(const Flow&)> on_decision;
  /** Cyclic: called when an interval of capture time closes, and for the last one at End(). */
  std::function<void(const IntervalReport&)> on_interval;
  /** Closes the last interval (end of the run). */
  void End();
  const Stats& stats() const { return stats_; }
  /** A label's name (Flow::label, Flow::plugin_label). */
  const std::string& Label(uint16_t id) const { return labels_[id]; }
  /** The name of the plug-in at this position (Flow::plugin), "" for none. */
  const char* PluginName(int index) const { return index < 0 ? "" : plugins_[static_cast<size_t>(index)]->name(); }
  /** Traffic per application over every flow that ended, by label. */
  const Totals& totals() const { return totals_; }

 private:
  void Packet(int linktype, const uint8_t* data, uint32_t caplen, double ts);
  bool SetFilter(pcap_t* pcap, std::string& error);
  void Decide(Flow& flow, const PacketInfo& packet, int direction);
  void Record(Flow& flow, size_t plugin, const Decision& d);
  void Combine(Flow& flow, bool final);
  uint16_t Intern(const std::string& label);
  void Decided(Flow& flow, uint16_t label, uint8_t confidence, int plugin);
  void Release(Flow& flow);
  void Account(Flow& flow, const PacketInfo& packet, int direction);
  void Conclude(size_t from);
  bool LoadWeights(std::string& error);
  /** The learned precision of plug-in k when it answers `label`, or -1 if training never saw it give that label. */
  double Learned(size_t k, uint16_t label) const;
  /** Learned(), or the plug-in's weight for labels not in the model (weighted combiner). */
  double Weight(size_t k, uint16_t label) const;
  void CombineByPriority(Flow& flow, bool final);
  void CombineByVote(Flow& flow, bool final, bool weighted);

  Options options_;
  std::vector<std::unique_ptr<Plugin>> plugins_;
  std::unique_ptr<FlowTable> table_;
  std::vector<Flow> done_;
  Stats stats_;
  double last_expiry_ = 0;
  IntervalReport interval_;
  std::vector<std::string> labels_;                 // interned plug-in answers (flows keep 2-byte indices)
  std::map<std::string, uint16_t> label_ids_;
  uint64_t interval_id_ = 0;  // flows remember the last interval they were counted in
  Totals totals_;
  std::vector<std::vector<double>> weights_;  // [plug-in][label id]; unknown labels take the plug-in's default
  std::vector<double> default_weight_;
  double early_ = 1.01;                       // weighted: an answer this heavy decides at once
  double min_vote_ = 0;                       // weighted: a winning vote lighter than this is Unknown
  bool sure_ = false;                         // the decision just made was a sure answer's (for timing)
};

}  // namespace classifier
