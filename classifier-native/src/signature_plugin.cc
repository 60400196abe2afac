// signature: patterns over each direction's first payload bytes, from a rule file kept as data
// (data/signatures.tsv), all compiled into one vectorscan (Hyperscan) database and matched in one pass — chosen by
// measurement over PCRE2-JIT one rule at a time (tools/signature_engines.cc, in npm run bench:classifier: 25 ns
// against 105 ns per prefix, same answers). Decides as soon as a rule matches; gives up after a few payload packets
// each way.
#include <hs/hs.h>

#include <netinet/in.h>
#include <cstdlib>
#include <vector>

#include "data_file.h"
#include "plugins.h"

namespace classifier {
namespace {

/** Payload packets per direction after which the signatures have seen all they will. */
constexpr uint32_t kPayloadPackets = 4;

struct Rule {
  int proto;      // IPPROTO_TCP, IPPROTO_UDP, or 0 for any
  int direction;  // 0 up, 1 down, -1 any
  std::string label;
  uint8_t confidence;
};

class SignaturePlugin : public Plugin {
 public:
  ~SignaturePlugin() override {
    hs_free_scratch(scratch_);
    hs_free_database(db_);
  }

  const char* name() const override { return "signature"; }
  unsigned needs() const override { return kNeedsPayload; }

  bool Load(const std::string& data_dir, std::string& error) override {
    std::vector<std::string> patterns;
    const bool read = ReadDataFile(data_dir + "/signatures.tsv", "the signatures", "", [&](const Fields& f, std::string& why) {
      const auto bad = [&](const std::string& what) { why = what; return false; };
      if (f.size() != 5) return bad("expected 5 tab-separated fields: proto, direction, pattern, label, confidence");
      Rule r{};
      r.proto = f[0] == "tcp" ? IPPROTO_TCP : f[0] == "udp" ? IPPROTO_UDP : f[0] == "any" ? 0 : -1;
      r.direction = f[1] == "up" ? 0 : f[1] == "down" ? 1 : f[1] == "any" ? -1 : -2;
      if (r.proto < 0) return bad("protocol must be tcp, udp or any");
      if (r.direction < -1) return bad("direction must be up, down or any");
      char* end = nullptr;
      const long confidence = std::strtol(f[4].c_str(), &end, 10);
      if (*end != 0 || confidence < 0 || confidence > 100) return bad("confidence must be a whole number 0-100");
      // Each pattern on its own first, so a bad one is named by its line.
      hs_database_t* one = nullptr;
      hs_compile_error_t* e = nullptr;
      if (hs_compile(f[2].c_str(), kFlags, HS_MODE_BLOCK, nullptr, &one, &e) != HS_SUCCESS) {
        const std::string message = e->message;
        hs_free_compile_error(e);
        return bad("pattern: " + message);
      }
      hs_free_database(one);
      r.label = f[3];
      r.confidence = static_cast<uint8_t>(confidence);
      rules_.push_back(r);
      patterns.push_back(f[2]);
      return true;
    }, error);
    if (!read) return false;
    if (rules_.empty()) return true;
    std::vector<const char*> expressions;
    std::vector<unsigned> flags(rules_.size(), kFlags), ids;
    for (size_t i = 0; i < rules_.size(); i++) {
      expressions.push_back(patterns[i].c_str());
      ids.push_back(static_cast<unsigned>(i));
    }
    hs_compile_error_t* e = nullptr;
    if (hs_compile_multi(expressions.data(), flags.data(), ids.data(), static_cast<unsigned>(rules_.size()), HS_MODE_BLOCK, nullptr, &db_, &e) != HS_SUCCESS ||
        hs_alloc_scratch(db_, &scratch_) != HS_SUCCESS) {
      error = data_dir + "/signatures.tsv: " + (e ? e->message : "cannot allocate vectorscan scratch space");
      if (e) hs_free_compile_error(e);
      return false;
    }
    return true;
  }

  Decision Classify(Flow& f, const PacketInfo& p, int direction) override {
    Decision d;
    if (p.payload_len > 0 && Match(f, direction, d)) return d;
    d.flags = f.payload_packets[0] >= kPayloadPackets && f.payload_packets[1] >= kPayloadPackets ? Decision::NoMore : Decision::Redo;
    return d;
  }

  /** At a flow's end, whatever early payload it had, either way. */
  Decision Conclude(Flow& f) override {
    Decision d;
    if (!Match(f, 0, d)) Match(f, 1, d);
    return d;
  }

 private:
  static constexpr unsigned kFlags = HS_FLAG_DOTALL | HS_FLAG_SINGLEMATCH;

  struct Scan {
    const std::vector<Rule>* rules;
    int proto, direction, first;  // first: the earliest rule in file order that matched (-1 none)
  };

  static int OnMatch(unsigned id, unsigned long long, unsigned long long, unsigned, void* context) {
    auto* s = static_cast<Scan*>(context);
    const Rule& r = (*s->rules)[id];
    if ((r.proto && r.proto != s->proto) || (r.direction >= 0 && r.direction != s->direction)) return 0;
    if (s->first < 0 || static_cast<int>(id) < s->first) s->first = static_cast<int>(id);
    return 0;
  }

  /** The first rule in file order that matches this direction's early payload: the plug-in's answer. */
  bool Match(const Flow& f, int direction, Decision& d) {
    if (f.prefix_len[direction] == 0 || !db_) return false;
    Scan s{&rules_, f.proto, direction, -1};
    hs_scan(db_, reinterpret_cast<const char*>(f.prefix[direction]), f.prefix_len[direction], 0, scratch_, OnMatch, &s);
    if (s.first < 0) return false;
    d.label = rules_[s.first].label;
    d.confidence = rules_[s.first].confidence;
    return true;
  }

  std::vector<Rule> rules_;
  hs_database_t* db_ = nullptr;
  hs_scratch_t* scratch_ = nullptr;
};

}  // namespace

std::unique_ptr<Plugin> MakeSignaturePlugin() { return std::make_unique<SignaturePlugin>(); }

}  // namespace classifier
