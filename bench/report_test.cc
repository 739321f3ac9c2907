#include "bench/report.h"

#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "bench/bench_rows.h"
#include "bench/stats.h"

namespace rgpu::bench {
namespace {

std::string Emitted(void (*fill)(Emitter*)) {
  char* buf = nullptr;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  Emitter e(f);
  fill(&e);
  fclose(f);
  std::string s(buf, len);
  free(buf);
  return s;
}

TEST(ReportTest, ResultLinesRoundTrip) {
  std::string text = Emitted([](Emitter* e) {
    e->Num("sync.p50_us", 41.5);
    e->Str("info.device", "NVIDIA \"H200\"\n\\sim");
    e->Error("query.cuCtxGetDevice.ns", "cuCtxGetDevice: CUDA_ERROR_NOT_SUPPORTED");
  });
  Results r = ParseResults("stray library output\n" + text + "{\"key\":\"broken\n");
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(Lookup(r, "sync.p50_us").kind, Value::kNumber);
  EXPECT_DOUBLE_EQ(Lookup(r, "sync.p50_us").num, 41.5);
  EXPECT_EQ(Lookup(r, "info.device").text, "NVIDIA \"H200\"\n\\sim");
  EXPECT_EQ(Lookup(r, "query.cuCtxGetDevice.ns").kind, Value::kError);
  EXPECT_EQ(Lookup(r, "absent").kind, Value::kMissing);
}

TEST(ReportTest, RatioIsSpeedRelativeToReference) {
  Value fast{Value::kNumber, 10}, slow{Value::kNumber, 40}, err{Value::kError, 0, "x"};
  EXPECT_EQ(FormatRatio(slow, fast, /*lower_is_better=*/true), "0.25");  // 40 µs vs 10 µs
  EXPECT_EQ(FormatRatio(slow, fast, /*lower_is_better=*/false), "4.00");  // 40 GB/s vs 10
  EXPECT_EQ(FormatRatio(err, fast, true), "n/a");
  EXPECT_EQ(FormatValue(err, "us"), "n/a (x)");
  EXPECT_EQ(FormatValue(Value{}, "us"), "n/a");
  EXPECT_EQ(FormatValue(Value{Value::kNumber, 2.5e6}, "/s"), "2.50 M/s");
}

TEST(ReportTest, PercentilesByNearestRank) {
  std::vector<double> v;
  for (int i = 100; i >= 1; --i) v.push_back(i);
  EXPECT_EQ(Percentile(v, 0.5), 50);
  EXPECT_EQ(Percentile(v, 0.99), 99);
  EXPECT_EQ(Percentile(v, 1.0), 100);
  std::vector<double> empty;
  EXPECT_EQ(Percentile(empty, 0.5), 0);
}

TEST(ReportTest, TableAlignsAndSimHasNoNativeNumbers) {
  std::map<std::string, Results> results;
  results[kRgpuLabel]["sync.p50_us"] = Value{Value::kNumber, 30};
  results[kTcpLabel]["pingpong.p50_us"] = Value{Value::kNumber, 15};
  RowsContext ctx;
  ctx.quick = true;
  ctx.native_missing = "n/a";
  std::vector<Row> rows = BuildRows(results, ctx);
  std::string table = RenderTable(rows);
  EXPECT_NE(table.find("measure"), std::string::npos);
  EXPECT_NE(table.find("| 30.0 µs"), std::string::npos) << table;
  EXPECT_NE(table.find("| 15.0 µs"), std::string::npos) << table;
  EXPECT_NE(table.find("| 0.50"), std::string::npos) << table;
  for (const Row& r : rows)
    if (r.measure == "cuCtxGetDevice") {
      EXPECT_EQ(r.reference, "n/a");
    }
}

// The torch rows compare each rgpu step with the local one, delayed runs
// included, and are required from rgpu only where torch works locally.
TEST(ReportTest, TorchRowsCompareWithTheLocalRun) {
  std::map<std::string, Results> results;
  results[kTorchNativeLabel]["torch.gpt.step_ms"] = Value{Value::kNumber, 30};
  results[kTorchRgpuLabel]["torch.gpt.step_ms"] = Value{Value::kNumber, 31.5};
  results[DelayLabel(kTorchRgpuLabel, 0.5)]["torch.gpt.step_ms"] = Value{Value::kNumber, 33};
  RowsContext ctx;
  ctx.one_way_delays_ms = {0.5};
  ctx.torch = true;
  std::map<std::string, Row> by_measure;
  for (const Row& r : BuildRows(results, ctx)) by_measure[r.measure] = r;
  const Row& direct = by_measure["torch GPU-bound step (GPT-2-small bf16)"];
  EXPECT_EQ(direct.rgpu, "31.5 ms");
  EXPECT_EQ(direct.reference, "30 ms");
  EXPECT_EQ(direct.ratio, "0.95");  // 30 / 31.5: lower is better
  const Row& delayed = by_measure["+1 ms: torch GPU-bound step (GPT-2-small bf16)"];
  EXPECT_EQ(delayed.rgpu, "33 ms");
  EXPECT_EQ(delayed.ratio, "0.91");

  auto count_torch_keys = [&] {
    int n = 0;
    for (const auto& [label, key] : ExpectedRgpuKeys(ctx)) n += key.rfind("torch.", 0) == 0;
    return n;
  };
  EXPECT_EQ(count_torch_keys(), 0) << "torch does not work locally: nothing to require";
  ctx.have_torch = true;
  EXPECT_EQ(count_torch_keys(), 3 + 2);  // gpt, cnn, first use; gpt and cnn at +1 ms
}

}  // namespace
}  // namespace rgpu::bench
