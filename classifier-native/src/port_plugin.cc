// port: the cheapest plug-in — the flow's server port looked up in a services table kept as data
// (data/services.tsv: protocol, port, nDPI application name). Decides on a flow's first packet.
#include <cstdlib>
#include <netinet/in.h>
#include <unordered_map>

#include "data_file.h"
#include "plugins.h"

namespace classifier {
namespace {

class PortPlugin : public Plugin {
 public:
  const char* name() const override { return "port"; }

  bool Load(const std::string& data_dir, std::string& error) override {
    return ReadDataFile(data_dir + "/services.tsv", "the services table", "", [&](const Fields& f, std::string& why) {
      char* end = nullptr;
      const unsigned long port = f.size() == 3 ? std::strtoul(f[1].c_str(), &end, 10) : 0;
      if (f.size() != 3 || *end != 0 || port > 65535 || (f[0] != "tcp" && f[0] != "udp") || f[2].empty()) {
        why = "expected \"tcp|udp<TAB>PORT<TAB>LABEL\"";
        return false;
      }
      table_[Key(f[0] == "tcp" ? IPPROTO_TCP : IPPROTO_UDP, static_cast<uint16_t>(port))] = f[2];
      return true;
    }, error);
  }

  // A flow that ended before a plug-in ahead of this one decided still gets the port's answer.
  Decision Conclude(Flow& f) override { return Lookup(f); }

  Decision Classify(Flow& f, const PacketInfo&, int) override { return Lookup(f); }

 private:
  Decision Lookup(const Flow& f) const {
    Decision d;
    d.flags = Decision::NoMore;  // the port never changes: one answer, right away
    if (f.proto != IPPROTO_TCP && f.proto != IPPROTO_UDP) return d;
    // The responder's port first (the service), then the initiator's (a server that spoke first).
    for (uint16_t port : {f.dport, f.sport}) {
      auto it = table_.find(Key(f.proto, port));
      if (it != table_.end()) {
        d.label = it->second;
        d.confidence = port == f.dport ? 60 : 40;
        return d;
      }
    }
    return d;
  }

  static uint32_t Key(uint8_t proto, uint16_t port) { return (static_cast<uint32_t>(proto) << 16) | port; }
  std::unordered_map<uint32_t, std::string> table_;
};

}  // namespace

std::unique_ptr<Plugin> MakePortPlugin() { return std::make_unique<PortPlugin>(); }

}  // namespace classifier
