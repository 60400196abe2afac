// vantage_icmp: ICMP echo for the probe agent, measured with kernel receive timestamps.
//
// Node cannot open ICMP sockets, so this addon does one thing: run a ping train (N echo requests at a fixed
// interval, then wait for late replies) on a worker thread and hand back what came back. It prefers the
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
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
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

class Pinger {
 public:
  Pinger(const PingSpec& spec, vantage::CancelFlag cancelled) : spec_(spec), cancelled_(std::move(cancelled)) {}
  ~Pinger() {
    if (fd_ >= 0) close(fd_);
  }

  PingOutcome Run() {
    PingOutcome out;
    if (!Open(out)) return out;
    const double start = now_ms();
    std::vector<double> sent_at(spec_.packets, 0.0);
    std::vector<bool> answered(spec_.packets, false);
    int next = 0;
    for (;;) {
      if (cancelled_->load()) {
        out.error = "cancelled";
        return out;
      }
      const double t = now_ms();
      if (next < spec_.packets && t >= start + static_cast<double>(next) * spec_.interval_ms) {
        sent_at[next] = now_ms();
        if (Send(next)) out.sent++;
        else sent_at[next] = 0;
        next++;
        continue;
      }
      double deadline;
      if (next < spec_.packets) {
        deadline = start + static_cast<double>(next) * spec_.interval_ms;
      } else {
        double last = 0;
        for (double s : sent_at) last = s > last ? s : last;
        deadline = (last > 0 ? last : t) + spec_.timeout_ms;
        bool all = true;
        for (int i = 0; i < spec_.packets; i++) all = all && (answered[i] || sent_at[i] == 0);
        if (all || t >= deadline) break;
      }
      const int wait = static_cast<int>(deadline - now_ms()) + 1;
      pollfd p{fd_, POLLIN, 0};
      const int r = cancelled_->poll(&p, 1, wait < 0 ? 0 : wait);
      if (r < 0 && errno != EINTR) {
        out.error = errno_text("poll");
        return out;
      }
      if (r > 0) Drain(sent_at, answered, out);
    }
    return out;
  }

 private:
  bool Open(PingOutcome& out) {
    const int family = spec_.af == 6 ? AF_INET6 : AF_INET;
    const int proto = spec_.af == 6 ? static_cast<int>(IPPROTO_ICMPV6) : static_cast<int>(IPPROTO_ICMP);
    fd_ = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, proto);
    raw_ = false;
    if (fd_ < 0 && (errno == EACCES || errno == EPERM)) {
      fd_ = socket(family, SOCK_RAW | SOCK_CLOEXEC, proto);
      raw_ = true;
    }
    if (fd_ < 0) {
      out.error = errno == EACCES || errno == EPERM
                      ? "no ICMP socket: not in net.ipv4.ping_group_range and no CAP_NET_RAW"
                      : errno_text("socket");
      return false;
    }
    out.mode = raw_ ? "raw" : "dgram";
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
      setsockopt(fd_, IPPROTO_IP, IP_RECVTTL, &on, sizeof on);
      if (spec_.ttl > 0) setsockopt(fd_, IPPROTO_IP, IP_TTL, &spec_.ttl, sizeof spec_.ttl);
    }
    if (spec_.af == 6) {
      sockaddr_in6 a{};
      a.sin6_family = AF_INET6;
      if (inet_pton(AF_INET6, spec_.dst.c_str(), &a.sin6_addr) != 1) {
        out.error = "not an IPv6 address: " + spec_.dst;
        return false;
      }
      std::memcpy(&dst_, &a, sizeof a);
      dst_len_ = sizeof a;
    } else {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      if (inet_pton(AF_INET, spec_.dst.c_str(), &a.sin_addr) != 1) {
        out.error = "not an IPv4 address: " + spec_.dst;
        return false;
      }
      std::memcpy(&dst_, &a, sizeof a);
      dst_len_ = sizeof a;
    }
    // connect() fixes the source address (so we can report src_addr) and, for raw sockets, makes the kernel
    // deliver only packets from the target.
    if (connect(fd_, reinterpret_cast<sockaddr*>(&dst_), dst_len_) != 0) {
      out.error = errno_text("connect");
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
    out.src_addr = buf;
    return true;
  }

  static uint16_t RawIdent() {
    static uint32_t counter = 0;
    return static_cast<uint16_t>((getpid() * 2654435761u) ^ (++counter * 40503u));
  }

  bool Send(int seq) {
    std::vector<uint8_t> pkt(8 + static_cast<size_t>(spec_.size), 0);
    pkt[0] = spec_.af == 6 ? ICMP6_ECHO_REQUEST : ICMP_ECHO;
    pkt[4] = ident_ >> 8;
    pkt[5] = ident_ & 0xff;
    pkt[6] = (seq >> 8) & 0xff;
    pkt[7] = seq & 0xff;
    for (size_t i = 8; i < pkt.size(); i++) pkt[i] = static_cast<uint8_t>(i);
    // The kernel fills the checksum for ping sockets and for raw ICMPv6; raw ICMPv4 needs ours.
    if (raw_ && spec_.af == 4) {
      uint16_t c = checksum(pkt.data(), pkt.size());
      std::memcpy(&pkt[2], &c, 2);
    }
    return send(fd_, pkt.data(), pkt.size(), 0) == static_cast<ssize_t>(pkt.size());
  }

  void Drain(const std::vector<double>& sent_at, std::vector<bool>& answered, PingOutcome& out) {
    for (;;) {
      Datagram d;
      const ssize_t n = d.Receive(fd_, 0);
      if (n < 0) return;
      const uint8_t* buf = d.data;
      const double rx = d.Timestamp();
      int ttl = -1;
      if (!d.Cmsg(IPPROTO_IP, IP_TTL, ttl)) d.Cmsg(IPPROTO_IPV6, IPV6_HOPLIMIT, ttl);
      const uint8_t* icmp = buf;
      size_t len = static_cast<size_t>(n);
      if (raw_ && spec_.af == 4) {  // raw IPv4 sockets hand us the IP header too
        if (len < sizeof(iphdr)) continue;
        const size_t ihl = (buf[0] & 0x0f) * 4;
        if (len < ihl + 8) continue;
        ttl = buf[8];
        icmp += ihl;
        len -= ihl;
      }
      if (len < 8) continue;
      const int reply_type = spec_.af == 6 ? ICMP6_ECHO_REPLY : ICMP_ECHOREPLY;
      if (icmp[0] != reply_type) continue;
      const uint16_t id = (icmp[4] << 8) | icmp[5];
      const int seq = (icmp[6] << 8) | icmp[7];
      if (raw_ && id != ident_) continue;  // ping sockets already demultiplex by id
      if (seq < 0 || seq >= spec_.packets || sent_at[seq] == 0) continue;
      Reply r{seq, rx - sent_at[seq], ttl, static_cast<bool>(answered[seq])};
      answered[seq] = true;
      out.replies.push_back(r);
    }
  }

  PingSpec spec_;
  vantage::CancelFlag cancelled_;
  int fd_ = -1;
  bool raw_ = false;
  uint16_t ident_ = 0;
  sockaddr_storage dst_{};
  socklen_t dst_len_ = 0;
};

class PingWorker : public Napi::AsyncWorker {
 public:
  PingWorker(Napi::Env env, PingSpec spec)
      : Napi::AsyncWorker(env, "vantage:ping"), spec_(std::move(spec)), cancelled_(vantage::cancel_register(spec_.cancel_id)),
        deferred_(Napi::Promise::Deferred::New(env)) {}
  ~PingWorker() override { vantage::cancel_release(spec_.cancel_id); }

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override { outcome_ = Pinger(spec_, cancelled_).Run(); }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object o = Napi::Object::New(env);
    if (!outcome_.error.empty()) o.Set("error", outcome_.error);
    o.Set("mode", outcome_.mode);
    o.Set("src_addr", outcome_.src_addr);
    o.Set("sent", outcome_.sent);
    Napi::Array replies = Napi::Array::New(env, outcome_.replies.size());
    for (size_t i = 0; i < outcome_.replies.size(); i++) {
      const Reply& r = outcome_.replies[i];
      Napi::Object e = Napi::Object::New(env);
      e.Set("seq", r.seq);
      e.Set("rtt", r.rtt_ms);
      e.Set("ttl", r.ttl);
      e.Set("dup", r.dup);
      replies.Set(static_cast<uint32_t>(i), e);
    }
    o.Set("replies", replies);
    deferred_.Resolve(o);
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  PingSpec spec_;
  vantage::CancelFlag cancelled_;
  PingOutcome outcome_;
  Napi::Promise::Deferred deferred_;
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
  auto* worker = new PingWorker(env, spec);
  Napi::Promise p = worker->Promise();
  worker->Queue();
  return p;
}

}  // namespace

void RegisterTraceroute(Napi::Env env, Napi::Object exports);

// cancel(id) → true if a measurement with that cancel_id was running.
static Napi::Value Cancel(const Napi::CallbackInfo& info) {
  const int id = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
  return Napi::Boolean::New(info.Env(), id != 0 && vantage::cancel_request(id));
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("ping", Napi::Function::New(env, Ping, "ping"));
  exports.Set("cancel", Napi::Function::New(env, Cancel, "cancel"));
  RegisterTraceroute(env, exports);
  return exports;
}

NODE_API_MODULE(vantage_icmp, Init)
