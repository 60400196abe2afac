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
  int ttl = 0;  // 0 = system default
  int cancel_id = 0;
};

struct PingOutcome {
  std::string mode;  // "dgram" or "raw"
  std::string src_addr;
  int sent = 0;
  std::vector<Reply> replies;
  std::string error;  // set when the train could not run at all
};

using vantage::Datagram;
using vantage::now_ms;

uint16_t checksum(const uint8_t* data, size_t len) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) sum += (data[i] << 8) | data[i + 1];
  if (len & 1) sum += data[len - 1] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return htons(static_cast<uint16_t>(~sum));
}

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

/**
 * One ping train: its socket, what was sent when, what came back. Driven by the engine thread: Step() sends what is
 * due and says whether the train is over; Drain() reads replies when its socket is readable.
 */
class Train {
 public:
  static constexpr double kStartGrid = 10;  // ms

  Train(uint32_t id, const PingSpec& spec, vantage::CancelFlag cancelled)
      : id_(id), spec_(spec), cancelled_(std::move(cancelled)), sent_at_(spec.packets, 0.0), answered_(spec.packets, false) {}
  ~Train() { Close(); }

  /** Closes the socket (on the engine thread, so the main thread settling the promise makes no syscall for it). */
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  Train(const Train&) = delete;
  Train& operator=(const Train&) = delete;

  uint32_t id() const { return id_; }
  int fd() const { return fd_; }
  int cancel_id() const { return spec_.cancel_id; }
  PingOutcome& outcome() { return out_; }

  /**
   * Opens the socket; false (with the outcome's error set) if the train cannot run at all. The first packet leaves
   * on the next tick of a kStartGrid grid: trains started within the same tick and with the same interval send
   * together ever after, so the engine wakes once for all of them (a measurement's probes are dispatched together;
   * a run's start is not that precise anyway).
   */
  bool Start() {
    if (!Open()) return false;
    start_ = std::ceil(now_ms() / kStartGrid) * kStartGrid;
    return true;
  }

  /** Sends the packets that are due; true when the train is over (all answered, timed out, or cancelled). */
  bool Step() {
    touched_ = false;
    if (cancelled_->load()) {
      out_.error = "cancelled";
      return true;
    }
    while (next_ < spec_.packets && now_ms() >= start_ + static_cast<double>(next_) * spec_.interval_ms) {
      sent_at_[next_] = now_ms();
      if (Send(next_)) out_.sent++;
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

  /**
   * Reads one datagram: the engine's epoll is level-triggered, so a socket with more queued is reported again (a
   * read to EAGAIN would cost a second syscall per reply, and a second reply to one socket is rare).
   */
  void Drain() {
    Datagram& d = datagram();
    const ssize_t n = d.Receive(fd_, 0);
    if (n < 0) return;
    const uint8_t* buf = d.data;
    const double rx = d.Timestamp();
    int ttl = -1;
    if (!d.Cmsg(IPPROTO_IP, IP_TTL, ttl)) d.Cmsg(IPPROTO_IPV6, IPV6_HOPLIMIT, ttl);
    const uint8_t* icmp = buf;
    size_t len = static_cast<size_t>(n);
    if (raw_ && spec_.af == 4) {  // raw IPv4 sockets hand us the IP header too
      if (len < sizeof(iphdr)) return;
      const size_t ihl = (buf[0] & 0x0f) * 4;
      if (len < ihl + 8) return;
      ttl = buf[8];
      icmp += ihl;
      len -= ihl;
    }
    if (len < 8) return;
    const int reply_type = spec_.af == 6 ? ICMP6_ECHO_REPLY : ICMP_ECHOREPLY;
    if (icmp[0] != reply_type) return;
    const uint16_t id = (icmp[4] << 8) | icmp[5];
    const int seq = (icmp[6] << 8) | icmp[7];
    if (raw_ && id != ident_) return;  // ping sockets already demultiplex by id
    if (seq < 0 || seq >= spec_.packets || sent_at_[seq] == 0) return;
    out_.replies.push_back(Reply{seq, rx - sent_at_[seq], ttl, static_cast<bool>(answered_[seq])});
    answered_[seq] = true;
    touched_ = true;
  }

 private:
  /** One receive buffer for the engine thread (64 KiB: not one per train). */
  static Datagram& datagram() {
    static thread_local Datagram d;
    return d;
  }

  bool Open() {
    const int family = spec_.af == 6 ? AF_INET6 : AF_INET;
    const int proto = spec_.af == 6 ? static_cast<int>(IPPROTO_ICMPV6) : static_cast<int>(IPPROTO_ICMP);
    // A ping socket refused once (not in net.ipv4.ping_group_range) is not asked for again.
    static std::atomic<bool> dgram_refused{false};
    fd_ = dgram_refused.load() ? -1 : socket(family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, proto);
    raw_ = false;
    if (fd_ < 0 && (dgram_refused.load() || errno == EACCES || errno == EPERM)) {
      dgram_refused.store(true);
      fd_ = socket(family, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, proto);
      raw_ = true;
    }
    if (fd_ < 0) {
      out_.error = errno == EACCES || errno == EPERM
                       ? "no ICMP socket: not in net.ipv4.ping_group_range and no CAP_NET_RAW"
                       : errno_text("socket");
      return false;
    }
    out_.mode = raw_ ? "raw" : "dgram";
    int on = 1;
    setsockopt(fd_, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
    if (spec_.af == 6) {
      setsockopt(fd_, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &on, sizeof on);
      if (spec_.ttl > 0) setsockopt(fd_, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &spec_.ttl, sizeof spec_.ttl);
      if (raw_) {
        icmp6_filter filter;
        ICMP6_FILTER_SETBLOCKALL(&filter);
        ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &filter);
        setsockopt(fd_, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof filter);
      }
    } else {
      if (raw_) {
        // Linux's ICMP_FILTER (linux/icmp.h): a raw ICMP socket is handed echo replies only, not every ICMP packet.
        constexpr int kIcmpFilter = 1;
        const uint32_t blocked = ~(1u << ICMP_ECHOREPLY);
        setsockopt(fd_, SOL_RAW, kIcmpFilter, &blocked, sizeof blocked);
      }
      setsockopt(fd_, IPPROTO_IP, IP_RECVTTL, &on, sizeof on);
      if (spec_.ttl > 0) setsockopt(fd_, IPPROTO_IP, IP_TTL, &spec_.ttl, sizeof spec_.ttl);
    }
    sockaddr_storage dst{};
    socklen_t dst_len;
    if (spec_.af == 6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&dst);
      a->sin6_family = AF_INET6;
      if (inet_pton(AF_INET6, spec_.dst.c_str(), &a->sin6_addr) != 1) {
        out_.error = "not an IPv6 address: " + spec_.dst;
        return false;
      }
      dst_len = sizeof *a;
    } else {
      auto* a = reinterpret_cast<sockaddr_in*>(&dst);
      a->sin_family = AF_INET;
      if (inet_pton(AF_INET, spec_.dst.c_str(), &a->sin_addr) != 1) {
        out_.error = "not an IPv4 address: " + spec_.dst;
        return false;
      }
      dst_len = sizeof *a;
    }
    // connect() fixes the source address (so we can report src_addr) and, for raw sockets, makes the kernel
    // deliver only packets from the target.
    if (connect(fd_, reinterpret_cast<sockaddr*>(&dst), dst_len) != 0) {
      out_.error = errno_text("connect");
      return false;
    }
    sockaddr_storage local{};
    socklen_t len = sizeof local;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &len);
    char buf[INET6_ADDRSTRLEN] = {0};
    if (local.ss_family == AF_INET6) {
      auto* l = reinterpret_cast<sockaddr_in6*>(&local);
      inet_ntop(AF_INET6, &l->sin6_addr, buf, sizeof buf);
      ident_ = raw_ ? RawIdent() : ntohs(l->sin6_port);
    } else {
      auto* l = reinterpret_cast<sockaddr_in*>(&local);
      inet_ntop(AF_INET, &l->sin_addr, buf, sizeof buf);
      ident_ = raw_ ? RawIdent() : ntohs(l->sin_port);
    }
    out_.src_addr = buf;
    return true;
  }

  static uint16_t RawIdent() {
    static uint32_t counter = 0;
    return static_cast<uint16_t>((getpid() * 2654435761u) ^ (++counter * 40503u));
  }

  bool Send(int seq) {
    uint8_t pkt[8 + 65000];
    const size_t len = 8 + static_cast<size_t>(spec_.size);
    std::memset(pkt, 0, 8);
    pkt[0] = spec_.af == 6 ? ICMP6_ECHO_REQUEST : ICMP_ECHO;
    pkt[4] = ident_ >> 8;
    pkt[5] = ident_ & 0xff;
    pkt[6] = (seq >> 8) & 0xff;
    pkt[7] = seq & 0xff;
    for (size_t i = 8; i < len; i++) pkt[i] = static_cast<uint8_t>(i);
    // The kernel fills the checksum for ping sockets and for raw ICMPv6; raw ICMPv4 needs ours.
    if (raw_ && spec_.af == 4) {
      uint16_t c = checksum(pkt, len);
      std::memcpy(&pkt[2], &c, 2);
    }
    return send(fd_, pkt, len, 0) == static_cast<ssize_t>(len);
  }

  uint32_t id_;
  PingSpec spec_;
  vantage::CancelFlag cancelled_;
  int fd_ = -1;
  bool raw_ = false;
  uint16_t ident_ = 0;
  double start_ = 0;
  double wake_ = 0;
  bool touched_ = true;
  int next_ = 0;
  std::vector<double> sent_at_;
  std::vector<bool> answered_;
  PingOutcome out_;
};

/**
 * Every ping train of the process on one thread, as scamper runs its probes on one event loop: an epoll over the
 * trains' sockets, a wake-up eventfd for new trains and cancellations, and a timeout to the next packet due. A
 * train per libuv pool thread cost a thread switch per packet and a thread per concurrent measurement.
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
    ev.data.ptr = nullptr;  // the wake-up eventfd
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
    epoll_event events[64];
    // Set when the wake-up eventfd fired: new trains, or a cancellation flag to look at.
    bool step_all = false;
    while (!stop_.load()) {
      double wake = -1;
      const double now = now_ms();
      for (size_t i = 0; i < active.size();) {
        // Only trains with something to do are stepped: a reply each would otherwise step every train.
        const bool due = step_all || active[i]->touched() || now >= active[i]->wake();
        if (due && active[i]->Step()) {
          active[i]->Close();  // leaves the epoll set with it
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
      const int n = epoll_pwait2(epoll_, events, 64, wake < 0 ? nullptr : &timeout, nullptr);
      for (int i = 0; i < n; i++) {
        if (events[i].data.ptr != nullptr) {
          static_cast<Train*>(events[i].data.ptr)->Drain();
          continue;
        }
        uint64_t count;
        if (read(wake_, &count, sizeof count) < 0) { /* nothing pending */ }
        step_all = true;
        std::vector<std::unique_ptr<Train>> started, failed;
        {
          std::lock_guard<std::mutex> lock(mu_);
          started.swap(incoming_);
        }
        for (auto& t : started) {
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.ptr = t.get();
          if (t->Start() && epoll_ctl(epoll_, EPOLL_CTL_ADD, t->fd(), &ev) == 0) active.push_back(std::move(t));
          else {
            if (t->outcome().error.empty()) t->outcome().error = errno_text("epoll_ctl");
            failed.push_back(std::move(t));
          }
        }
        for (auto& t : failed) finished.push_back(std::move(t));
      }
    }
  }

  void Finish(std::vector<std::unique_ptr<Train>>&& trains) {
    for (auto& t : trains) {
      t->Close();
      vantage::cancel_release(t->cancel_id());
    }
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
    Napi::Array replies = Napi::Array::New(env, outcome.replies.size());
    for (size_t i = 0; i < outcome.replies.size(); i++) {
      const Reply& r = outcome.replies[i];
      Napi::Object e = Napi::Object::New(env);
      e.Set("seq", r.seq);
      e.Set("rtt", r.rtt_ms);
      e.Set("ttl", r.ttl);
      e.Set("dup", r.dup);
      replies.Set(static_cast<uint32_t>(i), e);
    }
    o.Set("replies", replies);
    return o;
  }

  int epoll_ = -1;
  int wake_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
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

// ping({af, dst, packets, size, interval_ms, timeout_ms, ttl?}) → Promise<{mode, src_addr, sent, replies[], error?}>
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
  spec.ttl = IntField(o, "ttl", 0);
  spec.cancel_id = IntField(o, "cancel_id", 0);
  if (spec.packets < 1 || spec.packets > 64 || spec.size < 0 || spec.size > 65000 || spec.interval_ms < 0 ||
      spec.timeout_ms < 1 || spec.ttl < 0 || spec.ttl > 255) {
    Napi::RangeError::New(env, "ping(spec): packets, size, interval_ms, timeout_ms or ttl out of range")
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
