// vantage_icmp: ICMP echo for the probe agent, measured with kernel receive timestamps.
//
// Node cannot open ICMP sockets, so this addon does one thing: run ping trains (N echo requests at a fixed
// interval, then wait for late replies), all of them on one engine thread, and hand back what came back. It prefers the
// unprivileged ICMP datagram socket ("ping socket", allowed by net.ipv4.ping_group_range) and falls back to a raw
// socket when the process has CAP_NET_RAW. RTT = kernel receive timestamp (SO_TIMESTAMPNS) − the time taken just
// before sendto(), both CLOCK_REALTIME. Everything Atlas-specific (result layout, statistics) lives in TypeScript.
#include <napi.h>

#include "cancel.h"
#include "net.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <atomic>
#include <pthread.h>
#include <cmath>
#include <memory>
#include <mutex>
#include <string>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <unordered_map>
#include <vector>

namespace {

struct Reply {
  int seq;
  double rtt_ms;
  int ttl;  // -1 when the kernel did not tell us
  bool dup;
};

struct PingSpec {
  int af = 4;
  std::string dst;
  int packets = 3;
  int size = 48;
  int interval_ms = 1000;
  int timeout_ms = 1000;
  int cancel_id = 0;
};

struct PingOutcome {
  std::string mode;  // "dgram" or "raw"
  std::string src_addr;
  int sent = 0;
  std::vector<Reply> replies;
  std::string error;  // set when the train could not run at all
};

using vantage::now_ms;

uint16_t checksum(const uint8_t* data, size_t len) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) sum += (data[i] << 8) | data[i + 1];
  if (len & 1) sum += data[len - 1] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return htons(static_cast<uint16_t>(~sum));
}

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

class Train;

/**
 * The engine's ICMP sockets, one per address family, shared by every train of that family, as scamper shares one:
 * a socket per train cost eight syscalls to set up and tear down, and the kernel hands each incoming ICMP packet
 * to every raw socket in turn (raw_local_deliver was the engine thread's largest cost with 100 trains). A reply
 * finds its train by the echo sequence number, unique among the packets in flight, and must come from the train's
 * destination.
 */
class Wire {
 public:
  struct Socket {
    int fd = -1;
    bool raw = false;
    uint16_t ident = 0;
  };

  ~Wire() {
    for (Socket& s : sockets_) if (s.fd >= 0) close(s.fd);
  }

  /** The socket for family `af` (4 or 6), opened on first use; nullptr with `error` set when none can be opened. */
  Socket* Open(int af, int epoll, std::string& error) {
    Socket& s = sockets_[af == 6];
    if (s.fd >= 0) return &s;
    const int family = af == 6 ? AF_INET6 : AF_INET;
    const int proto = af == 6 ? static_cast<int>(IPPROTO_ICMPV6) : static_cast<int>(IPPROTO_ICMP);
    s.fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, proto);
    s.raw = false;
    if (s.fd < 0 && (errno == EACCES || errno == EPERM)) {
      s.fd = socket(family, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, proto);
      s.raw = true;
    }
    if (s.fd < 0) {
      error = errno == EACCES || errno == EPERM ? "no ICMP socket: not in net.ipv4.ping_group_range and no CAP_NET_RAW"
                                                : errno_text("socket");
      return nullptr;
    }
    int on = 1;
    setsockopt(s.fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
    // Every reply of every train lands here: room for bursts (the larger size needs CAP_NET_ADMIN; else rmem_max).
    const int rcvbuf = 4 << 20;
    if (setsockopt(s.fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0) setsockopt(s.fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (af == 6) {
      setsockopt(s.fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &on, sizeof on);
      if (s.raw) {
        icmp6_filter filter;
        ICMP6_FILTER_SETBLOCKALL(&filter);
        ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &filter);
        setsockopt(s.fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof filter);
      }
    } else {
      if (s.raw) {
        // Linux's ICMP_FILTER (linux/icmp.h): a raw ICMP socket is handed echo replies only, not every ICMP packet.
        constexpr int kIcmpFilter = 1;
        const uint32_t blocked = ~(1u << ICMP_ECHOREPLY);
        setsockopt(s.fd, SOL_RAW, kIcmpFilter, &blocked, sizeof blocked);
      }
      setsockopt(s.fd, IPPROTO_IP, IP_RECVTTL, &on, sizeof on);
    }
    if (s.raw) {
      // A raw socket sees every echo reply of the host: ours carry this identifier.
      s.ident = static_cast<uint16_t>((getpid() * 2654435761u) ^ static_cast<uint32_t>(now_ms()));
    } else {
      // A ping socket is given an identifier of its own when bound to "port" 0, and only that one's replies.
      sockaddr_storage any{};
      any.ss_family = static_cast<sa_family_t>(family);
      socklen_t len = af == 6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
      if (bind(s.fd, reinterpret_cast<sockaddr*>(&any), len) != 0 || getsockname(s.fd, reinterpret_cast<sockaddr*>(&any), &len) != 0) {
        error = errno_text("bind");
        close(s.fd);
        s.fd = -1;
        return nullptr;
      }
      s.ident = ntohs(af == 6 ? reinterpret_cast<sockaddr_in6*>(&any)->sin6_port : reinterpret_cast<sockaddr_in*>(&any)->sin_port);
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = static_cast<uint64_t>(af);
    if (epoll_ctl(epoll, EPOLL_CTL_ADD, s.fd, &ev) != 0) {
      error = errno_text("epoll_ctl");
      close(s.fd);
      s.fd = -1;
      return nullptr;
    }
    return &s;
  }

  /**
   * A sequence number for a packet of `train`, not used by any packet still in flight; -1 if all kSeqs are (a
   * train's packets stay in flight until it ends; 256 slots of 16-packet pings need 4,096). Numbers are handed out
   * in turn, so one is used again only after kSeqs later packets: a reply that late to an ended train is not taken
   * for a new train's.
   */
  int Claim(Train* train) {
    for (int tries = 0; tries < kSeqs; tries++) {
      const int seq = next_;
      next_ = (next_ + 1) % kSeqs;
      if (trains_[seq] == nullptr) {
        trains_[seq] = train;
        return seq;
      }
    }
    return -1;
  }

  /** Frees a train's sequence numbers: later replies to them are ignored, as they were by its closed socket. */
  void Release(const Train* train, const std::vector<int>& seqs) {
    for (int seq : seqs) {
      if (seq >= 0 && trains_[seq] == train) trains_[seq] = nullptr;
    }
  }

  /** Reads every reply queued on the family's socket (recvmmsg, a batch per call) and hands each to its train. */
  void Drain(int af);

 private:
  /** Receive buffers for one recvmmsg: an echo reply is matched by its first bytes, so they are small. */
  struct Batch {
    static constexpr int kSize = 64;
    mmsghdr msgs[kSize];
    iovec iov[kSize];
    uint8_t data[kSize][256];
    char control[kSize][128];
    sockaddr_storage from[kSize];
  };

  static constexpr int kSeqs = 16384;
  Socket sockets_[2];
  /** The train each sequence number in flight belongs to. */
  std::vector<Train*> trains_ = std::vector<Train*>(kSeqs);
  int next_ = 0;
  std::unique_ptr<Batch> batch_ = std::make_unique<Batch>();
};

/**
 * One ping train: what was sent when, what came back. Driven by the engine thread: Step() sends what is due and
 * says whether the train is over; the Wire hands it its replies.
 */
class Train {
 public:
  static constexpr double kStartGrid = 10;  // ms

  Train(uint32_t id, const PingSpec& spec, vantage::CancelFlag cancelled)
      : id_(id), spec_(spec), cancelled_(std::move(cancelled)), sent_at_(spec.packets, 0.0), answered_(spec.packets, false),
        seqs_(spec.packets, -1) {}
  Train(const Train&) = delete;
  Train& operator=(const Train&) = delete;

  uint32_t id() const { return id_; }
  int cancel_id() const { return spec_.cancel_id; }
  const std::vector<int>& seqs() const { return seqs_; }
  PingOutcome& outcome() { return out_; }

  /**
   * Finds the route to the destination (the source address it reports) and takes the family's socket; false (with
   * the outcome's error set) if the train cannot run at all. The first packet leaves on the next tick of a
   * kStartGrid grid: trains started within the same tick and with the same interval send together ever after, so
   * the engine wakes once for all of them (a measurement's probes are dispatched together; a run's start is not
   * that precise anyway).
   */
  bool Start(Wire& wire, int epoll) {
    sockaddr_storage src{};
    if (!vantage::RouteTo(spec_.af == 6 ? AF_INET6 : AF_INET, spec_.dst, dst_, src, out_.src_addr, out_.error)) return false;
    dst_len_ = spec_.af == 6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    socket_ = wire.Open(spec_.af, epoll, out_.error);
    if (socket_ == nullptr) return false;
    out_.mode = socket_->raw ? "raw" : "dgram";
    start_ = std::ceil(now_ms() / kStartGrid) * kStartGrid;
    return true;
  }

  /** Sends the packets that are due; true when the train is over (all answered, timed out, or cancelled). */
  bool Step(Wire& wire) {
    touched_ = false;
    if (cancelled_->load()) {
      out_.error = "cancelled";
      return true;
    }
    while (next_ < spec_.packets && now_ms() >= start_ + static_cast<double>(next_) * spec_.interval_ms) {
      seqs_[next_] = wire.Claim(this);
      sent_at_[next_] = now_ms();
      if (seqs_[next_] >= 0 && Send(seqs_[next_])) out_.sent++;
      else sent_at_[next_] = 0;
      next_++;
    }
    if (next_ < spec_.packets) {
      wake_ = start_ + static_cast<double>(next_) * spec_.interval_ms;
      return false;
    }
    double last = 0;
    for (double s : sent_at_) last = s > last ? s : last;
    wake_ = (last > 0 ? last : now_ms()) + spec_.timeout_ms;
    bool all = true;
    for (int i = 0; i < spec_.packets; i++) all = all && (answered_[i] || sent_at_[i] == 0);
    return all || now_ms() >= wake_;
  }

  /** When Step() has something to do next (ms since the epoch). */
  double wake() const { return wake_; }
  /** Whether a reply came (or the train is new) since the last Step(): it may be over early. */
  bool touched() const { return touched_; }

  /** Whether `from` is this train's destination: only its replies count. */
  bool From(const sockaddr_storage& from) const {
    if (from.ss_family != dst_.ss_family) return false;
    if (from.ss_family == AF_INET6) {
      return std::memcmp(&reinterpret_cast<const sockaddr_in6*>(&from)->sin6_addr, &reinterpret_cast<const sockaddr_in6*>(&dst_)->sin6_addr, 16) == 0;
    }
    return reinterpret_cast<const sockaddr_in*>(&from)->sin_addr.s_addr == reinterpret_cast<const sockaddr_in*>(&dst_)->sin_addr.s_addr;
  }

  /** A reply to the packet sent with sequence number `seq` arrived at `rx` (ms since the epoch). */
  void Answer(int seq, double rx, int ttl) {
    int index = 0;
    while (index < next_ && seqs_[index] != seq) index++;
    if (index == next_ || sent_at_[index] == 0) return;
    out_.replies.push_back(Reply{index, rx - sent_at_[index], ttl, static_cast<bool>(answered_[index])});
    answered_[index] = true;
    touched_ = true;
  }

 private:
  bool Send(int seq) {
    uint8_t pkt[8 + 65000];
    const size_t len = 8 + static_cast<size_t>(spec_.size);
    std::memset(pkt, 0, 8);
    pkt[0] = spec_.af == 6 ? ICMP6_ECHO_REQUEST : ICMP_ECHO;
    pkt[4] = socket_->ident >> 8;
    pkt[5] = socket_->ident & 0xff;
    pkt[6] = (seq >> 8) & 0xff;
    pkt[7] = seq & 0xff;
    for (size_t i = 8; i < len; i++) pkt[i] = static_cast<uint8_t>(i);
    // The kernel fills the checksum for ping sockets and for raw ICMPv6; raw ICMPv4 needs ours.
    if (socket_->raw && spec_.af == 4) {
      uint16_t c = checksum(pkt, len);
      std::memcpy(&pkt[2], &c, 2);
    }
    return sendto(socket_->fd, pkt, len, 0, reinterpret_cast<const sockaddr*>(&dst_), dst_len_) == static_cast<ssize_t>(len);
  }

  uint32_t id_;
  PingSpec spec_;
  vantage::CancelFlag cancelled_;
  Wire::Socket* socket_ = nullptr;
  sockaddr_storage dst_{};
  socklen_t dst_len_ = 0;
  double start_ = 0;
  double wake_ = 0;
  bool touched_ = true;
  int next_ = 0;
  std::vector<double> sent_at_;
  std::vector<bool> answered_;
  /** The sequence number each packet was sent with (-1: not sent). */
  std::vector<int> seqs_;
  PingOutcome out_;
};

void Wire::Drain(int af) {
  Socket& s = sockets_[af == 6];
  Batch& b = *batch_;
  for (;;) {
    for (int i = 0; i < Batch::kSize; i++) {
      b.iov[i] = {b.data[i], sizeof b.data[i]};
      b.msgs[i].msg_hdr = {};
      b.msgs[i].msg_hdr.msg_name = &b.from[i];
      b.msgs[i].msg_hdr.msg_namelen = sizeof b.from[i];
      b.msgs[i].msg_hdr.msg_iov = &b.iov[i];
      b.msgs[i].msg_hdr.msg_iovlen = 1;
      b.msgs[i].msg_hdr.msg_control = b.control[i];
      b.msgs[i].msg_hdr.msg_controllen = sizeof b.control[i];
    }
    const int n = recvmmsg(s.fd, b.msgs, Batch::kSize, MSG_DONTWAIT, nullptr);
    for (int i = 0; i < n; i++) {
      const msghdr& msg = b.msgs[i].msg_hdr;
      const uint8_t* icmp = b.data[i];
      size_t len = std::min<size_t>(b.msgs[i].msg_len, sizeof b.data[i]);  // longer replies arrive truncated
      int ttl = -1;
      if (!vantage::Cmsg(msg, IPPROTO_IP, IP_TTL, ttl)) vantage::Cmsg(msg, IPPROTO_IPV6, IPV6_HOPLIMIT, ttl);
      if (s.raw && af == 4) {  // raw IPv4 sockets hand us the IP header too
        if (len < sizeof(iphdr)) continue;
        const size_t ihl = (icmp[0] & 0x0f) * 4;
        if (len < ihl + 8) continue;
        ttl = icmp[8];
        icmp += ihl;
        len -= ihl;
      }
      if (len < 8 || icmp[0] != (af == 6 ? ICMP6_ECHO_REPLY : ICMP_ECHOREPLY)) continue;
      // Ping sockets are handed only their own identifier's replies; a raw socket every reply of the host.
      if (s.raw && ((icmp[4] << 8) | icmp[5]) != s.ident) continue;
      const int seq = (icmp[6] << 8) | icmp[7];
      Train* train = seq < kSeqs ? trains_[seq] : nullptr;
      if (train != nullptr && train->From(b.from[i])) train->Answer(seq, vantage::Timestamp(msg), ttl);
    }
    if (n < Batch::kSize) return;  // the queue is empty (or the read failed): level-triggered epoll says if more came
  }
}

/**
 * Every ping train of the process on one thread, as scamper runs its probes on one event loop: an epoll over the
 * shared sockets (Wire), a wake-up eventfd for new trains and cancellations, and a timeout to the next packet due.
 * A train per libuv pool thread cost a thread switch per packet and a thread per concurrent measurement.
 * Finished trains go back to JavaScript through one thread-safe function call per batch.
 */
class PingEngine {
  /**
   * Finished trains go back to JavaScript at most this often (ms): trains ending within the window share one
   * hand-over, so one event-loop turn settles many results; the first after a quiet spell goes at once.
   */
  static constexpr double kHandOverEvery = 50;

 public:
  explicit PingEngine(Napi::Env env) {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    wake_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = 0;  // the wake-up eventfd (the sockets carry their family, 4 or 6)
    epoll_ctl(epoll_, EPOLL_CTL_ADD, wake_, &ev);
    tsfn_ = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}), "vantage:ping", 0, 1);
    tsfn_.Unref(env);
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "vantage-ping");
      Loop();
    });
  }

  ~PingEngine() {
    stop_.store(true);
    Wake();
    thread_.join();
    close(epoll_);
    close(wake_);
    tsfn_.Release();
  }

  /** Queues a train (main thread); its promise settles when the train is over. */
  Napi::Promise Submit(Napi::Env env, const PingSpec& spec) {
    const uint32_t id = ++last_id_;
    auto deferred = Napi::Promise::Deferred::New(env);
    Napi::Promise promise = deferred.Promise();
    waiting_.emplace(id, std::move(deferred));
    if (waiting_.size() == 1) tsfn_.Ref(env);
    bool idle;
    {
      std::lock_guard<std::mutex> lock(mu_);
      idle = incoming_.empty();
      incoming_.push_back(std::make_unique<Train>(id, spec, vantage::cancel_register(spec.cancel_id, false)));
    }
    // Trains submitted in one burst wake the engine once: until it takes the queue, the first one's wake-up stands.
    if (idle) Wake();
    return promise;
  }

  /** Makes the engine look at its trains now (a cancellation flag was set). */
  void Wake() {
    const uint64_t one = 1;
    if (write(wake_, &one, sizeof one) < 0) { /* already signalled: the counter is non-zero */ }
  }

 private:
  void Loop() {
    std::vector<std::unique_ptr<Train>> active;
    // Trains over but not yet handed to JavaScript, and when the last hand-over was (ms since the epoch).
    std::vector<std::unique_ptr<Train>> finished;
    double handed = -kHandOverEvery;
    epoll_event events[4];
    // Set when the wake-up eventfd fired: new trains, or a cancellation flag to look at.
    bool step_all = false;
    while (!stop_.load()) {
      double wake = -1;
      const double now = now_ms();
      for (size_t i = 0; i < active.size();) {
        // Only trains with something to do are stepped: a reply each would otherwise step every train.
        const bool due = step_all || active[i]->touched() || now >= active[i]->wake();
        if (due && active[i]->Step(wire_)) {
          wire_.Release(active[i].get(), active[i]->seqs());
          finished.push_back(std::move(active[i]));
          active[i] = std::move(active.back());
          active.pop_back();
          continue;
        }
        if (wake < 0 || active[i]->wake() < wake) wake = active[i]->wake();
        i++;
      }
      step_all = false;
      if (!finished.empty()) {
        if (now_ms() >= handed + kHandOverEvery) {
          Finish(std::move(finished));
          finished.clear();
          handed = now_ms();
        } else if (wake < 0 || handed + kHandOverEvery < wake) {
          wake = handed + kHandOverEvery;
        }
      }
      timespec timeout{};
      const double ms = wake < 0 ? -1 : wake - now_ms();
      if (ms > 0) timeout = {static_cast<time_t>(ms / 1000), static_cast<long>(std::fmod(ms, 1000.0) * 1e6)};
      const int n = epoll_pwait2(epoll_, events, 4, wake < 0 ? nullptr : &timeout, nullptr);
      for (int i = 0; i < n; i++) {
        if (events[i].data.u64 != 0) {
          wire_.Drain(static_cast<int>(events[i].data.u64));
          continue;
        }
        uint64_t count;
        if (read(wake_, &count, sizeof count) < 0) { /* nothing pending */ }
        step_all = true;
        std::vector<std::unique_ptr<Train>> started;
        {
          std::lock_guard<std::mutex> lock(mu_);
          started.swap(incoming_);
        }
        for (auto& t : started) {
          if (t->Start(wire_, epoll_)) active.push_back(std::move(t));
          else finished.push_back(std::move(t));
        }
      }
    }
  }

  void Finish(std::vector<std::unique_ptr<Train>>&& trains) {
    for (auto& t : trains) vantage::cancel_release(t->cancel_id());
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& t : trains) done_.push_back(std::move(t));
    }
    tsfn_.NonBlockingCall([this](Napi::Env env, Napi::Function) { Settle(env); });
  }

  /** On the main thread: settles the promises of every finished train. */
  void Settle(Napi::Env env) {
    std::vector<std::unique_ptr<Train>> done;
    {
      std::lock_guard<std::mutex> lock(mu_);
      done.swap(done_);
    }
    for (auto& t : done) {
      auto it = waiting_.find(t->id());
      if (it == waiting_.end()) continue;
      it->second.Resolve(ToObject(env, t->outcome()));
      waiting_.erase(it);
    }
    if (!done.empty() && waiting_.empty()) tsfn_.Unref(env);
  }

  static Napi::Object ToObject(Napi::Env env, const PingOutcome& outcome) {
    Napi::Object o = Napi::Object::New(env);
    if (!outcome.error.empty()) o.Set("error", outcome.error);
    o.Set("mode", outcome.mode);
    o.Set("src_addr", outcome.src_addr);
    o.Set("sent", outcome.sent);
    // Replies as one Float64Array of (seq, rtt, ttl, dup) quadruples, in arrival order: an object per reply cost
    // five calls into V8 each, for data the result builder reads once.
    Napi::Float64Array replies = Napi::Float64Array::New(env, outcome.replies.size() * 4);
    for (size_t i = 0; i < outcome.replies.size(); i++) {
      const Reply& r = outcome.replies[i];
      replies[i * 4] = r.seq;
      replies[i * 4 + 1] = r.rtt_ms;
      replies[i * 4 + 2] = r.ttl;
      replies[i * 4 + 3] = r.dup ? 1 : 0;
    }
    o.Set("replies", replies);
    return o;
  }

  int epoll_ = -1;
  int wake_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  Wire wire_;  // engine thread only
  Napi::ThreadSafeFunction tsfn_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Train>> incoming_;  // guarded by mu_
  std::vector<std::unique_ptr<Train>> done_;      // guarded by mu_
  // Main thread only:
  uint32_t last_id_ = 0;
  std::unordered_map<uint32_t, Napi::Promise::Deferred> waiting_;
};

int IntField(const Napi::Object& o, const char* key, int fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Int32Value() : fallback;
}

// ping({af, dst, packets, size, interval_ms, timeout_ms}) → Promise<{mode, src_addr, sent, replies, error?}>
Napi::Value Ping(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) {
    Napi::TypeError::New(env, "ping(spec): spec must be an object").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object o = info[0].As<Napi::Object>();
  PingSpec spec;
  spec.af = IntField(o, "af", 4);
  Napi::Value dst = o.Get("dst");
  if (!dst.IsString() || (spec.af != 4 && spec.af != 6)) {
    Napi::TypeError::New(env, "ping(spec): dst must be an address string and af 4 or 6").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  spec.dst = dst.As<Napi::String>().Utf8Value();
  spec.packets = IntField(o, "packets", 3);
  spec.size = IntField(o, "size", 48);
  spec.interval_ms = IntField(o, "interval_ms", 1000);
  spec.timeout_ms = IntField(o, "timeout_ms", 1000);
  spec.cancel_id = IntField(o, "cancel_id", 0);
  if (spec.packets < 1 || spec.packets > 64 || spec.size < 0 || spec.size > 65000 || spec.interval_ms < 0 || spec.timeout_ms < 1) {
    Napi::RangeError::New(env, "ping(spec): packets, size, interval_ms or timeout_ms out of range")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  PingEngine* engine = env.GetInstanceData<PingEngine>();
  if (engine == nullptr) {
    engine = new PingEngine(env);
    env.SetInstanceData(engine);
  }
  return engine->Submit(env, spec);
}

}  // namespace

void RegisterTraceroute(Napi::Env env, Napi::Object exports);
void RegisterMask(Napi::Env env, Napi::Object exports);

// cancel(id) → true if a measurement with that cancel_id was running.
static Napi::Value Cancel(const Napi::CallbackInfo& info) {
  const int id = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
  const bool found = id != 0 && vantage::cancel_request(id);
  if (found) {
    if (auto* engine = info.Env().GetInstanceData<PingEngine>()) engine->Wake();
  }
  return Napi::Boolean::New(info.Env(), found);
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("ping", Napi::Function::New(env, Ping, "ping"));
  exports.Set("cancel", Napi::Function::New(env, Cancel, "cancel"));
  RegisterTraceroute(env, exports);
  RegisterMask(env, exports);
  return exports;
}

NODE_API_MODULE(vantage_icmp, Init)
