#include "engine.h"

#include <pcap/pcap.h>

#include "plugins.h"

namespace classifier {

bool Engine::Init(const Options& options, std::string& error) {
  options_ = options;
  table_ = std::make_unique<FlowTable>(options.max_flows);
  for (const std::string& name : options.plugins) {
    std::unique_ptr<Plugin> p;
    if (name == "port") p = MakePortPlugin();
    if (!p) {
      error = "unknown plug-in \"" + name + "\" (available: port)";
      return false;
    }
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
    table_->Expire(ts, options_.tcp_idle, options_.udp_idle, done_);
    last_expiry_ = ts;
  }
  int direction;
  const size_t before = done_.size();
  Flow& f = table_->Track(p, direction, done_);
  stats_.evicted += done_.size() - before;
  if (f.total_packets() == 1) stats_.flows++;
  if (!f.decided) Decide(f, p);
}

/** Priority combiner: plug-ins in the order given (cheap first); the first answer decides. */
void Engine::Decide(Flow& f, const PacketInfo& p) {
  bool anyone_waiting = false;
  for (auto& plugin : plugins_) {
    Decision d = plugin->Classify(f, p);
    if (!d.label.empty()) {
      f.decided = true;
      f.label = d.label;
      f.confidence = d.confidence;
      f.plugin = plugin->name();
      f.packets_to_decision = f.total_packets();
      return;
    }
    if (d.flags & Decision::Redo) anyone_waiting = true;
  }
  if (!anyone_waiting) {  // nobody will ever know: Unknown, decided now
    f.decided = true;
    f.packets_to_decision = f.total_packets();
  }
}

void Engine::Finish() { table_->Drain(done_); }

}  // namespace classifier
