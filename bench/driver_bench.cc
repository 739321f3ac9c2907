#include "bench/driver_bench.h"

#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench/bench_kernel.h"
#include "bench/delay_proxy.h"
#include "bench/stats.h"

namespace rgpu::bench {
namespace {

// What the measures share once the driver is up.
struct Setup {
  const DriverApi& api;
  CUdevice dev = 0;
  CUcontext ctx = nullptr;
  CUstream stream = nullptr;
  CUfunction fn = nullptr;
  std::string fn_error;  // why fn is null
};

// "cuCtxSynchronize: CUDA_ERROR_LAUNCH_FAILED", or empty when r is success.
std::string Failure(const DriverApi& api, const char* call, CUresult r) {
  return r == CUDA_SUCCESS ? std::string() : std::string(call) + ": " + api.ErrorName(r);
}

void ErrorAll(Emitter* out, std::initializer_list<const char*> keys, const std::string& why) {
  for (const char* k : keys) out->Error(k, why);
}

// Lets bytes already written reach the proxy (or its counters) before they
// are read: the proxy counts what it has received.
void Settle() { std::this_thread::sleep_for(std::chrono::milliseconds(20)); }

// Times `call` one at a time: o.sync_warmup untimed calls, then
// o.sync_iterations timed ones. Stops at the first failure, which it returns.
template <class F>
CUresult TimeEach(const DriverBenchOptions& o, F call, std::vector<double>* samples) {
  samples->clear();
  samples->reserve(o.sync_iterations);
  for (int i = 0; i < o.sync_warmup + o.sync_iterations; ++i) {
    BenchClock::time_point t0 = BenchClock::now();
    CUresult r = call();
    double dt = SecondsSince(t0);
    if (r != CUDA_SUCCESS) return r;
    if (i >= o.sync_warmup) samples->push_back(dt);
  }
  return CUDA_SUCCESS;
}

void MeasureSync(Setup& s, const DriverBenchOptions& o, Emitter* out) {
  std::vector<double> samples;
  if (CUresult r = TimeEach(o, [&] { return s.api.cuCtxSynchronize(); }, &samples); r != CUDA_SUCCESS) {
    ErrorAll(out, {"sync.p50_us", "sync.p99_us"}, Failure(s.api, "cuCtxSynchronize", r));
    return;
  }
  Latency l = LatencyOf(std::move(samples));
  out->Num("sync.p50_us", l.p50_us);
  out->Num("sync.p99_us", l.p99_us);

  // A query only the GPU can answer (free memory changes under the program):
  // one round trip through rgpu, like the synchronisation above, plus the
  // driver's own time for it.
  size_t free = 0, total = 0;
  if (CUresult r = TimeEach(o, [&] { return s.api.cuMemGetInfo(&free, &total); }, &samples); r != CUDA_SUCCESS) {
    ErrorAll(out, {"memgetinfo.p50_us"}, Failure(s.api, "cuMemGetInfo", r));
    return;
  }
  out->Num("memgetinfo.p50_us", LatencyOf(std::move(samples)).p50_us);
}

// A timed loop over one query: seconds taken and the last failure, if any.
using QueryLoop = std::function<std::pair<double, CUresult>(int64_t calls)>;

template <class F>
QueryLoop MakeLoop(F call) {
  return [call](int64_t calls) {
    CUresult bad = CUDA_SUCCESS;
    BenchClock::time_point t0 = BenchClock::now();
    for (int64_t i = 0; i < calls; ++i) {
      CUresult r = call();
      if (r != CUDA_SUCCESS) bad = r;
    }
    return std::make_pair(SecondsSince(t0), bad);
  };
}

// The local queries that dominate a PyTorch training step's driver calls
// (DESIGN.md, "Rules that keep it fast").
void MeasureQueries(Setup& s, const DriverBenchOptions& o, Emitter* out) {
  const DriverApi& api = s.api;
  struct Query {
    const char* name;
    QueryLoop loop;
    bool needs_fn;
  };
  CUdevice dev = s.dev;
  CUstream stream = s.stream;
  CUfunction fn = s.fn;
  std::vector<Query> queries = {
      {"cuCtxGetDevice", MakeLoop([&api] {
         CUdevice d;
         return api.cuCtxGetDevice(&d);
       }), false},
      {"cuDeviceGetAttribute", MakeLoop([&api, dev] {
         int v;
         return api.cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev);
       }), false},
      {"cuCtxGetCurrent", MakeLoop([&api] {
         CUcontext c;
         return api.cuCtxGetCurrent(&c);
       }), false},
      {"cuStreamIsCapturing", MakeLoop([&api, stream] {
         CUstreamCaptureStatus st;
         return api.cuStreamIsCapturing(stream, &st);
       }), false},
      {"cuDevicePrimaryCtxGetState", MakeLoop([&api, dev] {
         unsigned flags;
         int active;
         return api.cuDevicePrimaryCtxGetState(dev, &flags, &active);
       }), false},
      {"cuFuncGetAttribute", MakeLoop([&api, fn] {
         int v;
         return api.cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, fn);
       }), true},
      {"cuOccupancyMaxActiveBlocksPerMultiprocessor", MakeLoop([&api, fn] {
         int n;
         return api.cuOccupancyMaxActiveBlocksPerMultiprocessor(&n, fn, 128, 0);
       }), true},
  };
  // Warm every query first: a first call may legitimately fetch and cache
  // (occupancy); what is measured is the steady state.
  std::vector<std::string> failed(queries.size());
  for (size_t i = 0; i < queries.size(); ++i) {
    const std::string key = std::string("query.") + queries[i].name + ".ns";
    if (queries[i].needs_fn && s.fn == nullptr) {
      failed[i] = s.fn_error;
    } else if (CUresult r = queries[i].loop(1000).second; r != CUDA_SUCCESS) {
      failed[i] = Failure(api, queries[i].name, r);
    }
    if (!failed[i].empty()) out->Error(key, failed[i]);
  }
  DelayProxyCounters before;
  if (o.counter != nullptr) {
    api.cuCtxSynchronize();  // nothing of the warm-up still in flight
    Settle();
    before = o.counter->counters();
  }
  int64_t calls = 0;
  for (size_t i = 0; i < queries.size(); ++i) {
    if (!failed[i].empty()) continue;
    auto [seconds, r] = queries[i].loop(o.query_calls);
    calls += o.query_calls;
    const std::string key = std::string("query.") + queries[i].name + ".ns";
    if (r != CUDA_SUCCESS) out->Error(key, Failure(api, queries[i].name, r));
    else out->Num(key, seconds * 1e9 / static_cast<double>(o.query_calls));
  }
  if (o.counter == nullptr) return;
  Settle();
  DelayProxyCounters after = o.counter->counters();
  out->Num("query.calls", static_cast<double>(calls));
  out->Num("query.bytes_up", static_cast<double>(after.bytes_up - before.bytes_up));
  out->Num("query.bytes_down", static_cast<double>(after.bytes_down - before.bytes_down));

  // The size of one synchronisation on the wire, for the TCP ping-pong that
  // is its reference.
  constexpr int kSyncs = 100;
  before = o.counter->counters();
  for (int i = 0; i < kSyncs; ++i) api.cuCtxSynchronize();
  Settle();
  after = o.counter->counters();
  out->Num("sync.request_bytes", static_cast<double>(after.bytes_up - before.bytes_up) / kSyncs);
  out->Num("sync.reply_bytes", static_cast<double>(after.bytes_down - before.bytes_down) / kSyncs);
}

void MeasureLaunch(Setup& s, const DriverBenchOptions& o, Emitter* out) {
  const DriverApi& api = s.api;
  if (s.fn == nullptr) {
    ErrorAll(out, {"launch.per_s", "launch.enqueue_ns"}, s.fn_error);
    return;
  }
  auto launch = [&] { return api.cuLaunchKernel(s.fn, 1, 1, 1, 1, 1, 1, 0, s.stream, nullptr, nullptr); };
  // Warm-up: the first launch may upload the module (rgpu loads lazily).
  CUresult r = CUDA_SUCCESS;
  for (int i = 0; i < 100 && r == CUDA_SUCCESS; ++i) r = launch();
  std::string why = Failure(api, "cuLaunchKernel", r);
  if (why.empty()) why = Failure(api, "cuCtxSynchronize", api.cuCtxSynchronize());
  if (!why.empty()) {
    ErrorAll(out, {"launch.per_s", "launch.enqueue_ns"}, why);
    return;
  }
  BenchClock::time_point t0 = BenchClock::now();
  for (int i = 0; i < o.launch_count && r == CUDA_SUCCESS; ++i) r = launch();
  double enqueue = SecondsSince(t0);
  why = Failure(api, "cuLaunchKernel", r);
  if (why.empty()) why = Failure(api, "cuCtxSynchronize", api.cuCtxSynchronize());
  double total = SecondsSince(t0);
  if (!why.empty()) {
    ErrorAll(out, {"launch.per_s", "launch.enqueue_ns"}, why);
    return;
  }
  out->Num("launch.per_s", o.launch_count / total);
  out->Num("launch.enqueue_ns", enqueue * 1e9 / o.launch_count);
}

// Times `copy` (which must return only when the data has arrived):
// one untimed pass, then the median of `reps` in GB/s.
void TimeCopy(const char* key, const DriverBenchOptions& o, Emitter* out,
              const std::function<std::string()>& copy) {
  std::string why = copy();
  std::vector<double> gbps;
  for (int i = 0; i < o.copy_reps && why.empty(); ++i) {
    BenchClock::time_point t0 = BenchClock::now();
    why = copy();
    gbps.push_back(static_cast<double>(o.copy_bytes) / SecondsSince(t0) / 1e9);
  }
  if (!why.empty()) out->Error(key, why);
  else out->Num(key, Median(std::move(gbps)));
}

void MeasureCopies(Setup& s, const DriverBenchOptions& o, Emitter* out) {
  const DriverApi& api = s.api;
  const uint64_t n = o.copy_bytes;
  struct Kind {
    const char* name;
    bool selected;
    void* host = nullptr;
    std::string why;  // host could not be allocated
  };
  Kind kinds[] = {{"pageable", o.copy_pageable}, {"pinned", o.copy_pinned}};
  auto key = [](const char* dir, const Kind& k, CopyPattern p) {
    std::string suffix = p == CopyPattern::kFill ? "" : std::string(".") + CopyPatternName(p);
    return std::string("copy.") + dir + "_" + k.name + suffix + ".gbps";
  };
  auto error_all = [&](const std::string& why) {
    for (CopyPattern p : o.copy_patterns)
      for (const Kind& k : kinds)
        if (k.selected) ErrorAll(out, {key("h2d", k, p).c_str(), key("d2h", k, p).c_str()}, why);
  };
  CUdeviceptr d = 0;
  if (CUresult r = api.cuMemAlloc(&d, n); r != CUDA_SUCCESS) {
    error_all(Failure(api, "cuMemAlloc", r));
    return;
  }
  // Pageable: ordinary memory; the pattern below touches every page before timing.
  std::unique_ptr<uint8_t[]> pageable;
  if (kinds[0].selected) {
    pageable.reset(new uint8_t[n]);
    kinds[0].host = pageable.get();
  }
  if (kinds[1].selected) {
    CUresult r = api.cuMemAllocHost(&kinds[1].host, n);
    if (r != CUDA_SUCCESS) kinds[1].why = Failure(api, "cuMemAllocHost", r);
  }

  for (CopyPattern p : o.copy_patterns) {
    // Both host buffers hold the pattern before anything is timed. The H2D
    // measure's untimed first copy then puts it on the device, so the D2H
    // copies that follow carry the pattern too (and write it back unchanged).
    for (Kind& k : kinds)
      if (k.host != nullptr) FillCopyPattern(p, static_cast<uint8_t*>(k.host), n);
    for (Kind& k : kinds) {
      if (!k.selected) continue;
      const std::string h2d = key("h2d", k, p), d2h = key("d2h", k, p);
      if (k.host == nullptr) {
        ErrorAll(out, {h2d.c_str(), d2h.c_str()}, k.why);
        continue;
      }
      // cuMemcpyHtoD may return before the data has reached the device (rgpu
      // sends it without waiting; the driver may stage pageable memory), so
      // the time includes the synchronisation that proves it arrived.
      TimeCopy(h2d.c_str(), o, out, [&, host = k.host] {
        std::string why = Failure(api, "cuMemcpyHtoD", api.cuMemcpyHtoD(d, host, n));
        return why.empty() ? Failure(api, "cuCtxSynchronize", api.cuCtxSynchronize()) : why;
      });
      TimeCopy(d2h.c_str(), o, out, [&, host = k.host] {
        return Failure(api, "cuMemcpyDtoH", api.cuMemcpyDtoH(host, d, n));
      });
    }
  }
  if (kinds[1].host != nullptr) api.cuMemFreeHost(kinds[1].host);
  api.cuMemFree(d);
}

}  // namespace

const char* CopyPatternName(CopyPattern p) {
  switch (p) {
    case CopyPattern::kFill: return "fill";
    case CopyPattern::kRelu: return "relu";
    case CopyPattern::kRandom: return "random";
  }
  return "?";
}

Result<std::vector<CopyPattern>> ParseCopyPatterns(const std::string& list) {
  std::vector<CopyPattern> patterns;
  size_t start = 0;
  for (;;) {
    size_t comma = list.find(',', start);
    std::string name = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    bool known = false;
    for (CopyPattern p : {CopyPattern::kFill, CopyPattern::kRelu, CopyPattern::kRandom}) {
      if (name == CopyPatternName(p)) {
        patterns.push_back(p);
        known = true;
      }
    }
    if (!known)
      return Status::Invalid("copy pattern '" + name + "' in '" + list + "' is not fill, relu or random");
    if (comma == std::string::npos) return patterns;
    start = comma + 1;
  }
}

void FillCopyPattern(CopyPattern p, uint8_t* dst, size_t n) {
  if (p == CopyPattern::kFill) {
    memset(dst, 0x3c, n);
    return;
  }
  // splitmix64: fast, and fully specified (unlike std:: distributions), so
  // the data is the same with every standard library.
  uint64_t state = 0x5eed0fdecafbad5ull;
  auto next = [&state] {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  };
  size_t i = 0;
  if (p == CopyPattern::kRandom) {
    for (; i + 8 <= n; i += 8) {
      uint64_t v = next();
      memcpy(dst + i, &v, 8);
    }
  } else {
    // One draw per float: bit 0 picks zero or not, bits 1..32 an exponent
    // of 2^-4..2^1 and 23 random mantissa bits.
    for (; i + 4 <= n; i += 4) {
      uint64_t r = next();
      uint32_t bits = 0;
      if (r & 1) {
        uint32_t exponent = 123 + static_cast<uint32_t>((r >> 1) % 6);  // 127 - 4 .. 127 + 1
        bits = (exponent << 23) | static_cast<uint32_t>((r >> 8) & 0x7fffff);
      }
      memcpy(dst + i, &bits, 4);
    }
  }
  for (uint64_t tail = next(); i < n; ++i, tail >>= 8)  // sizes not a multiple of 8
    dst[i] = p == CopyPattern::kRelu ? 0 : static_cast<uint8_t>(tail);
}

Status RunDriverBench(const DriverApi& api, const DriverBenchOptions& o, Emitter* out) {
  Setup s{api};
  auto fail = [&](const char* call, CUresult r) {
    return Status::Cuda(r, Failure(api, call, r));
  };
  if (CUresult r = api.cuInit(0); r != CUDA_SUCCESS) return fail("cuInit", r);
  if (CUresult r = api.cuDeviceGet(&s.dev, 0); r != CUDA_SUCCESS) return fail("cuDeviceGet", r);
  if (CUresult r = api.cuDevicePrimaryCtxRetain(&s.ctx, s.dev); r != CUDA_SUCCESS)
    return fail("cuDevicePrimaryCtxRetain", r);
  if (CUresult r = api.cuCtxSetCurrent(s.ctx); r != CUDA_SUCCESS) return fail("cuCtxSetCurrent", r);
  char name[256] = {};
  if (api.cuDeviceGetName(name, sizeof name - 1, s.dev) == CUDA_SUCCESS) out->Str("info.device", name);
  int version = 0;
  if (api.cuDriverGetVersion(&version) == CUDA_SUCCESS) out->Num("info.driver_version", version);
  if (CUresult r = api.cuStreamCreate(&s.stream, CU_STREAM_NON_BLOCKING); r != CUDA_SUCCESS)
    return fail("cuStreamCreate", r);

  CUmodule module = nullptr;
  if (kBenchKernelImageSize == 0) {
    s.fn_error = "rgpu built without nvcc: no kernel";
  } else if (CUresult r = api.cuModuleLoadData(&module, kBenchKernelImage); r != CUDA_SUCCESS) {
    s.fn_error = Failure(api, "cuModuleLoadData", r);
  } else if (CUresult r2 = api.cuModuleGetFunction(&s.fn, module, kBenchKernelName);
             r2 != CUDA_SUCCESS) {
    s.fn = nullptr;
    s.fn_error = Failure(api, "cuModuleGetFunction", r2);
  }

  if (o.queries) MeasureQueries(s, o, out);
  if (o.sync) MeasureSync(s, o, out);
  if (o.launch) MeasureLaunch(s, o, out);
  if (o.copy) MeasureCopies(s, o, out);

  if (module != nullptr) api.cuModuleUnload(module);
  api.cuStreamDestroy(s.stream);
  api.cuDevicePrimaryCtxRelease(s.dev);
  return {};
}

}  // namespace rgpu::bench
