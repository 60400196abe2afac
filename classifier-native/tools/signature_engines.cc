// PCRE2-JIT against vectorscan for the signature plug-in, measured on the early payload of real flows: the rules of
// data/signatures.tsv are matched against every direction's first payload bytes of every flow of the given captures
// (as the plug-in does: first rule that matches, respecting its protocol and direction), by PCRE2-JIT one rule at a
// time and by one vectorscan block-mode database of all rules. Both must find the same rule for every prefix; the
// time per prefix is printed for each. Built and run by `npm run bench:classifier`.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <hs/hs.h>
#include <netinet/in.h>
#include <pcre2.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <string>
#include <vector>

#include "data_file.h"
#include "engine.h"

namespace {

struct Rule { int proto, direction; std::string pattern; pcre2_code* code = nullptr; };
struct Prefix { int proto, direction; const uint8_t* data; size_t len; };

/** The first rule that matches, PCRE2-JIT one rule at a time (as the plug-in does). */
int FirstPcre(const std::vector<Rule>& rules, const Prefix& p, pcre2_match_data* md) {
  for (size_t i = 0; i < rules.size(); i++) {
    const Rule& r = rules[i];
    if ((r.proto && r.proto != p.proto) || (r.direction >= 0 && r.direction != p.direction)) continue;
    if (pcre2_match(r.code, p.data, p.len, 0, 0, md, nullptr) >= 0) return static_cast<int>(i);
  }
  return -1;
}

struct ScanContext { const std::vector<Rule>* rules; const Prefix* p; int best; };

int OnMatch(unsigned id, unsigned long long, unsigned long long, unsigned, void* ctx) {
  auto* c = static_cast<ScanContext*>(ctx);
  const Rule& r = (*c->rules)[id];
  if ((r.proto && r.proto != c->p->proto) || (r.direction >= 0 && r.direction != c->p->direction)) return 0;
  if (c->best < 0 || static_cast<int>(id) < c->best) c->best = static_cast<int>(id);
  return 0;
}

int FirstHs(const std::vector<Rule>& rules, const Prefix& p, const hs_database_t* db, hs_scratch_t* scratch) {
  ScanContext c{&rules, &p, -1};
  hs_scan(db, reinterpret_cast<const char*>(p.data), static_cast<unsigned>(p.len), 0, scratch, OnMatch, &c);
  return c.best;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: signature_engines DATA_DIR CAPTURE…\n");
    return 2;
  }
  const std::string data = argv[1];
  std::vector<Rule> rules;
  std::string error;
  if (!classifier::ReadDataFile(data + "/signatures.tsv", "the signatures", "", [&](const classifier::Fields& f, std::string& why) {
        if (f.size() != 5) { why = "expected 5 fields"; return false; }
        rules.push_back({f[0] == "tcp" ? IPPROTO_TCP : f[0] == "udp" ? IPPROTO_UDP : 0, f[1] == "up" ? 0 : f[1] == "down" ? 1 : -1, f[2]});
        return true;
      }, error)) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  // Real early payload: every flow of the captures, through the engine (with the signature plug-in, so the flow
  // table keeps each direction's first payload bytes).
  classifier::Options o;
  o.data_dir = data;
  o.plugins = {"signature"};
  classifier::Engine engine;
  if (!engine.Init(o, error)) { std::fprintf(stderr, "%s\n", error.c_str()); return 1; }
  for (int i = 2; i < argc; i++) { engine.ProcessFile(argv[i], error); error.clear(); }
  engine.Finish();
  std::vector<Prefix> prefixes;
  for (const auto& f : engine.flows())
    for (int d = 0; d < 2; d++)
      if (f.prefix_len[d]) prefixes.push_back({f.proto, d, f.prefix[d], f.prefix_len[d]});
  if (prefixes.empty()) {
    std::fprintf(stderr, "no flow in these captures carried payload\n");
    return 1;
  }

  // PCRE2 with JIT, as the plug-in compiles them.
  pcre2_match_data* md = pcre2_match_data_create(4, nullptr);
  for (Rule& r : rules) {
    int code;
    PCRE2_SIZE offset;
    r.code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(r.pattern.c_str()), r.pattern.size(), PCRE2_DOTALL | PCRE2_NO_UTF_CHECK, &code, &offset, nullptr);
    if (!r.code) { std::fprintf(stderr, "pcre2: rule %s does not compile\n", r.pattern.c_str()); return 1; }
    pcre2_jit_compile(r.code, PCRE2_JIT_COMPLETE);
  }
  // One vectorscan database of every rule, ids = rule order.
  std::vector<const char*> patterns;
  std::vector<unsigned> flags, ids;
  for (size_t i = 0; i < rules.size(); i++) {
    patterns.push_back(rules[i].pattern.c_str());
    flags.push_back(HS_FLAG_DOTALL | HS_FLAG_SINGLEMATCH);
    ids.push_back(static_cast<unsigned>(i));
  }
  hs_database_t* db = nullptr;
  hs_compile_error_t* compile_error = nullptr;
  if (hs_compile_multi(patterns.data(), flags.data(), ids.data(), static_cast<unsigned>(rules.size()), HS_MODE_BLOCK, nullptr, &db, &compile_error) != HS_SUCCESS) {
    std::fprintf(stderr, "vectorscan: %s (rule %d)\n", compile_error->message, compile_error->expression);
    return 1;
  }
  hs_scratch_t* scratch = nullptr;
  hs_alloc_scratch(db, &scratch);

  size_t matched = 0;
  for (const Prefix& p : prefixes) {
    const int a = FirstPcre(rules, p, md), b = FirstHs(rules, p, db, scratch);
    if (a != b) { std::fprintf(stderr, "the engines disagree on a prefix: pcre2 rule %d, vectorscan rule %d\n", a, b); return 1; }
    matched += a >= 0;
  }
  const auto time = [&](auto&& scan) {
    constexpr int kRounds = 200;
    int sink = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < kRounds; r++)
      for (const Prefix& p : prefixes) sink += scan(p);
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    return ns / (static_cast<double>(kRounds) * static_cast<double>(prefixes.size())) + (sink == INT_MIN ? 1 : 0);
  };
  const double pcre = time([&](const Prefix& p) { return FirstPcre(rules, p, md); });
  const double hs = time([&](const Prefix& p) { return FirstHs(rules, p, db, scratch); });
  std::printf("{\"rules\":%zu,\"prefixes\":%zu,\"matched\":%zu,\"pcre2_jit_ns\":%.1f,\"vectorscan_ns\":%.1f}\n", rules.size(), prefixes.size(), matched, pcre, hs);
  hs_free_scratch(scratch);
  hs_free_database(db);
  for (Rule& r : rules) pcre2_code_free(r.code);
  pcre2_match_data_free(md);
  return 0;
}
