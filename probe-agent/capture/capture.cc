// Live packet capture for the agent's DNS statistics (probe-agent/dnsstats/live.ts): libpcap on an interface or a
// mirror port, on a thread of its own, handing JavaScript batches of packets in pcap's record layout (16-byte
// little-endian header, then the bytes) at most every 50 ms or 256 KB, so the event loop pays one call per batch,
// not per packet. A separate addon from the ICMP one: only hosts that collect DNS statistics need libpcap.
//
// new Capture({interface, filter, snaplen}, onBatch(buffer, linkType)); .stats() → {received, kernel_dropped,
// batches_dropped}; .close() asks the thread to stop: it reads what the kernel still holds, hands it over, and
// ends with onBatch(null, -1), after which nothing more comes (the handle stays alive until then).
#include <napi.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr size_t kBatchBytes = 256 * 1024;
constexpr auto kBatchAge = std::chrono::milliseconds(50);
/** Batches waiting for JavaScript at most; past it a batch is dropped (and counted), never the thread blocked. */
constexpr size_t kMaxQueued = 64;

struct Batch {
  std::vector<uint8_t> bytes;
  int link_type;
};

class Capture : public Napi::ObjectWrap<Capture> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Capture", {InstanceMethod("close", &Capture::Close), InstanceMethod("stats", &Capture::Stats)});
  }

  explicit Capture(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Capture>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
      Napi::TypeError::New(env, "open({interface, filter?, snaplen?}, onBatch)").ThrowAsJavaScriptException();
      return;
    }
    Napi::Object o = info[0].As<Napi::Object>();
    const std::string iface = o.Get("interface").ToString().Utf8Value();
    const std::string filter = o.Has("filter") ? o.Get("filter").ToString().Utf8Value() : "";
    const int snaplen = o.Has("snaplen") ? o.Get("snaplen").ToNumber().Int32Value() : 65535;
    char errbuf[PCAP_ERRBUF_SIZE] = {0};
    pcap_ = pcap_create(iface.c_str(), errbuf);
    if (!pcap_) {
      Napi::Error::New(env, iface + ": " + errbuf).ThrowAsJavaScriptException();
      return;
    }
    pcap_set_snaplen(pcap_, snaplen);
    pcap_set_timeout(pcap_, 50);
    pcap_set_immediate_mode(pcap_, 1);
    pcap_set_buffer_size(pcap_, 8 << 20);
    if (pcap_activate(pcap_) < 0) {
      Fail(env, iface + ": " + pcap_geterr(pcap_));
      return;
    }
    if (!filter.empty()) {
      bpf_program program;
      if (pcap_compile(pcap_, &program, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0 || pcap_setfilter(pcap_, &program) != 0) {
        Fail(env, "filter \"" + filter + "\": " + pcap_geterr(pcap_));
        return;
      }
      pcap_freecode(&program);
    }
    pcap_setnonblock(pcap_, 1, errbuf);
    link_type_ = pcap_datalink(pcap_);
    tsfn_ = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "vantage-capture", kMaxQueued, 1);
    Ref();  // not collected while the thread runs; the end-of-capture call releases it
    thread_ = std::thread([this] { Run(); });
  }

  ~Capture() override {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Fail(Napi::Env env, const std::string& message) {
    pcap_close(pcap_);
    pcap_ = nullptr;
    Napi::Error::New(env, message).ThrowAsJavaScriptException();
  }

  void Run() {
    pthread_setname_np(pthread_self(), "vantage-capture");
    const int fd = pcap_get_selectable_fd(pcap_);
    auto* batch = new Batch{{}, link_type_};
    auto started = std::chrono::steady_clock::now();
    while (!stop_.load()) {
      pollfd p{fd, POLLIN, 0};
      if (fd >= 0) poll(&p, 1, 50);
      const int n = pcap_dispatch(pcap_, -1, [](u_char* user, const pcap_pkthdr* h, const u_char* bytes) {
        auto* b = reinterpret_cast<Batch*>(user);
        uint32_t head[4] = {static_cast<uint32_t>(h->ts.tv_sec), static_cast<uint32_t>(h->ts.tv_usec), h->caplen, h->len};
        const auto* hp = reinterpret_cast<const uint8_t*>(head);  // the agent's hosts are little-endian (amd64, arm64)
        b->bytes.insert(b->bytes.end(), hp, hp + sizeof head);
        b->bytes.insert(b->bytes.end(), bytes, bytes + h->caplen);
      }, reinterpret_cast<u_char*>(batch));
      if (n < 0) break;
      if (n > 0) received_ += n;
      const auto now = std::chrono::steady_clock::now();
      if (batch->bytes.empty()) started = now;
      if (!batch->bytes.empty() && (batch->bytes.size() >= kBatchBytes || now - started >= kBatchAge)) {
        Send(batch);
        batch = new Batch{{}, link_type_};
        started = now;
      }
    }
    // Stopping: what the kernel already holds is read too, so a stop loses no packet that arrived before it.
    while (pcap_dispatch(pcap_, -1, [](u_char* user, const pcap_pkthdr* h, const u_char* bytes) {
      auto* b = reinterpret_cast<Batch*>(user);
      uint32_t head[4] = {static_cast<uint32_t>(h->ts.tv_sec), static_cast<uint32_t>(h->ts.tv_usec), h->caplen, h->len};
      const auto* hp = reinterpret_cast<const uint8_t*>(head);
      b->bytes.insert(b->bytes.end(), hp, hp + sizeof head);
      b->bytes.insert(b->bytes.end(), bytes, bytes + h->caplen);
    }, reinterpret_cast<u_char*>(batch)) > 0) {
    }
    // The last packets and then the end, each waiting for room in the queue (the JavaScript thread is free: close()
    // does not wait for this thread).
    if (!batch->bytes.empty()) tsfn_.BlockingCall(batch, Deliver);
    else delete batch;
    pcap_stat s{};
    if (pcap_stats(pcap_, &s) == 0) final_kernel_dropped_ = s.ps_drop + s.ps_ifdrop;
    pcap_close(pcap_);
    pcap_ = nullptr;
    tsfn_.BlockingCall(new Batch{{}, -1}, [](Napi::Env env, Napi::Function callback, Batch* b) {
      delete b;
      callback.Call({env.Null(), Napi::Number::New(env, -1)});
    });
    // The object may go once JavaScript has heard the end: Unref on the main thread.
    tsfn_.BlockingCall(this, [](Napi::Env, Napi::Function, Capture* self) { self->Unref(); });
    tsfn_.Release();
  }

  static void Deliver(Napi::Env env, Napi::Function callback, Batch* b) {
    auto buffer = Napi::Buffer<uint8_t>::Copy(env, b->bytes.data(), b->bytes.size());
    const int link = b->link_type;
    delete b;
    callback.Call({buffer, Napi::Number::New(env, link)});
  }

  void Send(Batch* batch) {
    if (tsfn_.NonBlockingCall(batch, Deliver) != napi_ok) {
      batches_dropped_++;
      delete batch;
    }
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    stop_.store(true);
    return info.Env().Undefined();
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    pcap_stat s{};
    // pcap_stats while the thread reads is safe on Linux (a getsockopt); after the end, the last figure kept.
    const bool have = !stop_.load() && pcap_ && pcap_stats(pcap_, &s) == 0;
    o.Set("received", Napi::Number::New(env, static_cast<double>(received_.load())));
    o.Set("kernel_dropped", Napi::Number::New(env, have ? s.ps_drop + s.ps_ifdrop : final_kernel_dropped_.load()));
    o.Set("batches_dropped", Napi::Number::New(env, static_cast<double>(batches_dropped_.load())));
    return o;
  }

  pcap_t* pcap_ = nullptr;
  int link_type_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint32_t> final_kernel_dropped_{0};
  std::atomic<uint64_t> received_{0};
  std::atomic<uint64_t> batches_dropped_{0};
  Napi::ThreadSafeFunction tsfn_;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Capture", Capture::Init(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(vantage_capture, Init)
