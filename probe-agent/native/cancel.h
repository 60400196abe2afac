// Cancellation of running measurements: JavaScript calls cancel(id); the worker thread running that measurement
// (a traceroute) waits in poll() on its sockets and on the measurement's eventfd, so it wakes at once and stops. No
// periodic wake-ups. Ping trains share the ping engine's thread, which is woken by the engine instead: their
// cancel has no eventfd of its own.
#pragma once
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

namespace vantage {

class Cancel {
 public:
  explicit Cancel(bool with_fd) : fd_(with_fd ? eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) : -1) {}
  ~Cancel() {
    if (fd_ >= 0) close(fd_);
  }
  Cancel(const Cancel&) = delete;
  Cancel& operator=(const Cancel&) = delete;

  bool load() const { return requested_.load(); }
  void request() {
    requested_.store(true);
    const uint64_t one = 1;
    if (fd_ >= 0 && write(fd_, &one, sizeof one) < 0) { /* the flag alone still stops the run at its next wake-up */ }
  }

  /** poll() on fds[0..n) and this cancel's eventfd (n ≤ 3); the result counts only fds, as poll() does. */
  int poll(pollfd* fds, int n, int timeout_ms) const {
    pollfd all[4];
    for (int i = 0; i < n; i++) all[i] = fds[i];
    all[n] = {fd_, POLLIN, 0};
    const int r = ::poll(all, static_cast<nfds_t>(fd_ >= 0 ? n + 1 : n), timeout_ms);
    if (r <= 0) return r;
    int ready = 0;
    for (int i = 0; i < n; i++) ready += (fds[i].revents = all[i].revents) != 0;
    return ready;
  }

 private:
  std::atomic<bool> requested_{false};
  int fd_;
};

using CancelFlag = std::shared_ptr<Cancel>;

inline std::mutex& cancel_mutex() {
  static std::mutex m;
  return m;
}

inline std::map<int, CancelFlag>& cancel_flags() {
  static std::map<int, CancelFlag> flags;
  return flags;
}

/**
 * The cancel of measurement `id` (0 = not cancellable), registered until release(); `with_fd` for runs that wait in
 * Cancel::poll().
 */
inline CancelFlag cancel_register(int id, bool with_fd = true) {
  auto flag = std::make_shared<Cancel>(with_fd);
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
  it->second->request();
  return true;
}

}  // namespace vantage
