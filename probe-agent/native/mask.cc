// WebSocket frame masking (RFC 6455 §5.3) for the ws library, with the API of its optional `bufferutil` addon:
// a client masks every byte it sends, and ws's JavaScript fallback costs the agent ~28 µs per result it sends
// (a 70 KB results frame, measured under the agent's --lite-mode). probe-agent/build.ts hands these to ws.
#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace {

// mask(source, mask, output, offset, length): output[offset + i] = source[i] ^ mask[i % 4], for i < length.
Napi::Value Mask(const Napi::CallbackInfo& info) {
  auto source = info[0].As<Napi::Uint8Array>();
  auto mask = info[1].As<Napi::Uint8Array>();
  auto output = info[2].As<Napi::Uint8Array>();
  const size_t offset = info[3].As<Napi::Number>().Uint32Value();
  const size_t length = info[4].As<Napi::Number>().Uint32Value();
  if (mask.ByteLength() < 4 || source.ByteLength() < length || output.ByteLength() < offset + length) {
    Napi::RangeError::New(info.Env(), "mask: buffers too short for the length").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  const uint8_t* s = source.Data();
  const uint8_t* m = mask.Data();
  uint8_t* o = output.Data() + offset;
  for (size_t i = 0; i < length; i++) o[i] = s[i] ^ m[i & 3];
  return info.Env().Undefined();
}

// unmask(buffer, mask): buffer[i] ^= mask[i % 4].
Napi::Value Unmask(const Napi::CallbackInfo& info) {
  auto buffer = info[0].As<Napi::Uint8Array>();
  auto mask = info[1].As<Napi::Uint8Array>();
  if (mask.ByteLength() < 4) {
    Napi::RangeError::New(info.Env(), "unmask: the mask must be 4 bytes").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  uint8_t* b = buffer.Data();
  const uint8_t* m = mask.Data();
  for (size_t i = 0, n = buffer.ByteLength(); i < n; i++) b[i] ^= m[i & 3];
  return info.Env().Undefined();
}

}  // namespace

void RegisterMask(Napi::Env env, Napi::Object exports) {
  exports.Set("mask", Napi::Function::New(env, Mask, "mask"));
  exports.Set("unmask", Napi::Function::New(env, Unmask, "unmask"));
}
