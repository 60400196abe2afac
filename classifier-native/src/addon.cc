// Node-API surface: classify(files, options) → Promise<{flows, stats}>, run on a worker thread.
#include <napi.h>

#include <arpa/inet.h>

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

class ClassifyWorker : public Napi::AsyncWorker {
 public:
  ClassifyWorker(Napi::Env env, std::vector<std::string> files, classifier::Options options)
      : Napi::AsyncWorker(env, "vantage:classify"), files_(std::move(files)), options_(std::move(options)),
        deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    std::string error;
    if (!engine_.Init(options_, error)) return SetError(error);
    for (const auto& f : files_) {
      if (!engine_.ProcessFile(f, error)) return SetError(error);
      if (!error.empty()) warnings_.push_back(error);
      error.clear();
    }
    engine_.Finish();
  }

  void OnOK() override {
    Napi::Env env = Env();
    auto& flows = engine_.flows();
    Napi::Array out = Napi::Array::New(env, flows.size());
    for (size_t i = 0; i < flows.size(); i++) {
      const classifier::Flow& f = flows[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("proto", ProtoName(f.proto));
      o.Set("src", AddressText(f.src));
      o.Set("sport", f.sport);
      o.Set("dst", AddressText(f.dst));
      o.Set("dport", f.dport);
      o.Set("vlan", f.vlan ? Napi::Value(Napi::Number::New(env, f.vlan)) : env.Null());
      o.Set("first_ts", f.first_ts);
      o.Set("last_ts", f.last_ts);
      o.Set("packets_up", f.packets[0]);
      o.Set("bytes_up", static_cast<double>(f.bytes[0]));
      o.Set("packets_down", f.packets[1]);
      o.Set("bytes_down", static_cast<double>(f.bytes[1]));
      o.Set("label", f.label);
      o.Set("confidence", f.confidence);
      o.Set("plugin", f.plugin.empty() ? env.Null() : Napi::Value(Napi::String::New(env, f.plugin)));
      o.Set("packets_to_decision", f.packets_to_decision);
      out.Set(static_cast<uint32_t>(i), o);
    }
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
    Napi::Object result = Napi::Object::New(env);
    result.Set("flows", out);
    result.Set("stats", stats);
    deferred_.Resolve(result);
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  std::vector<std::string> files_;
  classifier::Options options_;
  classifier::Engine engine_;
  std::vector<std::string> warnings_;
  Napi::Promise::Deferred deferred_;
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
  auto* w = new ClassifyWorker(env, std::move(files), std::move(options));
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
