// The statistical plug-in: a decision tree over a flow's first packets — the transport protocol, the signed IP sizes
// of its first kEarlyPackets packets carrying payload (+ up, − down) and the time before each — trained by classifier-native/train.ts
// from labelled captures and loaded from data/statistical.tsv. It answers once it has seen that many packets (or
// when the flow ends with fewer), with the leaf's share of its training flows as confidence.
//
// statistical.tsv (format 1):
//   # vantage-classifier-statistical 1 …                     (format version, provenance)
//   split<TAB>id<TAB>feature<TAB>threshold<TAB>left<TAB>right   (feature 0: proto; 1…6: sizes; 7…12: gaps in ms;
//                                                             ≤ threshold: left)
//   leaf<TAB>id<TAB>label<TAB>confidence<TAB>samples
#include <cstdlib>
#include <vector>

#include "data_file.h"
#include "plugins.h"

namespace classifier {
namespace {

/** Below this share of its training flows a leaf is not an answer. */
constexpr int kMinConfidence = 50;

struct Node {
  bool leaf = false;
  int feature = 0;
  double threshold = 0;
  int left = -1, right = -1;
  std::string label;
  uint8_t confidence = 0;
};

class StatisticalPlugin : public Plugin {
 public:
  const char* name() const override { return "statistical"; }
  unsigned needs() const override { return kNeedsEarlyPackets; }

  bool Load(const std::string& data_dir, std::string& error) override {
    const std::string path = data_dir + "/statistical.tsv";
    const bool read = ReadDataFile(path, "the statistical plug-in's model (make it with npm run train:classifier)", "vantage-classifier-statistical 1",
                                   [&](const Fields& f, std::string& why) {
      Node node;
      long id = f.size() > 1 ? std::strtol(f[1].c_str(), nullptr, 10) : -1;
      if (f.size() == 6 && f[0] == "split") {
        node.feature = std::atoi(f[2].c_str());
        node.threshold = std::strtod(f[3].c_str(), nullptr);
        node.left = std::atoi(f[4].c_str());
        node.right = std::atoi(f[5].c_str());
      } else if (f.size() == 5 && f[0] == "leaf") {
        node.leaf = true;
        node.label = f[2];
        node.confidence = static_cast<uint8_t>(std::atoi(f[3].c_str()));
      } else {
        id = -1;
      }
      if (id < 0 || id > 1'000'000 || node.feature < 0 || node.feature > static_cast<int>(2 * kEarlyPackets)) {
        why = "expected \"split<TAB>id<TAB>feature<TAB>threshold<TAB>left<TAB>right\" or \"leaf<TAB>id<TAB>label<TAB>confidence<TAB>samples\"";
        return false;
      }
      if (nodes_.size() <= static_cast<size_t>(id)) nodes_.resize(id + 1);
      nodes_[id] = node;
      return true;
    }, error);
    if (!read) return false;
    // Every split must lead to nodes that exist, deeper than itself: no loops, no holes.
    for (size_t i = 0; i < nodes_.size(); i++) {
      const Node& x = nodes_[i];
      if (!x.leaf && (x.left <= static_cast<int>(i) || x.right <= static_cast<int>(i) ||
                      x.left >= static_cast<int>(nodes_.size()) || x.right >= static_cast<int>(nodes_.size()))) {
        error = path + ": node " + std::to_string(i) + " points to a node that does not follow it";
        return false;
      }
    }
    if (nodes_.empty()) {
      error = path + ": the tree has no nodes";
      return false;
    }
    return true;
  }

  /** Its features are the first kEarlyPackets packets with payload: it is ready when it has them all. */
  bool Ready(const Flow& f) const override { return f.early_count >= kEarlyPackets; }

  Decision Classify(Flow& f, const PacketInfo&, int) override { return Evaluate(f); }

  Decision Conclude(Flow& f) override { return f.early_count > 0 ? Evaluate(f) : Decision{}; }

 private:
  std::vector<Node> nodes_;

  Decision Evaluate(const Flow& f) const {
    double x[2 * kEarlyPackets + 1];
    x[0] = f.proto;
    for (size_t i = 0; i < kEarlyPackets; i++) {
      x[i + 1] = i < f.early_count ? f.early_sizes[i] : 0;
      x[i + 1 + kEarlyPackets] = i < f.early_count ? f.early_gaps_ms[i] : 0;
    }
    size_t at = 0;
    while (!nodes_[at].leaf) at = static_cast<size_t>(x[nodes_[at].feature] <= nodes_[at].threshold ? nodes_[at].left : nodes_[at].right);
    const Node& leaf = nodes_[at];
    Decision d;
    d.flags = Decision::NoMore;
    if (leaf.label != "Unknown" && leaf.confidence >= kMinConfidence) {
      d.label = leaf.label;
      d.confidence = leaf.confidence;
    }
    return d;
  }
};

}  // namespace

std::unique_ptr<Plugin> MakeStatisticalPlugin() { return std::make_unique<StatisticalPlugin>(); }

}  // namespace classifier
