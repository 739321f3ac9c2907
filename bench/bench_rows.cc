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

  const std::map<std::string, Results>& r_;
  const RowsContext& c_;
  std::vector<Row> rows_;
};

void Builder::SyncRows(const std::string& rgpu, const std::string& tcp, const std::string& prefix) {
  for (const char* p : {"p50", "p99"}) {
    Add(prefix + "sync round trip " + p, From(rgpu, std::string("sync.") + p + "_us"),
        From(tcp, std::string("pingpong.") + p + "_us"), "us", true);
  }
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

  Section("[5] PyTorch workloads");
  AddText("torch training step, inference", "see tests/gpu", "see tests/gpu");

  for (double d : c_.one_way_delays_ms) {
    const std::string rgpu = DelayLabel("rgpu", d), tcp = DelayLabel("tcp", d);
    const DriverBenchOptions slow = SizesFor(c_.quick, d);
    Section("[6] through rgpu-delay-proxy, +" + RttText(d) + " RTT (" + Num("%g", d) +
            " ms each way): sync (" + std::to_string(slow.sync_iterations) +
            " samples) vs TCP ping-pong, launches vs rgpu without delay, copies vs TCP stream, "
            "all through the same proxy");
    const std::string prefix = "+" + RttText(d) + ": ";
    SyncRows(rgpu, tcp, prefix);
    Add(prefix + "launch rate vs no delay", From(rgpu, "launch.per_s"),
        From(kRgpuLabel, "launch.per_s"), "/s", false);
    CopyRows(rgpu, tcp, prefix, /*with_native=*/false);
  }
  return rows_;
}

}  // namespace

std::string DelayLabel(const std::string& side, double one_way_ms) {
  return side + "+" + Num("%g", 2 * one_way_ms) + "ms-rtt";
}

std::vector<Row> BuildRows(const std::map<std::string, Results>& results, const RowsContext& context) {
  return Builder(results, context).Build();
}

std::vector<std::pair<std::string, std::string>> ExpectedRgpuKeys(const RowsContext& context) {
  std::vector<std::pair<std::string, std::string>> keys;
  auto sync_launch_copy = [&](const std::string& label) {
    keys.emplace_back(label, "sync.p50_us");
    keys.emplace_back(label, "sync.p99_us");
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
  return keys;
}

}  // namespace rgpu::bench
