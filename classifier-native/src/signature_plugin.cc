// signature: PCRE2 (JIT) patterns over each direction's first payload bytes, from a rule file kept as data
// (data/signatures.tsv). Decides as soon as a rule matches; gives up after a few payload packets each way.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

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
  pcre2_code* code;
  std::string label;
  uint8_t confidence;
};

class SignaturePlugin : public Plugin {
 public:
  ~SignaturePlugin() override {
    for (Rule& r : rules_) pcre2_code_free(r.code);
    if (match_) pcre2_match_data_free(match_);
  }

  const char* name() const override { return "signature"; }

  bool Load(const std::string& data_dir, std::string& error) override {
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
      int code;
      PCRE2_SIZE offset;
      r.code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(f[2].c_str()), f[2].size(), PCRE2_DOTALL | PCRE2_NO_UTF_CHECK, &code, &offset, nullptr);
      if (!r.code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return bad("pattern: " + std::string(reinterpret_cast<char*>(msg)) + " at offset " + std::to_string(offset));
      }
      pcre2_jit_compile(r.code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter where JIT is unavailable
      r.label = f[3];
      r.confidence = static_cast<uint8_t>(confidence);
      rules_.push_back(r);
      return true;
    }, error);
    if (!read) return false;
    match_ = pcre2_match_data_create(4, nullptr);
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
  bool Match(const Flow& f, int direction, Decision& d) {
    if (f.prefix_len[direction] == 0) return false;
    for (const Rule& r : rules_) {
      if ((r.proto && r.proto != f.proto) || (r.direction >= 0 && r.direction != direction)) continue;
      if (pcre2_match(r.code, f.prefix[direction], f.prefix_len[direction], 0, 0, match_, nullptr) >= 0) {
        d.label = r.label;
        d.confidence = r.confidence;
        return true;
      }
    }
    return false;
  }

 public:

 private:
  std::vector<Rule> rules_;
  pcre2_match_data* match_ = nullptr;
};

}  // namespace

std::unique_ptr<Plugin> MakeSignaturePlugin() { return std::make_unique<SignaturePlugin>(); }

}  // namespace classifier
