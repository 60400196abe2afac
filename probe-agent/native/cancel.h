// Cancellation of running measurements: JavaScript calls cancel(id); the worker thread running that measurement
// sees its flag at its next poll slice (≤ 50 ms) and stops.
#pragma once
#include <atomic>
#include <map>
#include <memory>
#include <mutex>

namespace vantage {

using CancelFlag = std::shared_ptr<std::atomic<bool>>;

inline std::mutex& cancel_mutex() {
  static std::mutex m;
  return m;
}

inline std::map<int, CancelFlag>& cancel_flags() {
  static std::map<int, CancelFlag> flags;
  return flags;
}

/** The flag of measurement `id` (0 = not cancellable), registered until release(). */
inline CancelFlag cancel_register(int id) {
  auto flag = std::make_shared<std::atomic<bool>>(false);
  if (id == 0) return flag;
  std::lock_guard<std::mutex> lock(cancel_mutex());
  cancel_flags()[id] = flag;
  return flag;
}

inline void cancel_release(int id) {
  std::lock_guard<std::mutex> lock(cancel_mutex());
  cancel_flags().erase(id);
}

inline bool cancel_request(int id) {
  std::lock_guard<std::mutex> lock(cancel_mutex());
  auto it = cancel_flags().find(id);
  if (it == cancel_flags().end()) return false;
  it->second->store(true);
  return true;
}

/** Poll slice: long waits are cut into pieces this long so a cancel is seen promptly. */
constexpr int kSliceMs = 50;

}  // namespace vantage
