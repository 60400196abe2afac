// Small socket helpers shared by the ping and traceroute code.
#pragma once
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

namespace vantage {

inline double now_ms() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/** Pointer to the data of the ancillary item (level, type) of a received message, or nullptr. */
inline const void* CmsgData(const msghdr& msg, int level, int type) {
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(const_cast<msghdr*>(&msg), c)) {
    if (c->cmsg_level == level && c->cmsg_type == type) return CMSG_DATA(c);
  }
  return nullptr;
}

/** The ancillary item (level, type) of a received message copied into `out`; false if absent. */
template <class T>
bool Cmsg(const msghdr& msg, int level, int type, T& out) {
  const void* data = CmsgData(msg, level, type);
  if (data != nullptr) std::memcpy(&out, data, sizeof out);
  return data != nullptr;
}

/** Kernel receive time of a message (SO_TIMESTAMPNS), else now; ms since the epoch. */
inline double Timestamp(const msghdr& msg) {
  timespec ts;
  return Cmsg(msg, SOL_SOCKET, SO_TIMESTAMPNS, ts) ? ts.tv_sec * 1e3 + ts.tv_nsec / 1e6 : now_ms();
}

/** One received packet with its sender and ancillary data (receive timestamp, TTL, extended errors). */
struct Datagram {
  uint8_t data[65536];
  char control[512];
  sockaddr_storage from{};
  iovec iov{};
  msghdr msg{};

  ssize_t Receive(int fd, int flags) {
    iov = {data, sizeof data};
    msg = {};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    return recvmsg(fd, &msg, flags | MSG_DONTWAIT);
  }

  template <class T>
  bool Cmsg(int level, int type, T& out) const { return vantage::Cmsg(msg, level, type, out); }
  const void* CmsgData(int level, int type) const { return vantage::CmsgData(msg, level, type); }
  double Timestamp() const { return vantage::Timestamp(msg); }

  std::string FromText() const {
    char buf[INET6_ADDRSTRLEN] = {0};
    if (from.ss_family == AF_INET6) inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&from)->sin6_addr, buf, sizeof buf);
    else inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&from)->sin_addr, buf, sizeof buf);
    return buf;
  }
};

/**
 * Parses `dst` as an address of `family` and finds the source address the kernel would use towards it (by
 * connecting a UDP socket, which sends nothing). False with `error` set when either fails.
 */
inline bool RouteTo(int family, const std::string& dst, sockaddr_storage& to, sockaddr_storage& src, std::string& src_text, std::string& error) {
  to = {};
  void* addr = family == AF_INET6 ? static_cast<void*>(&reinterpret_cast<sockaddr_in6*>(&to)->sin6_addr)
                                  : static_cast<void*>(&reinterpret_cast<sockaddr_in*>(&to)->sin_addr);
  if (inet_pton(family, dst.c_str(), addr) != 1) {
    error = std::string("not an IPv") + (family == AF_INET6 ? "6" : "4") + " address: " + dst;
    return false;
  }
  to.ss_family = static_cast<sa_family_t>(family);
  const socklen_t len = family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  sockaddr_storage probe = to;
  if (family == AF_INET6) reinterpret_cast<sockaddr_in6*>(&probe)->sin6_port = htons(53);
  else reinterpret_cast<sockaddr_in*>(&probe)->sin_port = htons(53);
  const int u = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (u < 0 || connect(u, reinterpret_cast<sockaddr*>(&probe), len) != 0) {
    error = std::string("no route to ") + dst + ": " + strerror(errno);
    if (u >= 0) close(u);
    return false;
  }
  socklen_t slen = sizeof src;
  getsockname(u, reinterpret_cast<sockaddr*>(&src), &slen);
  close(u);
  char buf[INET6_ADDRSTRLEN] = {0};
  if (family == AF_INET6) inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&src)->sin6_addr, buf, sizeof buf);
  else inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&src)->sin_addr, buf, sizeof buf);
  src_text = buf;
  return true;
}

}  // namespace vantage
