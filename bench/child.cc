#include "bench/child.h"

#include <signal.h>
#include <stdlib.h>

#include <cstdio>
#include <memory>
#include <sstream>
#include <vector>

#include "bench/delay_proxy.h"
#include "bench/driver_api.h"
#include "bench/report.h"
#include "bench/tcp_reference.h"
#include "bench/torch_child.h"

namespace rgpu::bench {
namespace {

bool Has(const std::string& list, const char* item) {
  std::stringstream ss(list);
  std::string x;
  while (std::getline(ss, x, ','))
    if (x == item) return true;
  return false;
}

int InitFailed(Emitter* out, const std::string& why) {
  out->Error("init", why);
  fprintf(stderr, "rgpu bench child: %s\n", why.c_str());
  return 1;
}

int RunTcp(const ChildOptions& o, Emitter* out) {
  DriverBenchOptions sz = SizesFor(o.quick, o.delay_ms);
  if (Has(o.measures, "pingpong")) {
    Result<Latency> l = TcpPingPong(o.request_bytes, o.reply_bytes, sz.sync_warmup,
                                    sz.sync_iterations, o.delay_ms);
    if (!l.ok()) {
      out->Error("pingpong.p50_us", l.status().message());
      out->Error("pingpong.p99_us", l.status().message());
    } else {
      out->Num("pingpong.p50_us", l->p50_us);
      out->Num("pingpong.p99_us", l->p99_us);
    }
  }
  if (Has(o.measures, "stream")) {
    Result<double> g = TcpStreamGBps(sz.copy_bytes, sz.copy_reps, o.delay_ms);
    if (!g.ok()) out->Error("stream.gbps", g.status().message());
    else out->Num("stream.gbps", *g);
  }
  return 0;
}

}  // namespace

DriverBenchOptions SizesFor(bool quick, double delay_ms) {
  DriverBenchOptions o;
  const bool slow_link = delay_ms > 0;
  o.sync_warmup = quick ? 20 : 200;
  o.sync_iterations = slow_link ? (quick ? 200 : 2000) : (quick ? 1000 : 20000);
  o.query_calls = quick ? 200000 : 1000000;
  o.launch_count = quick ? 20000 : 100000;
  o.copy_bytes = quick ? (32ull << 20) : (256ull << 20);
  // Five on the direct link: with three, one slow copy moved a ratio by 0.17
  // between two runs on the H100 (H2D pageable 1.00, then 0.83).
  o.copy_reps = quick ? 1 : (slow_link ? 3 : 5);
  return o;
}

uint64_t CompressionCopyBytes(bool quick) { return quick ? (4ull << 20) : (64ull << 20); }

int RunBenchChild(const ChildOptions& o) {
  signal(SIGPIPE, SIG_IGN);
  Emitter out(stdout);
  if (o.mode == "tcp") return RunTcp(o, &out);
  if (o.mode == "torch-native" || o.mode == "torch-rgpu") return RunTorchChild(o, &out);
  if (o.mode != "native" && o.mode != "rgpu") {
    fprintf(stderr, "rgpu bench: --child must be native, rgpu, tcp, torch-native or torch-rgpu (got '%s')\n",
            o.mode.c_str());
    return 2;
  }
  DriverBenchOptions d = SizesFor(o.quick, o.delay_ms);
  d.sync = Has(o.measures, "sync");
  d.queries = Has(o.measures, "queries");
  d.launch = Has(o.measures, "launch");
  d.copy = Has(o.measures, "copy");
  Result<std::vector<CopyPattern>> patterns = ParseCopyPatterns(o.copy_patterns);
  if (!patterns.ok()) {
    fprintf(stderr, "rgpu bench: --pattern: %s\n", patterns.status().message().c_str());
    return 2;
  }
  d.copy_patterns = *patterns;
  if (o.copy_mib > 0) d.copy_bytes = static_cast<uint64_t>(o.copy_mib) << 20;
  d.copy_pageable = Has(o.copy_kinds, "pageable");
  d.copy_pinned = Has(o.copy_kinds, "pinned");
  if (!d.copy_pageable && !d.copy_pinned) {
    fprintf(stderr, "rgpu bench: --copy-kinds '%s' names neither pageable nor pinned\n",
            o.copy_kinds.c_str());
    return 2;
  }

  std::unique_ptr<DelayProxy> proxy;
  if (o.mode == "rgpu") {
    if (o.server.empty()) return InitFailed(&out, "rgpu child without --server");
    std::string server = o.server;
    if (o.delay_ms > 0 || o.rate_mbit > 0 || o.count) {
      DelayProxyOptions po;
      po.target = o.server;
      po.one_way_delay_ms = o.delay_ms;
      po.rate_mbit = o.rate_mbit;
      Result<std::unique_ptr<DelayProxy>> p = DelayProxy::Start(po);
      if (!p.ok()) return InitFailed(&out, p.status().message());
      proxy = std::move(p.value());
      server = proxy->address();
    }
    // Read by rgpu's client at cuInit.
    setenv("RGPU_SERVER", server.c_str(), 1);
    if (o.count) d.counter = proxy.get();
  }
  Result<DriverApi> api = LoadDriverApi(o.driver);
  if (!api.ok()) return InitFailed(&out, api.status().message());
  if (Status s = RunDriverBench(*api, d, &out); !s.ok()) return InitFailed(&out, s.message());
  // Drivers and rgpu's client keep threads and sockets until exit; the proxy
  // (if any) must outlive the client's last message, so it is stopped last,
  // by exit itself: no destructor races a driver's exit handlers.
  fflush(stdout);
  (void)proxy.release();
  return 0;
}

}  // namespace rgpu::bench
