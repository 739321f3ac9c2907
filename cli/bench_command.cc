#include "cli/bench_command.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <vector>

#include "bench/bench_kernel.h"
#include "bench/bench_rows.h"
#include "bench/report.h"
#include "bench/subprocess.h"
#include "bench/tls_server.h"
#include "cli/rgpu_version.h"
#include "cli/run_command.h"

namespace rgpu::cli {
namespace {

using bench::ChildResult;
using bench::Results;

// One-way delays of the delayed sections: +0.2 ms and +1 ms round trip.
constexpr double kOneWayDelaysMs[] = {0.1, 0.5};

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::string LastLine(const std::string& text) {
  size_t end = text.find_last_not_of("\n ");
  if (end == std::string::npos) return "";
  size_t nl = text.rfind('\n', end);
  size_t start = nl == std::string::npos ? 0 : nl + 1;
  return text.substr(start, end + 1 - start);
}

// The first stderr line that reports an error, at most 400 characters.
std::string FirstErrorLine(const std::string& err) {
  size_t at = err.find("error");
  if (at == std::string::npos) return "";
  size_t start = err.rfind('\n', at);
  start = start == std::string::npos ? 0 : start + 1;
  std::string line = err.substr(start, err.find('\n', at) - start);
  return line.size() > 400 ? line.substr(0, 400) + "..." : line;
}

// A child measurement to run: its label, its argv after `rgpu bench`.
struct ChildSpec {
  std::string label;
  std::vector<std::string> args;
  std::map<std::string, std::string> env;  // added to the child's environment
};

class Runner {
 public:
  Runner(BenchOptions o, std::string self) : o_(std::move(o)), self_(std::move(self)) {}
  int Run();

 private:
  Status StartServer();
  void RunOne(const ChildSpec& spec);
  void RunTorch();
  // The copies again through a TLS server (bench/tls_server.h). False when
  // the bench uses a server it did not start (--server).
  bool RunTls();
  // [7]: the copies with RGPU_COMPRESS=off, lz4, zstd through a capped proxy,
  // and off, lz4 straight to the server.
  void RunCompression();
  std::vector<std::string> Args(const std::string& mode, const std::string& measures) const;
  void Progress(const std::string& what) const {
    if (isatty(2)) fprintf(stderr, "rgpu bench: %s\n", what.c_str());
  }

  BenchOptions o_;
  const std::string self_;
  std::string client_lib_, native_driver_, server_address_, server_note_;
  std::unique_ptr<bench::Server> server_;
  std::vector<std::string> server_argv_;  // how server_ was started (empty with --server)
  std::map<std::string, Results> results_;
  std::vector<std::string> notes_;  // problems with children, printed under the table
  bool rgpu_down_ = false;          // an rgpu child could not initialise: skip the others
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

Status Runner::StartServer() {
  if (!o_.server.empty()) {
    RGPU_RETURN_IF_ERROR(CheckServerAddress(o_.server));
    server_address_ = o_.server;
    server_note_ = "given with --server";
    return {};
  }
  const std::string backend = o_.sim ? "sim" : "cuda";
  std::vector<std::string> argv;
  std::string server_bin = DirName(self_) + "/rgpu-server";
  if (access(server_bin.c_str(), X_OK) == 0) {
    argv = {server_bin};
  } else {
    argv = {self_, "server"};  // the same server, built into rgpu
  }
  argv.insert(argv.end(), {"--listen", "127.0.0.1:0", "--backend", backend});
  if (!o_.sim && access(native_driver_.c_str(), R_OK) == 0)
    argv.insert(argv.end(), {"--driver", native_driver_});
  Result<std::unique_ptr<bench::Server>> s = bench::Server::Start(argv, 30);
  if (!s.ok()) return s.take_status();
  server_ = std::move(s.value());
  server_argv_ = argv;
  server_address_ = server_->address();
  server_note_ = "rgpu-server --backend " + backend + ", started by rgpu bench";
  return {};
}

std::vector<std::string> Runner::Args(const std::string& mode, const std::string& measures) const {
  std::vector<std::string> a = {self_, "bench", "--child", mode, "--measures", measures};
  if (o_.quick) a.push_back("--quick");
  if (mode == "native") a.insert(a.end(), {"--driver", native_driver_});
  if (mode == "rgpu") a.insert(a.end(), {"--driver", client_lib_, "--server", server_address_});
  return a;
}

void Runner::RunOne(const ChildSpec& spec) {
  if (rgpu_down_ && spec.label.rfind("rgpu", 0) == 0) return;  // it would fail the same way
  // Past --deadline the table is printed with what was measured: a run cut
  // short by a time limit would otherwise print nothing at all.
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (o_.deadline_s > 0 && elapsed > o_.deadline_s) {
    notes_.push_back(spec.label + ": not run, --deadline " + std::to_string(static_cast<long>(o_.deadline_s)) + " s reached");
    return;
  }
  Progress("measuring " + spec.label);
  Result<ChildResult> r = bench::RunChild(spec.args, spec.env, o_.quick ? 90 : 600);
  if (!r.ok()) {
    notes_.push_back(spec.label + ": " + r.status().message());
    return;
  }
  Results parsed = bench::ParseResults(r->out);
  if (r->timed_out) {
    notes_.push_back(spec.label + ": timed out; " + LastLine(r->err));
  } else if (r->exit_code != 0) {
    const bench::Value& init = bench::Lookup(parsed, "init");
    std::string why = init.kind == bench::Value::kError ? init.text : LastLine(r->err);
    // The driver's (or rgpu client's) own explanation, if it logged one.
    std::string detail = FirstErrorLine(r->err);
    if (!detail.empty() && detail.find(why) == std::string::npos) why += "; " + detail;
    notes_.push_back(spec.label + ": exit status " + std::to_string(r->exit_code) + ": " + why);
    if (init.kind == bench::Value::kError && spec.label.rfind("rgpu", 0) == 0) rgpu_down_ = true;
  }
  results_[spec.label] = std::move(parsed);
}

void Runner::RunTorch() {
  auto args = [&](const char* mode, const char* measures, double delay) {
    std::vector<std::string> a = {self_, "bench", "--child", mode, "--measures", measures};
    if (std::string(mode) == "torch-rgpu")
      a.insert(a.end(), {"--driver", client_lib_, "--server", server_address_});
    if (delay > 0) a.insert(a.end(), {"--delay-ms", std::to_string(delay)});
    return a;
  };
  RunOne({bench::kTorchNativeLabel, args("torch-native", "first,gpt,cnn", 0)});
  RunOne({bench::kTorchRgpuLabel, args("torch-rgpu", "first,gpt,cnn", 0)});
  for (double d : kOneWayDelaysMs)
    RunOne({bench::DelayLabel(bench::kTorchRgpuLabel, d), args("torch-rgpu", "gpt,cnn", d)});
}

bool Runner::RunTls() {
  if (server_argv_.empty()) return false;
  Progress("starting a TLS server");
  Result<std::unique_ptr<bench::TlsServer>> tls = bench::TlsServer::Start(server_argv_, 30);
  if (!tls.ok()) {
    notes_.push_back(std::string(bench::kRgpuTlsLabel) + ": server: " + tls.status().message());
    return true;  // the missing numbers are then reported
  }
  std::vector<std::string> a = Args("rgpu", "copy");
  for (size_t i = 0; i + 1 < a.size(); ++i)
    if (a[i] == "--server") a[i + 1] = (*tls)->address();
  RunOne({bench::kRgpuTlsLabel, a, (*tls)->ClientEnv()});
  return true;
}

void Runner::RunCompression() {
  auto child = [&](const std::string& codec, double rate_mbit, const char* patterns) {
    std::vector<std::string> a = Args("rgpu", "copy");
    a.insert(a.end(), {"--copy-mib", std::to_string(bench::CompressionCopyBytes(o_.quick) >> 20),
                       "--copy-kinds", "pageable", "--pattern", patterns});
    if (rate_mbit > 0) a.insert(a.end(), {"--rate-mbit", std::to_string(rate_mbit)});
    // Explicit in every child, "off" too: the default (auto) depends on the
    // address, and the proxy's is loopback.
    RunOne({bench::CompressionLabel(codec, rate_mbit), a, {{"RGPU_COMPRESS", codec}}});
  };
  for (const char* codec : {"off", bench::kCompressionCodecs[0], bench::kCompressionCodecs[1]})
    child(codec, bench::kCompressionRateMbit, bench::kCompressionPatterns);
  for (const char* codec : {"off", bench::kCompressionDirectCodec})
    child(codec, 0, bench::kCompressionDirectPatterns);
}

int Runner::Run() {
  auto t0 = start_;
  if (o_.sim && !o_.server.empty()) {
    fprintf(stderr, "rgpu bench: --sim starts its own server; it cannot be used with --server\n");
    return 2;
  }
  Result<std::string> lib_dir = ClientLibDir();
  if (!lib_dir.ok()) {
    fprintf(stderr, "rgpu bench: %s\n", lib_dir.status().message().c_str());
    return 2;
  }
  client_lib_ = *lib_dir + "/libcuda.so.1";
  native_driver_ = o_.native_driver;
  if (native_driver_.empty()) {
    const char* env = getenv("RGPU_REAL_LIBCUDA");
    native_driver_ = env != nullptr && *env != 0 ? env : kDefaultNativeDriver;
  }
  if (Status s = StartServer(); !s.ok()) {
    fprintf(stderr, "rgpu bench: server: %s\n", s.message().c_str());
    return 2;
  }

  const bool torch = !o_.sim && !o_.quick && !o_.no_torch;
  if (torch && o_.torch_first) RunTorch();
  // The plan. Native first, on an idle machine; then rgpu, then the TCP
  // references, whose ping-pong uses the message sizes rgpu-count measured.
  if (!o_.sim) RunOne({bench::kNativeLabel, Args("native", "sync,queries,launch,copy")});
  RunOne({bench::kRgpuCountLabel, [&] {
            auto a = Args("rgpu", "queries");
            a.push_back("--count");
            return a;
          }()});
  RunOne({bench::kRgpuLabel, Args("rgpu", "sync,launch,copy")});
  auto tcp_args = [&](double delay) {
    auto a = Args("tcp", "pingpong,stream");
    const Results& count = results_[bench::kRgpuCountLabel];
    for (auto [flag, key] : {std::pair<const char*, const char*>{"--request-bytes", "sync.request_bytes"},
                             {"--reply-bytes", "sync.reply_bytes"}}) {
      const bench::Value& v = bench::Lookup(count, key);
      if (v.is_num() && v.num >= 1) a.insert(a.end(), {flag, std::to_string(static_cast<long>(v.num + 0.5))});
    }
    if (delay > 0) a.insert(a.end(), {"--delay-ms", std::to_string(delay)});
    return a;
  };
  RunOne({bench::kTcpLabel, tcp_args(0)});
  for (double d : kOneWayDelaysMs) {
    auto a = Args("rgpu", "sync,launch,copy");
    a.insert(a.end(), {"--delay-ms", std::to_string(d)});
    RunOne({bench::DelayLabel("rgpu", d), a});
    RunOne({bench::DelayLabel("tcp", d), tcp_args(d)});
  }
  const bool tls = RunTls();
  RunCompression();
  // PyTorch (not on sim: torch runs real kernels). Local first, then rgpu.
  if (torch && !o_.torch_first) RunTorch();

  bench::RowsContext ctx;
  ctx.quick = o_.quick;
  ctx.native_missing = o_.sim ? "n/a" : "";
  ctx.one_way_delays_ms.assign(std::begin(kOneWayDelaysMs), std::end(kOneWayDelaysMs));
  ctx.have_kernel = bench::kBenchKernelImageSize > 0;
  ctx.torch = torch;
  ctx.tls = tls;
  ctx.server_given = !o_.server.empty();
  ctx.have_torch = bench::Lookup(results_[bench::kTorchNativeLabel], "torch.gpt.step_ms").is_num();
  std::vector<bench::Row> rows = bench::BuildRows(results_, ctx);

  const Results& rg = results_[bench::kRgpuLabel];
  const Results& nat = results_[bench::kNativeLabel];
  auto device = [](const Results& r, const std::string& fallback) {
    const bench::Value& v = bench::Lookup(r, "info.device");
    return v.kind == bench::Value::kString ? v.text : fallback;
  };
  printf("rgpu bench %s%s: server %s (%s)\n", RGPU_VERSION_STRING, o_.quick ? " --quick" : "",
         server_address_.c_str(), server_note_.c_str());
  printf("rgpu: %s via %s; native: %s\n", device(rg, "?").c_str(), client_lib_.c_str(),
         o_.sim ? "n/a (--sim)" : (device(nat, "n/a") + " via " + native_driver_).c_str());
  printf("\n%s\n", bench::RenderTable(rows).c_str());
  printf("ratio: rgpu's speed relative to the reference (1.00 = as fast, higher is better).\n");

  // Every rgpu number must be there; a child that could not start at all is
  // listed once (its note says why), not once per key.
  std::vector<std::string> missing;
  std::map<std::string, bool> listed;
  for (const auto& [label, key] : bench::ExpectedRgpuKeys(ctx)) {
    const Results& res = results_[label];
    const bench::Value& v = bench::Lookup(res, key);
    if (v.is_num()) continue;
    if (res.empty() || bench::Lookup(res, "init").kind == bench::Value::kError) {
      if (!listed[label])
        missing.push_back(label + (res.empty() && rgpu_down_ ? ": not run, rgpu could not start (see notes)"
                                                             : ": no results (see notes)"));
      listed[label] = true;
      continue;
    }
    missing.push_back(label + " " + key + ": " + (v.kind == bench::Value::kError ? v.text : "no result"));
  }
  for (const std::string& n : notes_) printf("note: %s\n", n.c_str());
  for (const std::string& m : missing) printf("missing: %s\n", m.c_str());
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  printf("done in %.1f s\n", seconds);
  fflush(stdout);

  if (!o_.json.empty()) {
    std::ofstream f(o_.json);
    f << bench::RenderJson(rows, results_);
    if (!f) fprintf(stderr, "rgpu bench: cannot write %s\n", o_.json.c_str());
  }
  if (!missing.empty() && server_ != nullptr) {
    std::string log = server_->Log();
    if (log.size() > 4000) log = log.substr(log.size() - 4000);
    fprintf(stderr, "rgpu bench: server log (tail):\n%s\n", log.c_str());
  }
  return missing.empty() ? 0 : 1;
}

}  // namespace

void AddBenchOptions(CLI::App* bench, BenchOptions* o) {
  bench->add_option("--server", o->server, "use this rgpu server HOST:PORT (default: start one)");
  bench->add_option("--native-driver", o->native_driver,
                    std::string("the real libcuda.so.1 for native references (default: "
                                "$RGPU_REAL_LIBCUDA, else ") + kDefaultNativeDriver + ")");
  bench->add_flag("--quick", o->quick, "small sizes: a smoke run of a few seconds");
  bench->add_option("--json", o->json, "also write the results as JSON to FILE");
  bench->add_flag("--sim", o->sim, "start a sim-backend server (no native reference)");
  bench->add_flag("--no-torch", o->no_torch, "skip the PyTorch measures (python3 with torch)");
  bench->add_flag("--torch-first", o->torch_first, "run the PyTorch measures before the others");
  bench->add_option("--deadline", o->deadline_s,
                    "start no measurement after SECONDS; the table shows what was measured")
      ->check(CLI::Range(1.0, 86400.0));
  // Internal: how the bench runs its measuring children.
  const std::string internal;
  bench->add_option("--child", o->child.mode)->group(internal);
  bench->add_option("--driver", o->child.driver)->group(internal);
  bench->add_option("--delay-ms", o->child.delay_ms)->group(internal)->check(CLI::Range(0.0, 60000.0));
  bench->add_flag("--count", o->child.count)->group(internal);
  bench->add_option("--measures", o->child.measures)->group(internal);
  bench->add_option("--rate-mbit", o->child.rate_mbit)->group(internal)->check(CLI::Range(0.0, 1e6));
  bench->add_option("--pattern", o->child.copy_patterns)->group(internal);
  bench->add_option("--copy-mib", o->child.copy_mib)->group(internal)->check(CLI::Range(1, 65536));
  bench->add_option("--copy-kinds", o->child.copy_kinds)->group(internal);
  bench->add_option("--request-bytes", o->child.request_bytes)->group(internal)->check(CLI::Range(1, 1 << 20));
  bench->add_option("--reply-bytes", o->child.reply_bytes)->group(internal)->check(CLI::Range(1, 1 << 20));
}

int RunBench(BenchOptions options) {
  if (!options.child.mode.empty()) {
    options.child.server = options.server;
    options.child.quick = options.quick;
    return bench::RunBenchChild(options.child);
  }
  std::string self = bench::SelfExe();
  if (self.empty()) {
    fprintf(stderr, "rgpu bench: cannot read /proc/self/exe\n");
    return 2;
  }
  return Runner(std::move(options), std::move(self)).Run();
}

}  // namespace rgpu::cli
