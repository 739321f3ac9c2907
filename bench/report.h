// How rgpu bench's processes talk and how it prints.
//
// A measuring child writes one JSON object per line on stdout, one result per
// line, in one of three shapes:
//   {"key":"sync.p50_us","num":41.5}
//   {"key":"info.device","str":"NVIDIA H200"}
//   {"key":"query.cuCtxGetDevice.ns","error":"CUDA_ERROR_NOT_SUPPORTED"}
// The parent parses them back (ParseResults) and lays results out as a table
// of `measure | rgpu | reference | ratio` (RenderTable) or as JSON (RenderJson).
#pragma once

#include <cstdio>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace rgpu::bench {

// One result: a number, a string, or why there is none.
struct Value {
  enum Kind { kMissing, kNumber, kString, kError } kind = kMissing;
  double num = 0;
  std::string text;  // kString: the string; kError: the reason
  bool is_num() const { return kind == kNumber; }
};
using Results = std::map<std::string, Value>;  // by key

// Writes result lines to a stdio stream, flushing after each line so that a
// child that dies later still leaves what it measured. Not thread-safe.
class Emitter {
 public:
  explicit Emitter(FILE* out) : out_(out) {}
  void Num(std::string_view key, double v);
  void Str(std::string_view key, std::string_view v);
  void Error(std::string_view key, std::string_view why);

 private:
  void Line(std::string_view key, std::string_view field, std::string_view json_value);
  FILE* out_;
};

// Parses the result lines in `text`; lines that are not result lines (a
// library's stray output) are skipped. A key seen twice keeps the last value.
Results ParseResults(std::string_view text);

// The value under `key`, or a kMissing one.
const Value& Lookup(const Results& r, const std::string& key);

struct Row {
  std::string measure, rgpu, reference, ratio;
  bool section = false;  // a heading line: only `measure` is printed
};

// "41.5 µs", "1.23 M/s", "12.0 GB/s"... for a value; an error or missing
// value prints as "n/a (<why>)" (or `missing` if given and it is missing).
std::string FormatValue(const Value& v, std::string_view unit, std::string_view missing = "n/a");
// rgpu's speed relative to the reference, so that 1.00 always means "as fast"
// and higher is better: reference/rgpu for times, rgpu/reference for rates.
// "n/a" unless both are positive numbers.
std::string FormatRatio(const Value& rgpu, const Value& reference, bool lower_is_better);

// The rows as an aligned text table with a header line.
std::string RenderTable(const std::vector<Row>& rows);
// {"rows":[{"measure":...,"rgpu":...,"reference":...,"ratio":...}...],
//  "raw":{"<child>":{"<key>":<number>|"<string>"|{"error":"..."}}}}
std::string RenderJson(const std::vector<Row>& rows, const std::map<std::string, Results>& raw);

// `s` as a JSON string literal (quotes included).
std::string JsonQuote(std::string_view s);

}  // namespace rgpu::bench
