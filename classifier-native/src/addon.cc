// Node-API surface: classify(files, options, onEvent?) → Promise<{flows, stats}>, run on a worker thread; with
// onEvent, decisions (realtime) and interval reports (cyclic, options.interval) are pushed as they happen.
#include <algorithm>
#include <napi.h>

#include <arpa/inet.h>
#include <atomic>

#include "engine.h"

namespace {

std::string AddressText(const classifier::Address& a) {
  char buf[INET6_ADDRSTRLEN] = {0};
  inet_ntop(a.version == 6 ? AF_INET6 : AF_INET, a.bytes, buf, sizeof buf);
  return buf;
}

std::string ProtoName(uint8_t p) {
  switch (p) {
    case 6: return "TCP";
    case 17: return "UDP";
    case 1: return "ICMP";
    case 2: return "IGMP";
    case 58: return "ICMPV6";
    case 132: return "SCTP";
    case 47: return "GRE";
    default: return std::to_string(p);
  }
}

/** Traffic per application (an interval's, or the whole run's) as JavaScript objects. */
Napi::Array Apps(Napi::Env env, const classifier::Totals& apps) {
  Napi::Array out = Napi::Array::New(env, apps.size());
  uint32_t i = 0;
  for (const auto& [label, c] : apps) {
    Napi::Object a = Napi::Object::New(env);
    a.Set("label", label);
    a.Set("flows", static_cast<double>(c.flows));
    a.Set("packets_up", static_cast<double>(c.packets[0]));
    a.Set("bytes_up", static_cast<double>(c.bytes[0]));
    a.Set("packets_down", static_cast<double>(c.packets[1]));
    a.Set("bytes_down", static_cast<double>(c.bytes[1]));
    out.Set(i++, a);
  }
  return out;
}

/** A flow as handed to JavaScript: copied out of the engine, so it can cross to the main thread at any time. */
struct Record {
  std::string proto, src, dst, label, plugin;
  uint16_t sport = 0, dport = 0, vlan = 0;
  double first_ts = 0, last_ts = 0, bytes_up = 0, bytes_down = 0;
  uint32_t packets_up = 0, packets_down = 0, packets_to_decision = 0;
  uint8_t confidence = 0;
  std::vector<int> features;  // with the `features` option: the statistical plug-in's inputs (proto, sizes, gaps)

  static Record Of(const classifier::Flow& f, const classifier::Engine& engine, bool features = false) {
    Record r{ProtoName(f.proto), AddressText(f.src), AddressText(f.dst), engine.Label(f.label), engine.PluginName(f.plugin), f.sport, f.dport, f.vlan,
             f.first_ts, f.last_ts, static_cast<double>(f.bytes[0]), static_cast<double>(f.bytes[1]),
             f.packets[0], f.packets[1], f.packets_to_decision, f.confidence, {}};
    if (features) {
      r.features.push_back(f.proto);
      for (size_t i = 0; i < classifier::kEarlyPackets; i++) r.features.push_back(i < f.early_count ? f.early_sizes[i] : 0);
      for (size_t i = 0; i < classifier::kEarlyPackets; i++) r.features.push_back(i < f.early_count ? f.early_gaps_ms[i] : 0);
    }
    return r;
  }

  Napi::Object ToObject(Napi::Env env) const {
    Napi::Object o = Napi::Object::New(env);
    o.Set("proto", proto);
    o.Set("src", src);
    o.Set("sport", sport);
    o.Set("dst", dst);
    o.Set("dport", dport);
    o.Set("vlan", vlan ? Napi::Value(Napi::Number::New(env, vlan)) : env.Null());
    if (!features.empty()) {
      Napi::Array x = Napi::Array::New(env, features.size());
      for (size_t i = 0; i < features.size(); i++) x.Set(static_cast<uint32_t>(i), features[i]);
      o.Set("features", x);
    }
    o.Set("first_ts", first_ts);
    o.Set("last_ts", last_ts);
    o.Set("packets_up", packets_up);
    o.Set("bytes_up", bytes_up);
    o.Set("packets_down", packets_down);
    o.Set("bytes_down", bytes_down);
    o.Set("label", label);
    o.Set("confidence", confidence);
    o.Set("plugin", plugin.empty() ? env.Null() : Napi::Value(Napi::String::New(env, plugin)));
    o.Set("packets_to_decision", packets_to_decision);
    return o;
  }
};

/** What realtime and cyclic modes push to JavaScript while the worker runs. */
struct Event {
  bool is_decision = true;
  Record decision;
  classifier::IntervalReport interval;

  Napi::Object ToObject(Napi::Env env) const {
    Napi::Object o = Napi::Object::New(env);
    if (is_decision) {
      o.Set("type", "decision");
      o.Set("flow", decision.ToObject(env));
      return o;
    }
    o.Set("type", "interval");
    o.Set("start", interval.start);
    o.Set("end", interval.end);
    o.Set("apps", Apps(env, interval.apps));
    return o;
  }
};

class ClassifyWorker : public Napi::AsyncWorker {
 public:
  ClassifyWorker(Napi::Env env, std::vector<std::string> files, classifier::Options options, Napi::Function on_event)
      : Napi::AsyncWorker(env, "vantage:classify"), files_(std::move(files)), options_(std::move(options)),
        deferred_(Napi::Promise::Deferred::New(env)) {
    if (!on_event.IsEmpty()) {
      events_ = Napi::ThreadSafeFunction::New(env, on_event, "vantage:classify-events", 0, 1);
      has_events_ = true;
    }
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    std::string error;
    if (has_events_) {
      // Each event is copied and handed to the main thread as it happens (BlockingCall keeps them in order).
      auto push = [this](Event* e) {
        events_.BlockingCall(e, [](Napi::Env env, Napi::Function cb, Event* ev) {
          cb.Call({ev->ToObject(env)});
          delete ev;
        });
      };
      engine_.on_decision = [this, push](const classifier::Flow& f) { push(new Event{true, Record::Of(f, engine_), {}}); };
      engine_.on_interval = [push](const classifier::IntervalReport& r) { push(new Event{false, {}, r}); };
    }
    if (!engine_.Init(options_, error)) return SetError(error);
    if (!interface_.empty()) {
      if (!engine_.ProcessLive(interface_, duration_, stop_, error)) return SetError(error);
      engine_.End();
      return;
    }
    for (const auto& f : files_) {
      if (!engine_.ProcessFile(f, error)) return SetError(error);
      if (!error.empty()) warnings_.push_back(error);
      error.clear();
    }
    engine_.Finish();
    engine_.End();
  }

  void OnOK() override {
    Napi::Env env = Env();
    auto& flows = engine_.flows();
    Napi::Array out = Napi::Array::New(env, flows.size());
    for (size_t i = 0; i < flows.size(); i++) out.Set(static_cast<uint32_t>(i), Record::Of(flows[i], engine_, options_.features).ToObject(env));
    const auto& s = engine_.stats();
    Napi::Object stats = Napi::Object::New(env);
    stats.Set("packets", static_cast<double>(s.decode.packets));
    stats.Set("decoded", static_cast<double>(s.decode.ok));
    stats.Set("truncated", static_cast<double>(s.decode.truncated));
    stats.Set("malformed", static_cast<double>(s.decode.malformed));
    stats.Set("not_ip", static_cast<double>(s.decode.not_ip));
    stats.Set("fragments", static_cast<double>(s.decode.fragments));
    stats.Set("flows", static_cast<double>(s.flows));
    stats.Set("evicted", static_cast<double>(s.evicted));
    Napi::Array warnings = Napi::Array::New(env, warnings_.size());
    for (size_t i = 0; i < warnings_.size(); i++) warnings.Set(static_cast<uint32_t>(i), warnings_[i]);
    stats.Set("warnings", warnings);
    if (options_.timing) {
      // Per deciding plug-in: how many flows it decided and their decision times (plug-ins + combiner), in µs.
      Napi::Object timing = Napi::Object::New(env);
      for (auto [plugin, ns] : s.decision_ns) {
        std::sort(ns.begin(), ns.end());
        double sum = 0;
        for (uint32_t x : ns) sum += x;
        Napi::Object t = Napi::Object::New(env);
        t.Set("decisions", static_cast<double>(ns.size()));
        t.Set("median_us", ns[ns.size() / 2] / 1000.0);
        t.Set("p90_us", ns[ns.size() * 9 / 10] / 1000.0);
        t.Set("mean_us", sum / ns.size() / 1000.0);
        timing.Set(plugin.empty() ? "Unknown" : plugin, t);
      }
      stats.Set("timing", timing);
    }
    Napi::Object result = Napi::Object::New(env);
    result.Set("flows", out);
    result.Set("stats", stats);
    result.Set("apps", Apps(env, engine_.totals()));
    if (has_events_) {
      // Events still queued for the main thread must reach JavaScript before the promise settles: resolve through
      // the same queue, behind them.
      auto* held = new Napi::ObjectReference(Napi::Persistent(result));
      auto deferred = deferred_;
      events_.NonBlockingCall([held, deferred](Napi::Env, Napi::Function) mutable {
        deferred.Resolve(held->Value());
        delete held;
      });
      Release();
      return;
    }
    deferred_.Resolve(result);
  }

  void OnError(const Napi::Error& e) override {
    Release();
    deferred_.Reject(e.Value());
  }

 private:
  std::vector<std::string> files_;
 public:
  std::string interface_;
  double duration_ = 0;
  std::atomic<bool> stop_{false};
 private:
  classifier::Options options_;
  classifier::Engine engine_;
  std::vector<std::string> warnings_;
  Napi::Promise::Deferred deferred_;
  Napi::ThreadSafeFunction events_;
  bool has_events_ = false;

  void Release() {
    if (has_events_) events_.Release();
    has_events_ = false;
  }
};

Napi::Value Classify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsArray() || !info[1].IsObject()) {
    Napi::TypeError::New(env, "classify(files: string[], options: object)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::vector<std::string> files;
  Napi::Array list = info[0].As<Napi::Array>();
  for (uint32_t i = 0; i < list.Length(); i++) files.push_back(list.Get(i).ToString().Utf8Value());
  Napi::Object o = info[1].As<Napi::Object>();
  classifier::Options options;
  options.data_dir = o.Get("data_dir").ToString().Utf8Value();
  if (o.Get("bpf").IsString()) options.bpf = o.Get("bpf").As<Napi::String>().Utf8Value();
  if (o.Get("plugins").IsArray()) {
    options.plugins.clear();
    Napi::Array p = o.Get("plugins").As<Napi::Array>();
    for (uint32_t i = 0; i < p.Length(); i++) options.plugins.push_back(p.Get(i).ToString().Utf8Value());
  }
  if (o.Get("max_flows").IsNumber()) options.max_flows = static_cast<size_t>(o.Get("max_flows").As<Napi::Number>().Int64Value());
  if (o.Get("interval").IsNumber()) options.interval = o.Get("interval").As<Napi::Number>().DoubleValue();
  if (o.Get("sessions").IsString()) options.sessions = o.Get("sessions").As<Napi::String>().Utf8Value();
  if (o.Get("combiner").IsString()) options.combiner = o.Get("combiner").As<Napi::String>().Utf8Value();
  if (o.Get("weights").IsString()) options.weights = o.Get("weights").As<Napi::String>().Utf8Value();
  if (o.Get("flows").IsBoolean()) options.keep_flows = o.Get("flows").As<Napi::Boolean>().Value();
  if (o.Get("active_timeout").IsNumber()) options.active = o.Get("active_timeout").As<Napi::Number>().DoubleValue();
  if (o.Get("timing").IsBoolean()) options.timing = o.Get("timing").As<Napi::Boolean>().Value();
  options.features = o.Get("features").IsBoolean() && o.Get("features").As<Napi::Boolean>().Value();
  Napi::Function on_event = info.Length() > 2 && info[2].IsFunction() ? info[2].As<Napi::Function>() : Napi::Function();
  auto* w = new ClassifyWorker(env, std::move(files), std::move(options), on_event);
  if (o.Get("interface").IsString()) w->interface_ = o.Get("interface").As<Napi::String>().Utf8Value();
  if (o.Get("duration").IsNumber()) w->duration_ = o.Get("duration").As<Napi::Number>().DoubleValue();
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("classify", Napi::Function::New(env, Classify, "classify"));
  return exports;
}

}  // namespace

NODE_API_MODULE(vantage_classifier, Init)
