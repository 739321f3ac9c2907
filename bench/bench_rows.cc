#include "bench/bench_rows.h"

#include <cmath>
#include <cstdio>

#include "bench/child.h"

namespace rgpu::bench {
namespace {

const char* const kQueries[] = {
    "cuCtxGetDevice",     "cuDeviceGetAttribute",       "cuCtxGetCurrent",
    "cuStreamIsCapturing", "cuDevicePrimaryCtxGetState", "cuFuncGetAttribute",
    "cuOccupancyMaxActiveBlocksPerMultiprocessor",
};
const char* const kCopies[][2] = {
    {"h2d_pageable", "H2D pageable"},
    {"d2h_pageable", "D2H pageable"},
    {"h2d_pinned", "H2D pinned"},
    {"d2h_pinned", "D2H pinned"},
};

std::string Num(const char* fmt, double v) {
  char b[64];
  snprintf(b, sizeof b, fmt, v);
  return b;
}

std::string RttText(double one_way_ms) { return Num("%g", 2 * one_way_ms) + " ms"; }

std::string MiB(uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

// "1 Gbit/s", "100 Mbit/s".
std::string RateText(double mbit) {
  return mbit >= 1000 ? Num("%g", mbit / 1000) + " Gbit/s" : Num("%g", mbit) + " Mbit/s";
}

// The [7] rows: {pattern key suffix, name in the row}.
const char* const kCompressionRowPatterns[][2] = {{"relu", "relu fp32"}, {"random", "random"}};
const char* const kCompressionDirs[][2] = {{"h2d", "H2D"}, {"d2h", "D2H"}};

std::string CompressionKey(const char* dir, const char* pattern) {
  return std::string("copy.") + dir + "_pageable." + pattern + ".gbps";
}

class Builder {
 public:
  Builder(const std::map<std::string, Results>& r, const RowsContext& c) : r_(r), c_(c) {}

  const Value& Get(const std::string& label, const std::string& key) const {
    static const Value kMissing;
    auto it = r_.find(label);
    return it == r_.end() ? kMissing : Lookup(it->second, key);
  }

  // A value from `label`; when it is absent, why the child gave none.
  Value From(const std::string& label, const std::string& key) const {
    Value v = Get(label, key);
    if (v.kind != Value::kMissing) return v;
    const Value& init = Get(label, "init");
    if (init.kind == Value::kError) return init;
    if (label == kNativeLabel && !c_.native_missing.empty() && c_.native_missing != "n/a") {
      v.kind = Value::kError;
      v.text = c_.native_missing;
    }
    return v;
  }

  void Section(const std::string& title) { rows_.push_back(Row{title, "", "", "", true}); }

  void Add(const std::string& measure, const Value& rgpu, const Value& ref, const char* unit,
           bool lower_is_better, const std::string& ref_note = "") {
    std::string ref_text = FormatValue(ref, unit);
    if (!ref_note.empty() && ref.is_num()) ref_text += " " + ref_note;
    rows_.push_back(Row{measure, FormatValue(rgpu, unit), ref_text,
                        FormatRatio(rgpu, ref, lower_is_better)});
  }
  void AddText(const std::string& measure, const std::string& rgpu, const std::string& ref) {
    rows_.push_back(Row{measure, rgpu, ref, "n/a"});
  }

  std::vector<Row> Build();

 private:
  void SyncRows(const std::string& rgpu, const std::string& tcp, const std::string& prefix);
  void CopyRows(const std::string& rgpu, const std::string& tcp, const std::string& prefix,
                bool with_native);
  void TorchRows(const std::string& rgpu, const std::string& prefix, bool with_first_use);
  void CompressionRows();

  const std::map<std::string, Results>& r_;
  const RowsContext& c_;
  std::vector<Row> rows_;
};

void Builder::SyncRows(const std::string& rgpu, const std::string& tcp, const std::string& prefix) {
  for (const char* p : {"p50", "p99"}) {
    Add(prefix + "sync round trip " + p, From(rgpu, std::string("sync.") + p + "_us"),
        From(tcp, std::string("pingpong.") + p + "_us"), "us", true);
  }
  Add(prefix + "cuMemGetInfo round trip p50", From(rgpu, "memgetinfo.p50_us"), From(tcp, "pingpong.p50_us"),
      "us", true);
}

void Builder::CopyRows(const std::string& rgpu, const std::string& tcp, const std::string& prefix,
                       bool with_native) {
  for (const auto& copy : kCopies) {
    const std::string key = std::string("copy.") + copy[0] + ".gbps";
    Value v = From(rgpu, key);
    Add(prefix + copy[1] + " vs tcp stream", v, From(tcp, "stream.gbps"), "GB/s", false);
    if (with_native) Add(prefix + copy[1] + " vs native", v, From(kNativeLabel, key), "GB/s", false);
  }
}

void Builder::TorchRows(const std::string& rgpu, const std::string& prefix, bool with_first_use) {
  Add(prefix + "torch GPU-bound step (GPT-2-small bf16)", From(rgpu, "torch.gpt.step_ms"),
      From(kTorchNativeLabel, "torch.gpt.step_ms"), "ms", true);
  Add(prefix + "torch launch-bound step (small CNN)", From(rgpu, "torch.cnn.step_ms"),
      From(kTorchNativeLabel, "torch.cnn.step_ms"), "ms", true);
  if (with_first_use)
    Add(prefix + "torch first CUDA use (start -> result)", From(rgpu, "torch.first_use_s"),
        From(kTorchNativeLabel, "torch.first_use_s"), "s", true);
}

// Each codec's copies against RGPU_COMPRESS=off's, on the same link in the
// same run: on the capped link the ratio is what compression buys there; on
// the direct one, what it costs where the link is not the bottleneck.
void Builder::CompressionRows() {
  const DriverBenchOptions sizes = SizesFor(c_.quick, 0);
  const std::string rate = RateText(kCompressionRateMbit);
  const std::string direct = c_.server_given ? "direct" : "loopback";
  Section("[7] compression: " + MiB(CompressionCopyBytes(c_.quick)) + " pageable copies through a " +
          rate + " link (rgpu-delay-proxy --rate-mbit " + Num("%g", kCompressionRateMbit) +
          "), RGPU_COMPRESS=lz4|zstd vs off (same link, same run, median of " +
          std::to_string(sizes.copy_reps) + "); " + direct + ": no proxy");
  const std::string off = CompressionLabel("off", kCompressionRateMbit);
  for (const char* codec : kCompressionCodecs) {
    const std::string label = CompressionLabel(codec, kCompressionRateMbit);
    for (const auto& pattern : kCompressionRowPatterns)
      for (const auto& dir : kCompressionDirs) {
        const std::string key = CompressionKey(dir[0], pattern[0]);
        Add(rate + " " + codec + " " + dir[1] + " " + pattern[1] + " vs off", From(label, key),
            From(off, key), "GB/s", false);
      }
  }
  const std::string label = CompressionLabel(kCompressionDirectCodec, 0);
  for (const auto& dir : kCompressionDirs) {
    const std::string key = CompressionKey(dir[0], kCompressionRowPatterns[0][0]);
    Add(direct + " " + kCompressionDirectCodec + " " + dir[1] + " " + kCompressionRowPatterns[0][1] +
            " vs off",
        From(label, key), From(CompressionLabel("off", 0), key), "GB/s", false);
  }
}

std::vector<Row> Builder::Build() {
  const DriverBenchOptions direct = SizesFor(c_.quick, 0);
  const Value& req = Get(kRgpuCountLabel, "sync.request_bytes");
  const Value& rep = Get(kRgpuCountLabel, "sync.reply_bytes");
  std::string sizes = req.is_num() && rep.is_num()
                          ? Num("%.0f", req.num) + " B / " + Num("%.0f", rep.num) + " B"
                          : std::string("protocol sizes");

  Section("[1] sync round trip: empty cuCtxSynchronize vs TCP ping-pong of the same sizes (" +
          sizes + "), loopback, " + std::to_string(direct.sync_iterations) + " samples");
  SyncRows(kRgpuLabel, kTcpLabel, "");

  Section("[2] local queries: average of " + std::to_string(direct.query_calls) +
          " calls each vs the native driver");
  for (const char* q : kQueries) {
    const std::string key = std::string("query.") + q + ".ns";
    Add(q, From(kRgpuCountLabel, key), From(kNativeLabel, key), "ns", true);
  }
  Value up = From(kRgpuCountLabel, "query.bytes_up");
  Value down = From(kRgpuCountLabel, "query.bytes_down");
  std::string wire;
  if (up.is_num() && down.is_num()) {
    wire = up.num == 0 && down.num == 0 ? "0 bytes"
                                        : Num("%.0f B up", up.num) + ", " + Num("%.0f B down", down.num);
  } else {
    wire = FormatValue(up.is_num() ? down : up, "bytes");
  }
  AddText("bytes on the wire during all query loops", wire, "0 bytes (local)");

  Section("[3] async empty-kernel launches: " + std::to_string(direct.launch_count) +
          " launches, then one cuCtxSynchronize, vs native");
  Add("launch rate", From(kRgpuLabel, "launch.per_s"), From(kNativeLabel, "launch.per_s"), "/s", false);
  Add("launch call (enqueue only)", From(kRgpuLabel, "launch.enqueue_ns"),
      From(kNativeLabel, "launch.enqueue_ns"), "ns", true);

  Section("[4] copies of " + MiB(direct.copy_bytes) +
          " vs raw TCP stream over the same link and vs native (median of " +
          std::to_string(direct.copy_reps) + ")");
  CopyRows(kRgpuLabel, kTcpLabel, "", /*with_native=*/true);

  // Right after [4]: what encryption costs on the same copies.
  if (c_.tls) {
    Section("[4t] TLS 1.3 (AES-GCM): the copies of [4] through a server with --tls-cert, vs [4] in "
            "plaintext (same run)");
    for (const auto& copy : kCopies) {
      const std::string key = std::string("copy.") + copy[0] + ".gbps";
      Add(std::string("TLS ") + copy[1] + " vs plaintext", From(kRgpuTlsLabel, key), From(kRgpuLabel, key), "GB/s",
          false);
    }
  } else {
    Section("[4t] TLS 1.3");
    AddText("TLS copies", "not run (--server: the bench starts its own TLS server)", "n/a");
  }

  if (c_.torch) {
    Section("[5] PyTorch vs the same script on the local GPU (step: median of 3 timed runs)");
    TorchRows(kTorchRgpuLabel, "", /*with_first_use=*/true);
  } else {
    Section("[5] PyTorch");
    AddText("torch steps, first CUDA use", c_.quick ? "not run (--quick)" : "not run (--sim or --no-torch)",
            "n/a");
  }

  for (double d : c_.one_way_delays_ms) {
    const std::string rgpu = DelayLabel("rgpu", d), tcp = DelayLabel("tcp", d);
    const DriverBenchOptions slow = SizesFor(c_.quick, d);
    Section("[6] through rgpu-delay-proxy, +" + RttText(d) + " RTT (" + Num("%g", d) +
            " ms each way): sync (" + std::to_string(slow.sync_iterations) +
            " samples) vs TCP ping-pong, launches vs rgpu without delay, copies vs TCP stream, "
            "all through the same proxy" + std::string(c_.torch ? "; torch steps vs local" : ""));
    const std::string prefix = "+" + RttText(d) + ": ";
    SyncRows(rgpu, tcp, prefix);
    Add(prefix + "launch rate vs no delay", From(rgpu, "launch.per_s"),
        From(kRgpuLabel, "launch.per_s"), "/s", false);
    CopyRows(rgpu, tcp, prefix, /*with_native=*/false);
    if (c_.torch) TorchRows(DelayLabel(kTorchRgpuLabel, d), prefix, /*with_first_use=*/false);
  }
  CompressionRows();
  return rows_;
}

}  // namespace

std::string DelayLabel(const std::string& side, double one_way_ms) {
  return side + "+" + Num("%g", 2 * one_way_ms) + "ms-rtt";
}

std::string CompressionLabel(const std::string& codec, double rate_mbit) {
  return "rgpu-" + codec + "@" + (rate_mbit > 0 ? Num("%g", rate_mbit) + "mbit" : std::string("direct"));
}

std::vector<Row> BuildRows(const std::map<std::string, Results>& results, const RowsContext& context) {
  return Builder(results, context).Build();
}

std::vector<std::pair<std::string, std::string>> ExpectedRgpuKeys(const RowsContext& context) {
  std::vector<std::pair<std::string, std::string>> keys;
  auto sync_launch_copy = [&](const std::string& label) {
    keys.emplace_back(label, "sync.p50_us");
    keys.emplace_back(label, "sync.p99_us");
    keys.emplace_back(label, "memgetinfo.p50_us");
    if (context.have_kernel) {
      keys.emplace_back(label, "launch.per_s");
      keys.emplace_back(label, "launch.enqueue_ns");
    }
    for (const auto& copy : kCopies) keys.emplace_back(label, std::string("copy.") + copy[0] + ".gbps");
  };
  sync_launch_copy(kRgpuLabel);
  for (const char* q : kQueries) keys.emplace_back(kRgpuCountLabel, std::string("query.") + q + ".ns");
  for (const char* k : {"query.bytes_up", "query.bytes_down", "sync.request_bytes", "sync.reply_bytes"})
    keys.emplace_back(kRgpuCountLabel, k);
  for (double d : context.one_way_delays_ms) sync_launch_copy(DelayLabel("rgpu", d));
  if (context.tls)
    for (const auto& copy : kCopies) keys.emplace_back(kRgpuTlsLabel, std::string("copy.") + copy[0] + ".gbps");
  // [7]: both patterns on the capped link, relu on the direct one, from
  // every codec's child and its "off" reference alike.
  for (const char* codec : {"off", kCompressionCodecs[0], kCompressionCodecs[1]})
    for (const auto& pattern : kCompressionRowPatterns)
      for (const auto& dir : kCompressionDirs)
        keys.emplace_back(CompressionLabel(codec, kCompressionRateMbit), CompressionKey(dir[0], pattern[0]));
  for (const char* codec : {"off", kCompressionDirectCodec})
    for (const auto& dir : kCompressionDirs)
      keys.emplace_back(CompressionLabel(codec, 0), CompressionKey(dir[0], kCompressionRowPatterns[0][0]));
  if (context.torch && context.have_torch) {
    for (const char* k : {"torch.gpt.step_ms", "torch.cnn.step_ms", "torch.first_use_s"})
      keys.emplace_back(kTorchRgpuLabel, k);
    for (double d : context.one_way_delays_ms)
      for (const char* k : {"torch.gpt.step_ms", "torch.cnn.step_ms"})
        keys.emplace_back(DelayLabel(kTorchRgpuLabel, d), k);
  }
  return keys;
}

}  // namespace rgpu::bench
