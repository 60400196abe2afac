#include "engine.h"

#include <cmath>
#include <pcap/pcap.h>

#include "plugins.h"

namespace classifier {

bool Engine::Init(const Options& options, std::string& error) {
  options_ = options;
  table_ = std::make_unique<FlowTable>(options.max_flows);
  for (const std::string& name : options.plugins) {
    std::unique_ptr<Plugin> p;
    if (name == "port") p = MakePortPlugin();
    if (name == "ndpi") p = MakeNdpiPlugin();
    if (!p) {
      error = "unknown plug-in \"" + name + "\" (available: port, ndpi)";
      return false;
    }
    if (plugins_.size() >= kPluginSlots) {
      error = "at most " + std::to_string(kPluginSlots) + " plug-ins at once";
      return false;
    }
    p->slot = plugins_.size();
    if (!p->Load(options.data_dir, error)) return false;
    plugins_.push_back(std::move(p));
  }
  return true;
}

bool Engine::ProcessFile(const std::string& path, std::string& error) {
  char errbuf[PCAP_ERRBUF_SIZE] = {0};
  pcap_t* pcap = pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, errbuf);
  if (!pcap) {
    error = path + ": " + errbuf;
    return false;
  }
  if (!options_.bpf.empty()) {
    bpf_program program;
    if (pcap_compile(pcap, &program, options_.bpf.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0 || pcap_setfilter(pcap, &program) != 0) {
      error = "BPF filter \"" + options_.bpf + "\": " + pcap_geterr(pcap);
      pcap_close(pcap);
      return false;
    }
    pcap_freecode(&program);
  }
  const int linktype = pcap_datalink(pcap);
  pcap_pkthdr* header;
  const u_char* data;
  int rc;
  while ((rc = pcap_next_ex(pcap, &header, &data)) == 1) {
    Packet(linktype, data, header->caplen, header->ts.tv_sec + header->ts.tv_usec / 1e9);
  }
  // A capture cut short (truncated file) ends the file, not the run: what was read counts.
  if (rc == PCAP_ERROR) error = path + ": " + pcap_geterr(pcap);
  pcap_close(pcap);
  // Each capture is its own trace: its flows end with it (a playlist, or --loop, never merges sessions across files).
  Finish();
  last_expiry_ = 0;
  return rc != PCAP_ERROR || stats_.decode.packets > 0;
}

void Engine::Packet(int linktype, const uint8_t* data, uint32_t caplen, double ts) {
  stats_.decode.packets++;
  PacketInfo p;
  switch (Decode(linktype, data, caplen, ts, p)) {
    case DecodeResult::Truncated: stats_.decode.truncated++; return;
    case DecodeResult::Malformed: stats_.decode.malformed++; return;
    case DecodeResult::NotIp: stats_.decode.not_ip++; return;
    case DecodeResult::Ok: break;
  }
  stats_.decode.ok++;
  if (p.fragment) {
    stats_.decode.fragments++;
    return;
  }
  // Expire idle flows once a second of capture time.
  if (ts - last_expiry_ >= 1) {
    const size_t before = done_.size();
    table_->Expire(ts, options_.tcp_idle, options_.udp_idle, done_);
    Conclude(before);
    last_expiry_ = ts;
  }
  int direction;
  const size_t before = done_.size();
  Flow& f = table_->Track(p, direction, done_);
  stats_.evicted += done_.size() - before;
  Conclude(before);
  if (f.total_packets() == 1) stats_.flows++;
  if (!f.decided) Decide(f, p, direction);
  if (options_.interval > 0) Account(f, p, direction);
}

void Engine::Decided(Flow& f, const std::string& label, uint8_t confidence, const std::string& plugin) {
  f.decided = true;
  f.label = label;
  f.confidence = confidence;
  f.plugin = plugin;
  f.packets_to_decision = f.total_packets();
  if (on_decision) on_decision(f);
}

/** Cyclic mode: the packet counts for its flow's application in the interval of its capture time. */
void Engine::Account(Flow& f, const PacketInfo& p, int direction) {
  const double start = std::floor(p.ts / options_.interval) * options_.interval;
  if (interval_.end == 0 || start >= interval_.end) {
    if (interval_.end != 0 && on_interval) on_interval(interval_);
    interval_ = IntervalReport{start, start + options_.interval, {}};
    interval_id_++;
  }
  auto& c = interval_.apps[f.decided ? f.label : "Unknown"];
  if (f.counted_in_interval != interval_id_) {
    f.counted_in_interval = interval_id_;
    c.flows++;
  }
  c.packets[direction]++;
  c.bytes[direction] += p.ip_bytes;
}

void Engine::End() {
  if (options_.interval > 0 && interval_.end != 0 && on_interval) on_interval(interval_);
  interval_ = IntervalReport{};
}

/** Flows that left the table (done_[from…]): an undecided one gets the plug-ins' last word; state is released. */
void Engine::Conclude(size_t from) {
  for (size_t i = from; i < done_.size(); i++) {
    Flow& f = done_[i];
    for (auto& plugin : plugins_) {
      if (f.decided) break;
      Decision d = plugin->Conclude(f);
      if (!d.label.empty()) Decided(f, d.label, d.confidence, plugin->name());
    }
    if (!f.decided) Decided(f, "Unknown", 0, "");  // ended without an answer: that is the decision
    for (auto& state : f.plugin_state) state.reset();
  }
}

/**
 * Priority combiner: plug-ins in the order given. A plug-in's answer decides unless a plug-in before it is still
 * waiting for more packets (REDO): then the flow waits too, and later plug-ins are asked only once the earlier ones
 * have given up (NOMORE). When every plug-in has given up without an answer the flow is decided Unknown.
 */
void Engine::Decide(Flow& f, const PacketInfo& p, int direction) {
  for (auto& plugin : plugins_) {
    Decision d = plugin->Classify(f, p, direction);
    if (!d.label.empty()) return Decided(f, d.label, d.confidence, plugin->name());
    if (d.flags & Decision::Redo) return;  // a better plug-in may still answer: wait for it
  }
  Decided(f, "Unknown", 0, "");  // nobody will ever know: Unknown, decided now
}

void Engine::Finish() {
  const size_t before = done_.size();
  table_->Drain(done_);
  Conclude(before);
}

}  // namespace classifier
