#include "engine.h"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <pcap/pcap.h>
#include <poll.h>

#include "data_file.h"
#include "plugins.h"

namespace classifier {

bool Engine::Init(const Options& options, std::string& error) {
  options_ = options;
  const Sessions sessions = options.sessions == "unidirectional" ? Sessions::Unidirectional
                            : options.sessions == "host-pair"    ? Sessions::HostPair
                                                                 : Sessions::Bidirectional;
  if (sessions == Sessions::Bidirectional && options.sessions != "bidirectional") {
    error = "unknown sessions \"" + options.sessions + "\" (available: bidirectional, unidirectional, host-pair)";
    return false;
  }
  table_ = std::make_unique<FlowTable>(options.max_flows, sessions, options.active);
  Intern("Unknown");  // label id 0: what Flow::plugin_master holds when there is no master
  for (const std::string& name : options.plugins) {
    std::unique_ptr<Plugin> p;
    if (name == "port") p = MakePortPlugin();
    if (name == "ndpi") p = MakeNdpiPlugin();
    if (name == "signature") p = MakeSignaturePlugin();
    if (name == "statistical") p = MakeStatisticalPlugin();
    if (!p) {
      error = "unknown plug-in \"" + name + "\" (available: port, signature, ndpi, statistical)";
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
  // The table keeps only the features some plug-in declared it reads (and what records were asked to carry).
  unsigned needs = options.features ? static_cast<unsigned>(kNeedsEarlyPackets) : 0u;
  for (const auto& p : plugins_) needs |= p->needs();
  table_->Keep(needs);
  if (options.combiner == "weighted") return LoadWeights(error);
  if (options.combiner != "priority" && options.combiner != "majority") {
    error = "unknown combiner \"" + options.combiner + "\" (available: priority, majority, weighted)";
    return false;
  }
  return true;
}

/**
 * The weighted combiner's model, a TSV written by classifier-native/train.ts:
 *   # vantage-classifier-weights 1 …        (format version, provenance)
 *   early<TAB>0.95                          (an answer at least this heavy decides at once)
 *   min<TAB>0.2                             (a vote lighter than this names nothing: Unknown)
 *   <plugin><TAB><label><TAB><said><TAB><right><TAB><weight>   (label "*": the plug-in's weight for other labels)
 */
bool Engine::LoadWeights(std::string& error) {
  const std::string path = options_.weights.empty() ? options_.data_dir + "/weights.tsv" : options_.weights;
  weights_.assign(plugins_.size(), {});
  default_weight_.assign(plugins_.size(), 0.5);
  return ReadDataFile(path, "the weighted combiner's model (make it with npm run train:classifier)", "vantage-classifier-weights 1",
                      [&](const Fields& f, std::string& why) {
    char* end = nullptr;
    if (f.size() == 2 && (f[0] == "early" || f[0] == "min")) {
      (f[0] == "early" ? early_ : min_vote_) = std::strtod(f[1].c_str(), &end);
      if (*end == 0) return true;
    } else if (f.size() == 5) {
      const double w = std::strtod(f[4].c_str(), &end);
      if (*end == 0 && w >= 0 && w <= 1) {
        for (size_t k = 0; k < plugins_.size(); k++) {
          if (plugins_[k]->name() != f[0]) continue;
          if (f[1] == "*") {
            default_weight_[k] = w;
          } else {
            const uint16_t id = Intern(f[1]);
            if (weights_[k].size() <= id) weights_[k].resize(id + 1, -1);
            weights_[k][id] = w;
          }
        }
        return true;
      }
    }
    why = "expected \"early<TAB>threshold\", \"min<TAB>threshold\" or \"plugin<TAB>label<TAB>said<TAB>right<TAB>weight (0-1)\"";
    return false;
  }, error);
}

double Engine::Learned(size_t k, uint16_t label) const {
  const auto& w = weights_[k];
  return label < w.size() ? w[label] : -1;
}

double Engine::Weight(size_t k, uint16_t label) const {
  const double w = Learned(k, label);
  return w >= 0 ? w : default_weight_[k];
}

bool Engine::ProcessFile(const std::string& path, std::string& error) {
  char errbuf[PCAP_ERRBUF_SIZE] = {0};
  pcap_t* pcap = pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, errbuf);
  if (!pcap) {
    error = path + ": " + errbuf;
    return false;
  }
  if (!SetFilter(pcap, error)) {
    pcap_close(pcap);
    return false;
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

bool Engine::SetFilter(pcap_t* pcap, std::string& error) {
  if (options_.bpf.empty()) return true;
  bpf_program program;
  if (pcap_compile(pcap, &program, options_.bpf.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0 || pcap_setfilter(pcap, &program) != 0) {
    error = "BPF filter \"" + options_.bpf + "\": " + pcap_geterr(pcap);
    return false;
  }
  pcap_freecode(&program);
  return true;
}

bool Engine::ProcessLive(const std::string& iface, double seconds, const std::atomic<bool>& stop, std::string& error) {
  char errbuf[PCAP_ERRBUF_SIZE] = {0};
  pcap_t* pcap = pcap_create(iface.c_str(), errbuf);
  if (!pcap) {
    error = iface + ": " + errbuf;
    return false;
  }
  pcap_set_snaplen(pcap, 65535);
  pcap_set_timeout(pcap, 100);  // ms: wake up often enough to notice the end
  pcap_set_immediate_mode(pcap, 1);  // realtime: a packet is handed over as it arrives
  if (pcap_activate(pcap) < 0) {
    error = iface + ": " + pcap_geterr(pcap);
    pcap_close(pcap);
    return false;
  }
  if (!SetFilter(pcap, error)) {
    pcap_close(pcap);
    return false;
  }
  const int linktype = pcap_datalink(pcap);
  struct Ctx { Engine* engine; int linktype; } ctx{this, linktype};
  const double until = seconds > 0 ? std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count() + seconds : 0;
  auto now = [] { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); };
  // Non-blocking reads behind our own poll(): the capture ends on time even when no packet comes.
  pcap_setnonblock(pcap, 1, errbuf);
  const int fd = pcap_get_selectable_fd(pcap);
  while (!stop.load() && (until == 0 || now() < until)) {
    pollfd p{fd, POLLIN, 0};
    if (fd >= 0 && poll(&p, 1, 100) <= 0) continue;
    const int n = pcap_dispatch(pcap, -1, [](u_char* user, const pcap_pkthdr* h, const u_char* bytes) {
      auto* c = reinterpret_cast<Ctx*>(user);
      c->engine->Packet(c->linktype, bytes, h->caplen, h->ts.tv_sec + h->ts.tv_usec / 1e6);
    }, reinterpret_cast<u_char*>(&ctx));
    if (n < 0) {
      error = iface + ": " + pcap_geterr(pcap);
      break;
    }
  }
  pcap_close(pcap);
  Finish();
  return error.empty();
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
  stats_.evicted = table_->evictions();
  Conclude(before);
  if (f.total_packets() == 1) stats_.flows++;
  if (!f.decided) {
    if (options_.timing) {
      const auto t0 = std::chrono::steady_clock::now();
      Decide(f, p, direction);
      f.decision_ns += static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
      if (f.decided) stats_.decision_ns[std::string(PluginName(f.plugin)) + (sure_ ? " (sure)" : "")].push_back(f.decision_ns);
      sure_ = false;
    } else {
      Decide(f, p, direction);
    }
  }
  if (options_.interval > 0) Account(f, p, direction);
}

void Engine::Decided(Flow& f, uint16_t label, uint8_t confidence, int plugin) {
  f.decided = true;
  f.label = label;
  f.confidence = confidence;
  f.plugin = static_cast<int8_t>(plugin);
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
  auto& c = interval_.apps[labels_[f.decided ? f.label : 0]];
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
    if (!f.decided) {
      const auto t0 = std::chrono::steady_clock::now();
      for (size_t k = 0; k < plugins_.size(); k++) {
        if (f.plugin_status[k] == 0) Record(f, k, plugins_[k]->Conclude(f));
      }
      Combine(f, true);
      if (options_.timing) {
        f.decision_ns += static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
        stats_.decision_ns[std::string(PluginName(f.plugin)) + (sure_ ? " (sure)" : "")].push_back(f.decision_ns);
      }
      sure_ = false;
    }
    Release(f);
    auto& t = totals_[labels_[f.label]];
    t.flows++;
    for (int d = 0; d < 2; d++) {
      t.packets[d] += f.packets[d];
      t.bytes[d] += f.bytes[d];
    }
  }
  if (!options_.keep_flows) done_.resize(from);
}

/** Hands the flow's plug-in state back to each plug-in. */
void Engine::Release(Flow& f) {
  for (size_t k = 0; k < plugins_.size(); k++) {
    if (f.plugin_state[k]) plugins_[k]->Release(f.plugin_state[k]);
    f.plugin_state[k] = nullptr;
  }
}

Engine::~Engine() {
  // A run that stopped early (an unreadable capture, say) leaves flows in the table: their plug-in state is freed.
  if (!table_) return;
  std::vector<Flow> left;
  table_->Drain(left);
  for (Flow& f : left) Release(f);
}

uint16_t Engine::Intern(const std::string& label) {
  auto it = label_ids_.find(label);
  if (it != label_ids_.end()) return it->second;
  labels_.push_back(label);
  return label_ids_[label] = static_cast<uint16_t>(labels_.size() - 1);
}

/** Notes plug-in k's answer (or that it gave up) on this flow. */
void Engine::Record(Flow& f, size_t k, const Decision& d) {
  if (!d.label.empty()) {
    f.plugin_status[k] = 1;
    f.plugin_label[k] = Intern(d.label);
    f.plugin_master[k] = d.master.empty() ? 0 : Intern(d.master);
    f.plugin_confidence[k] = d.confidence;
  } else if (!(d.flags & Decision::Redo)) {
    f.plugin_status[k] = 2;
  }
}

/**
 * Priority combiner. Every plug-in still looking sees every packet (stateful ones such as nDPI must), and the
 * answer of the first plug-in in priority order decides — but only once no plug-in before it is still looking.
 * When all have given up the flow is Unknown. `final`: the flow has ended, nobody is looking any more.
 */
void Engine::Combine(Flow& f, bool final) {
  if (options_.combiner == "priority") return CombineByPriority(f, final);
  CombineByVote(f, final, options_.combiner == "weighted");
}

void Engine::CombineByPriority(Flow& f, bool final) {
  for (size_t k = 0; k < plugins_.size(); k++) {
    if (f.plugin_status[k] == 1) return Decided(f, f.plugin_label[k], f.plugin_confidence[k], static_cast<int>(k));
    if (f.plugin_status[k] == 0 && !final) return;  // a better plug-in may still answer: wait for it
  }
  Decided(f, 0, 0, -1);
}

/**
 * Majority and confidence-weighted votes. Weighted: an answer whose plug-in was right at least `early` of the time
 * for that very label in training decides at once (a label it was not trained on never does) — the cheap plug-ins' sure answers end the flow's inspection after a packet
 * or two, nDPI's packets are spent only where they are needed. Otherwise the vote waits for every plug-in still
 * looking (or the flow's end); each answer counts 1 (majority) or its learned precision times the confidence the
 * plug-in gave it (weighted: nDPI's inspection, confidence 100, outweighs a port-number guess at 40–60), ties go
 * to the earlier plug-in, and the confidence is the winner's share of the votes.
 */
void Engine::CombineByVote(Flow& f, bool final, bool weighted) {
  bool looking = false;
  for (size_t k = 0; k < plugins_.size(); k++) {
    if (f.plugin_status[k] == 0) looking = true;
    if (weighted && f.plugin_status[k] == 1 && Learned(k, f.plugin_label[k]) >= early_) {
      sure_ = true;
      return Decided(f, f.plugin_label[k], static_cast<uint8_t>(std::lround(100 * Weight(k, f.plugin_label[k]))), static_cast<int>(k));
    }
  }
  if (looking && !final) return;
  // An answer gathers the votes for its label and for the protocol it runs over: the port table's "TLS" supports
  // nDPI's "Google" (TLS to Google) rather than competing with it.
  double vote[kPluginSlots] = {0, 0, 0, 0}, score[kPluginSlots] = {0, 0, 0, 0}, total = 0;
  for (size_t k = 0; k < plugins_.size(); k++) {
    if (f.plugin_status[k] != 1) continue;
    vote[k] = weighted ? Weight(k, f.plugin_label[k]) * f.plugin_confidence[k] / 100.0 : 1;
    total += vote[k];
  }
  size_t best = kPluginSlots;
  for (size_t k = 0; k < plugins_.size(); k++) {
    if (f.plugin_status[k] != 1) continue;
    for (size_t j = 0; j < plugins_.size(); j++) {
      if (f.plugin_status[j] == 1 && (f.plugin_label[j] == f.plugin_label[k] || (f.plugin_master[k] != 0 && f.plugin_label[j] == f.plugin_master[k]))) score[k] += vote[j];
    }
    if (best == kPluginSlots || score[k] > score[best]) best = k;  // ties: the plug-in listed first
  }
  // Weighted: evidence too weak to name anything (say, a lone answer from a plug-in rarely right) leaves it Unknown.
  if (best == kPluginSlots || (weighted && score[best] < min_vote_)) return Decided(f, 0, 0, -1);
  Decided(f, f.plugin_label[best], static_cast<uint8_t>(std::lround(total > 0 ? std::min(1.0, score[best] / total) * 100 : 0)), static_cast<int>(best));
}

void Engine::Decide(Flow& f, const PacketInfo& p, int direction) {
  const bool weighted = options_.combiner == "weighted";
  for (size_t k = 0; k < plugins_.size(); k++) {
    if (f.plugin_status[k] != 0 || !plugins_[k]->Ready(f)) continue;
    Record(f, k, plugins_[k]->Classify(f, p, direction));
    // Weighted: a sure answer decides before the plug-ins after it (the dearer ones, listed cheap first) are asked.
    if (weighted && f.plugin_status[k] == 1 && Learned(k, f.plugin_label[k]) >= early_) {
      sure_ = true;
      return Decided(f, f.plugin_label[k], static_cast<uint8_t>(std::lround(100 * Learned(k, f.plugin_label[k]))), static_cast<int>(k));
    }
  }
  Combine(f, false);
}

void Engine::Finish() {
  const size_t before = done_.size();
  table_->Drain(done_);
  Conclude(before);
}

}  // namespace classifier
