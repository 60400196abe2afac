// Long measurements (a traceroute can wait minutes for replies) run on a thread of their own, not on libuv's pool:
// the pool is four threads shared with the spool's file writes and DNS lookups, and one blocked by a measurement
// would hold a result's durability back. The thread exists while the measurement runs; its outcome is turned into
// JavaScript values on the main thread and settles the promise.
#pragma once
#include <napi.h>
#include <pthread.h>

#include <functional>
#include <thread>
#include <utility>

namespace vantage {

template <class Outcome>
Napi::Promise RunOnThread(Napi::Env env, const char* name, std::function<Outcome()> work,
                          std::function<Napi::Value(Napi::Env, const Outcome&)> convert) {
  struct Job {
    Napi::Promise::Deferred deferred;
    std::function<Napi::Value(Napi::Env, const Outcome&)> convert;
    Outcome outcome{};
  };
  auto* job = new Job{Napi::Promise::Deferred::New(env), std::move(convert)};
  Napi::Promise promise = job->deferred.Promise();
  // The thread-safe function keeps the event loop alive until the outcome is delivered.
  auto tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}), name, 0, 1);
  std::thread([tsfn, job, work = std::move(work), name]() mutable {
    pthread_setname_np(pthread_self(), name);
    job->outcome = work();
    const napi_status status = tsfn.BlockingCall([job](Napi::Env env, Napi::Function) {
      job->deferred.Resolve(job->convert(env, job->outcome));
      delete job;
    });
    if (status != napi_ok) delete job;  // the environment is shutting down: nobody is waiting
    tsfn.Release();
  }).detach();
  return promise;
}

}  // namespace vantage
