// traceroute for the probe agent (IPv4). With CAP_NET_RAW it uses raw sockets (all three protocols); without, UDP
// and (where net.ipv4.ping_group_range allows) ICMP over ordinary datagram sockets that read the ICMP errors their
// probes caused from the socket's error queue (IP_RECVERR), as tracepath does.
//
// Probes are whole IPv4 packets we build (IP_HDRINCL): TTL, DF and the IP ID are ours, and the IP ID identifies
// each probe in the ICMP errors that quote it. ICMP echo, UDP and TCP SYN probes. In Paris mode every probe of a
// run carries the same flow identifiers a load balancer hashes (ports; for ICMP the checksum, kept constant by
// compensating in the payload), so all probes follow one path; classic mode varies them as traceroute(8) does.
// Replies are read from a raw ICMP socket (time exceeded, unreachable, echo reply) and a raw TCP socket
// (SYN-ACK/RST from the destination), with kernel receive timestamps.
#include <napi.h>

#include "cancel.h"
#include "thread_job.h"
#include "net.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <linux/errqueue.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace {

enum class Proto { ICMP, UDP, TCP };

struct TraceSpec {
  Proto proto = Proto::ICMP;
  std::string dst;
  int first_hop = 1;
  int max_hops = 32;
  int packets = 3;
  int size = 48;             // bytes of the probe after the IP header
  int port = 80;             // UDP base destination port / TCP destination port
  int paris = 16;            // 0 = classic, else the flow id
  int response_timeout = 1000;
  bool dont_fragment = false;
  int cancel_id = 0;
};

struct Reply {
  int hop = 0;
  int probe = 0;           // index within the hop
  bool timeout = true;
  std::string from;
  double rtt_ms = 0;
  int size = 0;            // ICMP (or TCP) message length of the reply
  int ttl = 0;             // TTL of the reply
  int ittl = -1;           // TTL left in the quoted probe (-1 if none)
  int icmp_type = -1;
  int icmp_code = -1;
  bool from_destination = false;
  int tcp_flags = 0;       // for TCP replies from the destination
  int late = 0;            // > 0: a reply to this probe that came this many probes after it had timed out
  std::vector<uint8_t> ext;  // RFC 4884 extension structure of an ICMP error (e.g. MPLS labels), raw
  bool rfc4884 = false;      // the error said where its extensions start (else the pre-4884 offset 128 was used)

  /** A probe not (yet) answered. */
  static Reply Timeout(int hop, int probe) {
    Reply r;
    r.hop = hop;
    r.probe = probe;
    return r;
  }
};

/**
 * The extension structure of an ICMP(v6) error, if it carries one (RFC 4884; RFC 4950 MPLS label stacks ride in it).
 * `length` is the error's "length of original datagram" field in `unit`-byte words (4 for ICMP, 8 for ICMPv6);
 * zero means a pre-RFC 4884 sender, whose extensions, if any, follow 128 bytes of original datagram.
 */
void ExtractExtensions(const uint8_t* icmp, size_t len, int length, int unit, Reply& r) {
  const size_t at = 8 + static_cast<size_t>(length ? length * unit : 128);
  if (len < at + 4 || (icmp[at] >> 4) != 2) return;  // extension version 2
  r.ext.assign(icmp + at, icmp + len);
  r.rfc4884 = length != 0;
}

struct TraceOutcome {
  std::string src_addr;
  std::vector<Reply> replies;
  std::string error;
};

using vantage::Datagram;
using vantage::now_ms;

uint32_t sum16(const uint8_t* d, size_t len, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < len; i += 2) sum += (d[i] << 8) | d[i + 1];
  if (len & 1) sum += d[len - 1] << 8;
  return sum;
}

uint16_t fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum & 0xffff);
}

void put16(uint8_t* p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }
uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

/** The hop loop shared by both ways of probing: TTL by TTL, `packets` probes each, until the target answers. */
class HopLoop {
 public:
  HopLoop(const TraceSpec& s, vantage::CancelFlag cancelled) : spec_(s), cancelled_(std::move(cancelled)) {}
  virtual ~HopLoop() = default;

  TraceOutcome Run() {
    TraceOutcome out;
    if (!SourceAddress(out) || !Open(out)) return out;
    for (int hop = spec_.first_hop; hop <= spec_.max_hops; hop++) {
      bool reached = false;
      for (int i = 0; i < spec_.packets; i++) {
        if (cancelled_->load()) {
          out.error = "cancelled";
          return out;
        }
        Reply r = Probe(hop, i);
        reached = reached || r.from_destination;
        out.replies.push_back(r);
        for (Reply& l : late_) out.replies.push_back(std::move(l));
        late_.clear();
      }
      if (reached) break;
    }
    return out;
  }

 protected:
  virtual bool Open(TraceOutcome& out) = 0;
  virtual Reply Probe(int hop, int index) = 0;

  /** Parses the target and finds the source address the kernel would use towards it. */
  virtual bool SourceAddress(TraceOutcome& out) {
    sockaddr_storage to, from;
    if (!vantage::RouteTo(AF_INET, spec_.dst, to, from, out.src_addr, out.error)) return false;
    std::memcpy(&dst_, &to, sizeof dst_);
    std::memcpy(&src_, &from, sizeof src_);
    ident_ = static_cast<uint16_t>((getpid() * 2654435761u) ^ static_cast<uint32_t>(now_ms()));
    return true;
  }

  /** Remaining wait for this probe in ms; -1 when its time is up or the run is cancelled. */
  int Remaining(double deadline) const {
    const int wait = static_cast<int>(deadline - now_ms());
    return wait < 0 || cancelled_->load() ? -1 : wait + 1;
  }

  TraceSpec spec_;
  vantage::CancelFlag cancelled_;
  std::vector<Reply> late_;            // replies to earlier probes that arrived after their time was up
  std::vector<std::pair<int, int>> probes_;  // seq → (hop, index within the hop)
  sockaddr_in dst_{}, src_{};
  uint16_t ident_ = 0;
  int seq_ = 0;
};

/** Raw sockets (CAP_NET_RAW): whole IPv4 probes, so the IP ID names each one in the quoted headers. */
class Tracer : public HopLoop {
 public:
  using HopLoop::HopLoop;
  ~Tracer() override {
    for (int fd : {send_fd_, icmp_fd_, tcp_fd_}) if (fd >= 0) close(fd);
  }

  /** Opens the raw sockets; false with errno EPERM/EACCES when the process may not. */
  bool Available() {
    send_fd_ = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
    return send_fd_ >= 0;
  }

 private:
  bool Open(TraceOutcome& out) override {
    icmp_fd_ = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
    if (spec_.proto == Proto::TCP) tcp_fd_ = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_TCP);
    if (send_fd_ < 0 || icmp_fd_ < 0 || (spec_.proto == Proto::TCP && tcp_fd_ < 0)) {
      out.error = errno == EPERM || errno == EACCES ? "traceroute needs CAP_NET_RAW (raw sockets)" : std::string("socket: ") + strerror(errno);
      return false;
    }
    int on = 1;
    setsockopt(icmp_fd_, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
    if (tcp_fd_ >= 0) setsockopt(tcp_fd_, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
    ip_id_base_ = static_cast<uint16_t>(ident_ * 7919u);
    return true;
  }

  // Flow identifiers: constant in Paris mode, varied per probe (as traceroute(8)) in classic mode.
  uint16_t SrcPort(int seq) const { return static_cast<uint16_t>(spec_.paris ? 33000 + spec_.paris : 33000 + (ident_ % 1000) + seq % 64); }
  uint16_t DstPort(int seq) const {
    if (spec_.proto == Proto::TCP) return static_cast<uint16_t>(spec_.port);
    return static_cast<uint16_t>(spec_.paris ? spec_.port : spec_.port + seq);
  }

  std::vector<uint8_t> Build(int ttl, int seq, uint16_t ip_id) const {
    const int l4 = spec_.proto == Proto::TCP ? 20 : (spec_.size < 8 ? 8 : spec_.size);
    std::vector<uint8_t> p(20 + static_cast<size_t>(l4), 0);
    p[0] = 0x45;
    put16(&p[2], static_cast<uint16_t>(p.size()));
    put16(&p[4], ip_id);
    if (spec_.dont_fragment) p[6] = 0x40;
    p[8] = static_cast<uint8_t>(ttl);
    p[9] = spec_.proto == Proto::ICMP ? IPPROTO_ICMP : spec_.proto == Proto::UDP ? IPPROTO_UDP : IPPROTO_TCP;
    std::memcpy(&p[12], &src_.sin_addr, 4);
    std::memcpy(&p[16], &dst_.sin_addr, 4);
    uint8_t* h = &p[20];
    const size_t n = static_cast<size_t>(l4);
    uint32_t pseudo = sum16(&p[12], 8) + p[9] + static_cast<uint32_t>(n);
    switch (spec_.proto) {
      case Proto::ICMP: {
        h[0] = 8;  // echo request
        put16(&h[4], ident_);
        put16(&h[6], static_cast<uint16_t>(seq));
        // Paris: make the checksum the same for every seq by balancing it in the first payload word.
        if (spec_.paris && n >= 10) put16(&h[8], static_cast<uint16_t>(0xffff - seq));
        put16(&h[2], fold(sum16(h, n)));
        break;
      }
      case Proto::UDP: {
        put16(&h[0], SrcPort(seq));
        put16(&h[2], DstPort(seq));
        put16(&h[4], static_cast<uint16_t>(n));
        uint16_t c = fold(sum16(h, n, pseudo));
        put16(&h[6], c ? c : 0xffff);
        break;
      }
      case Proto::TCP: {
        put16(&h[0], SrcPort(seq));
        put16(&h[2], DstPort(seq));
        const uint32_t isn = (static_cast<uint32_t>(ident_) << 16) | static_cast<uint16_t>(seq);
        h[4] = isn >> 24; h[5] = (isn >> 16) & 0xff; h[6] = (isn >> 8) & 0xff; h[7] = isn & 0xff;
        h[12] = 5 << 4;   // data offset
        h[13] = 0x02;     // SYN
        put16(&h[14], 65535);
        put16(&h[16], fold(sum16(h, n, pseudo)));
        break;
      }
    }
    ip_checksum(p);
    return p;
  }

  static void ip_checksum(std::vector<uint8_t>& p) { put16(&p[10], fold(sum16(p.data(), 20))); }

  Reply Probe(int hop, int index) override {
    const int seq = seq_++;
    const uint16_t ip_id = static_cast<uint16_t>(ip_id_base_ + seq);
    Reply r = Reply::Timeout(hop, index);
    std::vector<uint8_t> pkt = Build(hop, seq, ip_id);
    probes_.emplace_back(hop, index);
    const double sent = now_ms();
    if (sendto(send_fd_, pkt.data(), pkt.size(), 0, reinterpret_cast<const sockaddr*>(&dst_), sizeof dst_) < 0) {
      return r;
    }
    const double deadline = sent + spec_.response_timeout;
    for (;;) {
      const int wait = Remaining(deadline);
      if (wait < 0) break;
      pollfd fds[2] = {{icmp_fd_, POLLIN, 0}, {tcp_fd_, POLLIN, 0}};
      const int n = cancelled_->poll(fds, tcp_fd_ >= 0 ? 2 : 1, wait);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) continue;
      for (int f = 0; f < 2; f++) {
        if (!(fds[f].revents & POLLIN)) continue;
        Reply got = r;
        int matched_seq = -1;
        if (!Read(fds[f].fd, f == 1, sent, got, matched_seq)) continue;
        if (matched_seq == seq) return got;
        // A reply to an earlier probe that had already timed out: reported as late, without an RTT.
        if (matched_seq >= 0 && matched_seq < seq) {
          got.hop = probes_[static_cast<size_t>(matched_seq)].first;
          got.probe = probes_[static_cast<size_t>(matched_seq)].second;
          got.late = seq - matched_seq;
          late_.push_back(std::move(got));
        }
      }
    }
    return r;
  }

  // Reads one packet; true if it answers one of our probes (matched_seq says which).
  bool Read(int fd, bool tcp, double sent, Reply& r, int& matched_seq) {
    Datagram d;
    const ssize_t n = d.Receive(fd, 0);
    if (n < 20) return false;
    const uint8_t* buf = d.data;
    const double rx = d.Timestamp();
    const size_t ihl = (buf[0] & 0x0f) * 4u;
    if (static_cast<size_t>(n) < ihl + 8) return false;
    const uint8_t* l4 = buf + ihl;
    const size_t l4len = static_cast<size_t>(n) - ihl;
    const std::string addr = d.FromText();
    const sockaddr_in& from = *reinterpret_cast<const sockaddr_in*>(&d.from);
    const bool from_dst = from.sin_addr.s_addr == dst_.sin_addr.s_addr;
    auto fill = [&](int seq) {
      matched_seq = seq;
      r.timeout = false;
      r.from = addr;
      r.rtt_ms = rx - sent;
      r.size = static_cast<int>(l4len);
      r.ttl = buf[8];
    };
    if (tcp) {
      // SYN-ACK or RST from the destination, to our port, acknowledging our sequence number + 1.
      if (!from_dst) return false;
      const uint32_t ack = (static_cast<uint32_t>(l4[8]) << 24) | (l4[9] << 16) | (l4[10] << 8) | l4[11];
      const uint32_t isn = ack - 1;
      if ((isn >> 16) != ident_) return false;
      fill(static_cast<int>(isn & 0xffff));
      r.from_destination = true;
      r.tcp_flags = l4[13];
      return true;
    }
    const int type = l4[0], code = l4[1];
    if (type == 0) {  // echo reply: ours if it carries our identifier
      if (spec_.proto != Proto::ICMP || get16(&l4[4]) != ident_) return false;
      fill(get16(&l4[6]));
      r.icmp_type = 0;
      r.icmp_code = 0;
      r.from_destination = true;
      return true;
    }
    if (type != 11 && type != 3) return false;
    // Time exceeded / unreachable: the quoted IP header names our probe by its IP ID.
    if (l4len < 8 + 20) return false;
    const uint8_t* q = l4 + 8;
    if (std::memcmp(&q[16], &dst_.sin_addr, 4) != 0) return false;
    const int qseq = static_cast<uint16_t>(get16(&q[4]) - ip_id_base_);
    if (qseq < 0 || qseq >= seq_) return false;
    fill(qseq);
    r.icmp_type = type;
    r.icmp_code = code;
    r.ittl = q[8];
    ExtractExtensions(l4, l4len, l4[5], 4, r);
    r.from_destination = from_dst || type == 3;
    return true;
  }

  int send_fd_ = -1, icmp_fd_ = -1, tcp_fd_ = -1;
  uint16_t ip_id_base_ = 0;
};

/**
 * Without CAP_NET_RAW: an ordinary UDP socket, or an ICMP "ping socket", with IP_RECVERR. The kernel hands each
 * ICMP error our probe caused to the socket's error queue, with the router's address and the quoted payload,
 * where the probe's sequence number sits. Paris keeps ports fixed and balances the payload so the checksum, too,
 * stays the same for every probe.
 */
class DgramTracer : public HopLoop {
 public:
  using HopLoop::HopLoop;
  ~DgramTracer() override { if (fd_ >= 0) close(fd_); }

 private:
  bool Open(TraceOutcome& out) override {
    if (spec_.proto == Proto::TCP) {
      out.error = "TCP traceroute needs CAP_NET_RAW (raw sockets)";
      return false;
    }
    const bool icmp = spec_.proto == Proto::ICMP;
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, icmp ? IPPROTO_ICMP : IPPROTO_UDP);
    if (fd_ < 0) {
      out.error = icmp ? "ICMP traceroute needs CAP_NET_RAW or a group in net.ipv4.ping_group_range" : std::string("socket: ") + strerror(errno);
      return false;
    }
    int on = 1;
    setsockopt(fd_, IPPROTO_IP, IP_RECVERR, &on, sizeof on);
    setsockopt(fd_, IPPROTO_IP, IP_RECVTTL, &on, sizeof on);
    setsockopt(fd_, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
    if (spec_.dont_fragment) {
      int pmtu = IP_PMTUDISC_DO;
      setsockopt(fd_, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof pmtu);
    }
    // Paris (and ICMP always): one fixed destination; classic UDP varies the destination port per probe.
    if (icmp || spec_.paris) {
      sockaddr_in to = dst_;
      to.sin_port = htons(static_cast<uint16_t>(icmp ? 0 : spec_.port));
      if (connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
        out.error = std::string("connect: ") + strerror(errno);
        return false;
      }
    }
    return true;
  }

  Reply Probe(int hop, int index) override {
    const int seq = seq_++;
    Reply r = Reply::Timeout(hop, index);
    const bool icmp = spec_.proto == Proto::ICMP;
    const size_t header = icmp ? 8 : 0;  // the kernel writes the UDP header; we write the echo header
    const size_t payload = static_cast<size_t>(spec_.size > 12 ? spec_.size - 8 : 4);
    std::vector<uint8_t> pkt(header + payload, 0);
    if (icmp) {
      pkt[0] = 8;  // echo request; the kernel sets the identifier and the checksum
      put16(&pkt[6], static_cast<uint16_t>(seq));
      put16(&pkt[8], static_cast<uint16_t>(0xffff - seq));  // balances the checksum (Paris)
    } else {
      put16(&pkt[0], static_cast<uint16_t>(seq));
      put16(&pkt[2], static_cast<uint16_t>(0xffff - seq));
    }
    setsockopt(fd_, IPPROTO_IP, IP_TTL, &hop, sizeof hop);
    const double sent = now_ms();
    ssize_t w;
    if (icmp || spec_.paris) {
      w = send(fd_, pkt.data(), pkt.size(), 0);
    } else {
      sockaddr_in to = dst_;
      to.sin_port = htons(static_cast<uint16_t>(spec_.port + seq));
      w = sendto(fd_, pkt.data(), pkt.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    }
    if (w < 0 && errno != EHOSTUNREACH && errno != ENETUNREACH && errno != ECONNREFUSED) return r;
    const double deadline = sent + spec_.response_timeout;
    for (;;) {
      const int wait = Remaining(deadline);
      if (wait < 0) break;
      pollfd p{fd_, POLLIN | POLLERR, 0};
      const int n = cancelled_->poll(&p, 1, wait);
      if (n <= 0) continue;
      Reply got = r;
      if (ReadError(sent, seq, got) || (icmp && ReadEcho(sent, seq, got))) return got;
    }
    return r;
  }

  /** One entry of the error queue: the ICMP error, its sender, and the payload of the probe it quotes. */
  bool ReadError(double sent, int seq, Reply& r) {
    Datagram d;
    const ssize_t n = d.Receive(fd_, MSG_ERRQUEUE);
    if (n < 0) return false;
    const uint8_t* data = d.data;
    const auto* ee = static_cast<const sock_extended_err*>(d.CmsgData(IPPROTO_IP, IP_RECVERR));
    int ttl = -1;
    d.Cmsg(IPPROTO_IP, IP_TTL, ttl);
    if (!ee || ee->ee_origin != SO_EE_ORIGIN_ICMP) return false;
    const size_t at = spec_.proto == Proto::ICMP ? 6 : 0;  // where the probe's sequence number sits in what comes back
    if (static_cast<size_t>(n) < at + 2 || get16(&data[at]) != static_cast<uint16_t>(seq)) return false;
    const auto* offender = reinterpret_cast<const sockaddr_in*>(SO_EE_OFFENDER(ee));
    char addr[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &offender->sin_addr, addr, sizeof addr);
    r.timeout = false;
    r.from = addr;
    r.rtt_ms = d.Timestamp() - sent;
    r.size = 8 + 20 + static_cast<int>(n) + (spec_.proto == Proto::UDP ? 8 : 0);  // ICMP header + quoted IP header + probe
    r.ttl = ttl;
    r.icmp_type = ee->ee_type;
    r.icmp_code = ee->ee_code;
    r.from_destination = offender->sin_addr.s_addr == dst_.sin_addr.s_addr || ee->ee_type == 3;
    return true;
  }

  /** An echo reply on the ping socket (the kernel already matched its identifier to this socket). */
  bool ReadEcho(double sent, int seq, Reply& r) {
    Datagram d;
    const ssize_t n = d.Receive(fd_, 0);
    if (n < 8 || d.data[0] != 0 || get16(&d.data[6]) != static_cast<uint16_t>(seq)) return false;
    int ttl = -1;
    d.Cmsg(IPPROTO_IP, IP_TTL, ttl);
    r.timeout = false;
    r.from = d.FromText();
    r.rtt_ms = d.Timestamp() - sent;
    r.size = static_cast<int>(n);
    r.ttl = ttl;
    r.icmp_type = 0;
    r.icmp_code = 0;
    r.from_destination = true;
    return true;
  }

  int fd_ = -1;
};

/**
 * IPv6 over raw sockets (CAP_NET_RAW): the kernel builds the IPv6 header (hop limit per probe); one raw ICMPv6
 * socket hears time-exceeded, unreachable and echo replies. ICMPv6 errors quote the probe whole (up to 1280 bytes),
 * so the probe's own sequence number identifies it: the echo sequence, a word of the UDP payload, or the TCP
 * sequence number.
 */
class Tracer6 : public HopLoop {
 public:
  using HopLoop::HopLoop;
  ~Tracer6() override {
    for (int fd : {icmp_fd_, udp_fd_, tcp_fd_}) if (fd >= 0) close(fd);
  }

 private:
  bool SourceAddress(TraceOutcome& out) override {
    sockaddr_storage to, from;
    if (!vantage::RouteTo(AF_INET6, spec_.dst, to, from, out.src_addr, out.error)) return false;
    std::memcpy(&dst6_, &to, sizeof dst6_);
    std::memcpy(&src6_, &from, sizeof src6_);
    ident_ = static_cast<uint16_t>((getpid() * 2654435761u) ^ static_cast<uint32_t>(now_ms()));
    return true;
  }

  bool Open(TraceOutcome& out) override {
    icmp_fd_ = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6);
    if (icmp_fd_ < 0) {
      out.error = errno == EPERM || errno == EACCES ? "IPv6 traceroute needs CAP_NET_RAW (raw sockets)" : std::string("socket: ") + strerror(errno);
      return false;
    }
    int on = 1;
    setsockopt(icmp_fd_, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
    setsockopt(icmp_fd_, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &on, sizeof on);
    icmp6_filter filter;
    ICMP6_FILTER_SETBLOCKALL(&filter);
    ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &filter);
    ICMP6_FILTER_SETPASS(ICMP6_TIME_EXCEEDED, &filter);
    ICMP6_FILTER_SETPASS(ICMP6_DST_UNREACH, &filter);
    setsockopt(icmp_fd_, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof filter);
    if (spec_.proto == Proto::UDP) {
      udp_fd_ = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      sockaddr_in6 local = src6_;
      local.sin6_port = htons(static_cast<uint16_t>(spec_.paris ? 33000 + spec_.paris : 0));
      if (udp_fd_ < 0 || bind(udp_fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
        out.error = std::string("udp socket: ") + strerror(errno);
        return false;
      }
    }
    if (spec_.proto == Proto::TCP) {
      tcp_fd_ = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_TCP);
      if (tcp_fd_ < 0) {
        out.error = std::string("tcp socket: ") + strerror(errno);
        return false;
      }
      int offset = 16;  // the kernel fills the TCP checksum (pseudo-header included) at this offset
      setsockopt(tcp_fd_, IPPROTO_IPV6, IPV6_CHECKSUM, &offset, sizeof offset);
      setsockopt(tcp_fd_, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
      setsockopt(tcp_fd_, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &on, sizeof on);
    }
    if (spec_.dont_fragment) {
      int pmtu = IPV6_PMTUDISC_DO;
      for (int fd : {icmp_fd_, udp_fd_, tcp_fd_}) if (fd >= 0) setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &pmtu, sizeof pmtu);
    }
    return true;
  }

  uint16_t TcpSrcPort(int seq) const { return static_cast<uint16_t>(spec_.paris ? 33000 + spec_.paris : 33000 + (ident_ % 1000) + seq % 64); }

  Reply Probe(int hop, int index) override {
    const int seq = seq_++;
    Reply r = Reply::Timeout(hop, index);
    const size_t l4 = static_cast<size_t>(spec_.size < 12 ? 12 : spec_.size);
    std::vector<uint8_t> pkt;
    int fd = icmp_fd_;
    sockaddr_in6 to = dst6_;
    switch (spec_.proto) {
      case Proto::ICMP:
        pkt.assign(l4, 0);
        pkt[0] = ICMP6_ECHO_REQUEST;
        put16(&pkt[4], ident_);
        put16(&pkt[6], static_cast<uint16_t>(seq));
        put16(&pkt[8], static_cast<uint16_t>(0xffff - seq));  // keeps the checksum constant (Paris)
        break;
      case Proto::UDP:
        pkt.assign(l4 - 8, 0);  // the kernel adds the UDP header
        put16(&pkt[0], static_cast<uint16_t>(seq));
        put16(&pkt[2], static_cast<uint16_t>(0xffff - seq));
        fd = udp_fd_;
        to.sin6_port = htons(static_cast<uint16_t>(spec_.paris ? spec_.port : spec_.port + seq));
        break;
      case Proto::TCP: {
        pkt.assign(20, 0);
        put16(&pkt[0], TcpSrcPort(seq));
        put16(&pkt[2], static_cast<uint16_t>(spec_.port));
        const uint32_t isn = (static_cast<uint32_t>(ident_) << 16) | static_cast<uint16_t>(seq);
        pkt[4] = isn >> 24; pkt[5] = (isn >> 16) & 0xff; pkt[6] = (isn >> 8) & 0xff; pkt[7] = isn & 0xff;
        pkt[12] = 5 << 4;
        pkt[13] = 0x02;  // SYN
        put16(&pkt[14], 65535);
        fd = tcp_fd_;
        to.sin6_port = 0;  // raw sockets: the port field must be zero (or the protocol)
        break;
      }
    }
    setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hop, sizeof hop);
    const double sent = now_ms();
    if (sendto(fd, pkt.data(), pkt.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) < 0) return r;
    const double deadline = sent + spec_.response_timeout;
    for (;;) {
      const int wait = Remaining(deadline);
      if (wait < 0) break;
      pollfd fds[2] = {{icmp_fd_, POLLIN, 0}, {tcp_fd_, POLLIN, 0}};
      if (cancelled_->poll(fds, tcp_fd_ >= 0 ? 2 : 1, wait) <= 0) continue;
      for (int f = 0; f < 2; f++) {
        // The kernel also flags an ICMPv6 error about a raw socket's own probe as a pending socket error, which
        // would keep poll() returning POLLERR: clear it; the error packet itself is read below.
        if (fds[f].revents & POLLERR) {
          int e = 0;
          socklen_t len = sizeof e;
          getsockopt(fds[f].fd, SOL_SOCKET, SO_ERROR, &e, &len);
        }
        if (!(fds[f].revents & POLLIN)) continue;
        Reply got = r;
        if (Read(fds[f].fd, f == 1, sent, seq, got)) return got;
      }
    }
    return r;
  }

  bool Read(int fd, bool tcp, double sent, int seq, Reply& r) {
    Datagram d;
    const ssize_t n = d.Receive(fd, 0);
    if (n < 8) return false;
    const uint8_t* buf = d.data;
    int hops = -1;
    d.Cmsg(IPPROTO_IPV6, IPV6_HOPLIMIT, hops);
    const sockaddr_in6& from = *reinterpret_cast<const sockaddr_in6*>(&d.from);
    const bool from_dst = std::memcmp(&from.sin6_addr, &dst6_.sin6_addr, 16) == 0;
    const std::string addr = d.FromText();
    auto fill = [&]() {
      r.timeout = false;
      r.from = addr;
      r.rtt_ms = d.Timestamp() - sent;
      r.size = static_cast<int>(n);
      r.ttl = hops;
    };
    if (tcp) {
      if (!from_dst || n < 20 || get16(&buf[2]) != TcpSrcPort(seq)) return false;
      const uint32_t ack = (static_cast<uint32_t>(buf[8]) << 24) | (buf[9] << 16) | (buf[10] << 8) | buf[11];
      if (ack - 1 != ((static_cast<uint32_t>(ident_) << 16) | static_cast<uint16_t>(seq))) return false;
      fill();
      r.from_destination = true;
      r.tcp_flags = buf[13];
      return true;
    }
    const int type = buf[0], code = buf[1];
    if (type == ICMP6_ECHO_REPLY) {
      if (spec_.proto != Proto::ICMP || get16(&buf[4]) != ident_ || get16(&buf[6]) != static_cast<uint16_t>(seq)) return false;
      fill();
      r.icmp_type = 0;  // reported like IPv4's echo reply
      r.icmp_code = 0;
      r.from_destination = true;
      return true;
    }
    if (type != ICMP6_TIME_EXCEEDED && type != ICMP6_DST_UNREACH) return false;
    // Quoted: the probe's IPv6 header (40 bytes; next header = its protocol) and its transport part.
    const uint8_t* q = buf + 8;
    if (n < 8 + 40 + 8 || std::memcmp(&q[24], &dst6_.sin6_addr, 16) != 0) return false;
    const uint8_t* l4 = q + 40;
    bool ours = false;
    switch (spec_.proto) {
      case Proto::ICMP: ours = q[6] == IPPROTO_ICMPV6 && get16(&l4[4]) == ident_ && get16(&l4[6]) == static_cast<uint16_t>(seq); break;
      case Proto::UDP: ours = q[6] == IPPROTO_UDP && n >= 8 + 40 + 10 && get16(&l4[8]) == static_cast<uint16_t>(seq); break;
      case Proto::TCP: ours = q[6] == IPPROTO_TCP && get16(&l4[0]) == TcpSrcPort(seq) && get16(&l4[6]) == static_cast<uint16_t>(seq); break;
    }
    if (!ours) return false;
    fill();
    // Reported with IPv4's numbers so the TypeScript side treats both families alike: 11 time exceeded, 3 unreachable
    // (ICMPv6 unreachable codes: 0 no route, 2 beyond scope → N; 1, 5, 6 prohibited → A; 3 address → H; 4 port → p).
    static const int kCode[] = {0, 13, 0, 1, 3, 13, 13};
    r.icmp_type = type == ICMP6_TIME_EXCEEDED ? 11 : 3;
    r.icmp_code = type == ICMP6_TIME_EXCEEDED ? code : (code >= 0 && code <= 6 ? kCode[code] : code);
    r.ittl = q[7];
    ExtractExtensions(buf, static_cast<size_t>(n), buf[4], 8, r);
    r.from_destination = from_dst || type == ICMP6_DST_UNREACH;
    return true;
  }

  sockaddr_in6 dst6_{}, src6_{};
  int icmp_fd_ = -1, udp_fd_ = -1, tcp_fd_ = -1;
};

/** Raw sockets when the process may open them, else datagram sockets with IP_RECVERR (IPv4). */
TraceOutcome Trace(const TraceSpec& spec, const vantage::CancelFlag& cancelled) {
  if (spec.dst.find(':') != std::string::npos) return Tracer6(spec, cancelled).Run();
  Tracer raw(spec, cancelled);
  if (raw.Available()) return raw.Run();
  if (errno != EPERM && errno != EACCES) return TraceOutcome{"", {}, std::string("socket: ") + strerror(errno)};
  return DgramTracer(spec, cancelled).Run();
}

Napi::Value TraceObject(Napi::Env env, const TraceOutcome& outcome) {
  Napi::Object o = Napi::Object::New(env);
  if (!outcome.error.empty()) o.Set("error", outcome.error);
  o.Set("src_addr", outcome.src_addr);
  Napi::Array list = Napi::Array::New(env, outcome.replies.size());
  for (size_t i = 0; i < outcome.replies.size(); i++) {
    const Reply& r = outcome.replies[i];
    Napi::Object e = Napi::Object::New(env);
    e.Set("hop", r.hop);
    e.Set("probe", r.probe);
    e.Set("timeout", r.timeout);
    if (r.late) e.Set("late", r.late);
    if (!r.timeout) {
      e.Set("from", r.from);
      e.Set("rtt", r.rtt_ms);
      e.Set("size", r.size);
      e.Set("ttl", r.ttl);
      e.Set("ittl", r.ittl);
      e.Set("icmp_type", r.icmp_type);
      e.Set("icmp_code", r.icmp_code);
      e.Set("from_destination", r.from_destination);
      e.Set("tcp_flags", r.tcp_flags);
      if (!r.ext.empty()) {
        e.Set("ext", Napi::Buffer<uint8_t>::Copy(env, r.ext.data(), r.ext.size()));
        e.Set("rfc4884", r.rfc4884);
      }
    }
    list.Set(static_cast<uint32_t>(i), e);
  }
  o.Set("replies", list);
  return o;
}

int Int(const Napi::Object& o, const char* k, int fallback) {
  Napi::Value v = o.Get(k);
  return v.IsNumber() ? v.As<Napi::Number>().Int32Value() : fallback;
}

// traceroute({proto, dst, first_hop, max_hops, packets, size, port, paris, response_timeout, dont_fragment})
Napi::Value Traceroute(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) {
    Napi::TypeError::New(env, "traceroute(spec): spec must be an object").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object o = info[0].As<Napi::Object>();
  TraceSpec s;
  Napi::Value proto = o.Get("proto"), dst = o.Get("dst");
  const std::string p = proto.IsString() ? proto.As<Napi::String>().Utf8Value() : "";
  if (!dst.IsString() || (p != "ICMP" && p != "UDP" && p != "TCP")) {
    Napi::TypeError::New(env, "traceroute(spec): dst must be an address and proto ICMP, UDP or TCP").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  s.proto = p == "ICMP" ? Proto::ICMP : p == "UDP" ? Proto::UDP : Proto::TCP;
  s.dst = dst.As<Napi::String>().Utf8Value();
  s.first_hop = Int(o, "first_hop", 1);
  s.max_hops = Int(o, "max_hops", 32);
  s.packets = Int(o, "packets", 3);
  s.size = Int(o, "size", 48);
  s.port = Int(o, "port", p == "TCP" ? 80 : 33434);
  s.paris = Int(o, "paris", 16);
  s.response_timeout = Int(o, "response_timeout", 1000);
  s.cancel_id = Int(o, "cancel_id", 0);
  Napi::Value df = o.Get("dont_fragment");
  s.dont_fragment = df.IsBoolean() && df.As<Napi::Boolean>().Value();
  if (s.first_hop < 1 || s.max_hops > 255 || s.first_hop > s.max_hops || s.packets < 1 || s.packets > 16 || s.size < 0 ||
      s.size > 2048 || s.port < 1 || s.port > 65535 || s.paris < 0 || s.paris > 64 || s.response_timeout < 1 || s.response_timeout > 60000) {
    Napi::RangeError::New(env, "traceroute(spec): a field is out of range").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  vantage::CancelFlag cancelled = vantage::cancel_register(s.cancel_id);
  return vantage::RunOnThread<TraceOutcome>(env, "vantage-trace", [s, cancelled] {
    TraceOutcome outcome = Trace(s, cancelled);
    vantage::cancel_release(s.cancel_id);
    return outcome;
  }, TraceObject);
}

}  // namespace

void RegisterTraceroute(Napi::Env env, Napi::Object exports) {
  exports.Set("traceroute", Napi::Function::New(env, Traceroute, "traceroute"));
}
