// The whole pipeline without Node, over capture files: for sanitizer and Valgrind runs (check-captures.sh).
//   captures <data dir> <plugins comma-separated> <combiner> <capture…>
#include <cstdio>
#include <sstream>

#include "engine.h"

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: captures DATA_DIR PLUGINS COMBINER CAPTURE…\n");
    return 2;
  }
  classifier::Options o;
  o.data_dir = argv[1];
  o.plugins.clear();
  std::stringstream list(argv[2]);
  for (std::string p; std::getline(list, p, ',');) o.plugins.push_back(p);
  o.combiner = argv[3];
  o.timing = true;
  classifier::Engine engine;
  std::string error;
  if (!engine.Init(o, error)) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  for (int i = 4; i < argc; i++) {
    if (!engine.ProcessFile(argv[i], error)) std::fprintf(stderr, "%s\n", error.c_str());
    error.clear();
  }
  engine.End();
  const auto& s = engine.stats();
  std::printf("%llu packets, %llu flows, %zu records\n", static_cast<unsigned long long>(s.decode.packets),
              static_cast<unsigned long long>(s.flows), engine.flows().size());
  return 0;
}
