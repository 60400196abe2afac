// The data files of the plug-ins and the combiner (services.tsv, signatures.tsv, statistical.tsv, weights.tsv): lines
// of tab-separated fields; blank lines and lines starting with '#' are skipped. Errors name the file and the line.
#pragma once
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace classifier {

/** A data line's fields. */
using Fields = std::vector<std::string>;

/**
 * Calls row(fields, why) for every data line of `path`; a row that returns false stops the read with
 * "<path>:<line>: <why>". `what` names the file in the error when it cannot be read. `format`, when not empty, must
 * begin a comment line ("# <format> …"): a model file says which format it is in, so an old one is refused.
 */
inline bool ReadDataFile(const std::string& path, const std::string& what, const std::string& format,
                         const std::function<bool(const Fields&, std::string&)>& row, std::string& error) {
  std::ifstream in(path);
  if (!in) {
    error = path + ": cannot read " + what;
    return false;
  }
  bool versioned = format.empty();
  std::string line;
  for (int n = 1; std::getline(in, line); n++) {
    if (!format.empty() && line.rfind("# " + format, 0) == 0) versioned = true;
    if (line.empty() || line[0] == '#') continue;
    Fields f;
    for (size_t at = 0;;) {
      const size_t tab = line.find('\t', at);
      f.push_back(line.substr(at, tab == std::string::npos ? std::string::npos : tab - at));
      if (tab == std::string::npos) break;
      at = tab + 1;
    }
    std::string why;
    if (!row(f, why)) {
      error = path + ":" + std::to_string(n) + ": " + why;
      return false;
    }
  }
  if (!versioned) {
    error = path + ": not in format \"" + format + "\" (it lacks the line \"# " + format + " …\")";
    return false;
  }
  return true;
}

}  // namespace classifier
