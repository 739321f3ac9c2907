#include "bench/report.h"

#include <cstdio>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "bench/bench_rows.h"
#include "bench/child.h"
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

// [7] compares each codec with RGPU_COMPRESS=off on the same link: 8 rows on
// the capped link, 2 direct (loopback) ones; every number is required.
TEST(ReportTest, CompressionRowsCompareWithOff) {
  std::map<std::string, Results> results;
  const std::string off = CompressionLabel("off", kCompressionRateMbit);
  const std::string lz4 = CompressionLabel("lz4", kCompressionRateMbit);
  EXPECT_EQ(lz4, "rgpu-lz4@1000mbit");
  EXPECT_EQ(CompressionLabel("off", 0), "rgpu-off@direct");
  results[off]["copy.h2d_pageable.relu.gbps"] = Value{Value::kNumber, 0.1};
  results[lz4]["copy.h2d_pageable.relu.gbps"] = Value{Value::kNumber, 0.15};
  results[CompressionLabel("zstd", kCompressionRateMbit)]["init"] = Value{Value::kError, 0, "no server"};
  results[CompressionLabel("off", 0)]["copy.d2h_pageable.relu.gbps"] = Value{Value::kNumber, 4};
  results[CompressionLabel("lz4", 0)]["copy.d2h_pageable.relu.gbps"] = Value{Value::kNumber, 2};
  RowsContext ctx;
  ctx.quick = true;
  std::vector<Row> rows = BuildRows(results, ctx);
  std::map<std::string, Row> by_measure;
  size_t first = rows.size();
  for (size_t i = 0; i < rows.size(); ++i) {
    by_measure[rows[i].measure] = rows[i];
    if (rows[i].section && rows[i].measure.rfind("[7] compression: 4 MiB pageable copies through a 1 Gbit/s link "
                                                 "(rgpu-delay-proxy --rate-mbit 1000)", 0) == 0)
      first = i;
  }
  ASSERT_LT(first, rows.size());
  EXPECT_EQ(rows.size() - first, 1u + 10u) << "[7] is last: a heading and 10 rows";
  const Row& h2d = by_measure["1 Gbit/s lz4 H2D relu fp32 vs off"];
  EXPECT_EQ(h2d.rgpu, "0.15 GB/s");
  EXPECT_EQ(h2d.reference, "0.10 GB/s");
  EXPECT_EQ(h2d.ratio, "1.50");
  EXPECT_EQ(by_measure["1 Gbit/s zstd D2H random vs off"].rgpu, "n/a (no server)");
  EXPECT_EQ(by_measure["1 Gbit/s lz4 D2H random vs off"].ratio, "n/a");
  EXPECT_EQ(by_measure["loopback lz4 D2H relu fp32 vs off"].ratio, "0.50");
  EXPECT_EQ(by_measure.count("loopback lz4 H2D relu fp32 vs off"), 1u);
  ctx.server_given = true;
  by_measure.clear();
  for (const Row& r : BuildRows(results, ctx)) by_measure[r.measure] = r;
  EXPECT_EQ(by_measure.count("direct lz4 D2H relu fp32 vs off"), 1u);

  std::set<std::pair<std::string, std::string>> keys;
  for (const auto& k : ExpectedRgpuKeys(ctx))
    if (k.first.rfind("rgpu-", 0) == 0 && k.first.find('@') != std::string::npos) keys.insert(k);
  EXPECT_EQ(keys.size(), 3u * 4 + 2u * 2);  // off, lz4, zstd x 2 patterns x 2 ways; off, lz4 x relu x 2
  EXPECT_EQ(keys.count(std::make_pair(CompressionLabel("zstd", kCompressionRateMbit),
                                      std::string("copy.d2h_pageable.random.gbps"))), 1u);
  EXPECT_EQ(keys.count(std::make_pair(CompressionLabel("off", 0), std::string("copy.h2d_pageable.relu.gbps"))), 1u);
}

}  // namespace
}  // namespace rgpu::bench
