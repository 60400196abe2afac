// The plug-in contract (TIE's): classify a session → {label, confidence 0–100, flags}; REDO asks to be called
// again with more packets, NOMORE says this plug-in will never know. Plug-ins say when they are ready to decide for
// a flow and which features they read, and load their data at start-up. Training (TIE's "train") happens out of
// process: `npm run train:classifier` writes the versioned model files that Load reads, so a probe never trains.
#pragma once
#include <string>

#include "flow.h"

namespace classifier {

struct Decision {
  enum Flags : unsigned { None = 0, Redo = 1, NoMore = 2 };
  std::string label;        // nDPI application name; empty = no opinion
  std::string master;       // the protocol it runs over when `label` names an application (TLS for Google), or empty
  uint8_t confidence = 0;   // 0–100
  unsigned flags = None;
};

class Plugin {
 public:
  virtual ~Plugin() = default;
  virtual const char* name() const = 0;
  /** The features this plug-in reads (a Feature mask); the table keeps only what some plug-in needs. */
  virtual unsigned needs() const { return 0; }
  /** Loads the plug-in's data (services table, signatures, model); false with `error` set if it cannot. */
  virtual bool Load(const std::string& data_dir, std::string& error) = 0;
  /**
   * TIE's "ready": whether the plug-in can say anything about this flow yet (enough packets, the payload it needs);
   * until then Classify is not called for it. Default: always.
   */
  virtual bool Ready(const Flow&) const { return true; }
  /** Called for each packet of an undecided flow once Ready, after the flow was updated with it (direction 0 = up). */
  virtual Decision Classify(Flow& flow, const PacketInfo& packet, int direction) = 0;
  /** The flow has ended undecided: a last answer from what was seen (e.g. a guess); default none. */
  virtual Decision Conclude(Flow&) { return {}; }
  /** Frees this plug-in's state of a flow (Flow::plugin_state[slot]) when the flow ends; default: it keeps none. */
  virtual void Release(void*) {}
  /** The slot of Flow::plugin_state this plug-in may use, given at start-up. */
  size_t slot = 0;
};

}  // namespace classifier
