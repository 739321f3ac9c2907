#include "bench/report.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

namespace rgpu::bench {
namespace {

std::string Printf(const char* fmt, double v) {
  char b[64];
  snprintf(b, sizeof b, fmt, v);
  return b;
}

// Display width: UTF-8 continuation bytes take no column.
size_t Width(std::string_view s) {
  size_t w = 0;
  for (unsigned char c : s) w += (c & 0xC0) != 0x80;
  return w;
}

std::string Pad(std::string_view s, size_t width) {
  std::string out(s);
  out.append(width > Width(s) ? width - Width(s) : 0, ' ');
  return out;
}

// Reads a JSON string literal starting at s[*i] == '"'; advances *i past it.
bool ReadString(std::string_view s, size_t* i, std::string* out) {
  if (*i >= s.size() || s[*i] != '"') return false;
  out->clear();
  for (size_t j = *i + 1; j < s.size(); ++j) {
    char c = s[j];
    if (c == '"') {
      *i = j + 1;
      return true;
    }
    if (c != '\\') {
      out->push_back(c);
      continue;
    }
    if (++j >= s.size()) return false;
    switch (s[j]) {
      case 'n': out->push_back('\n'); break;
      case 't': out->push_back('\t'); break;
      case 'r': out->push_back('\r'); break;
      case 'u': {  // only what JsonQuote writes: \u00XX
        if (j + 4 >= s.size()) return false;
        out->push_back(static_cast<char>(strtol(std::string(s.substr(j + 1, 4)).c_str(), nullptr, 16)));
        j += 4;
        break;
      }
      default: out->push_back(s[j]);  // \" \\ \/
    }
  }
  return false;
}

// Parses {"key":"K","F":V} with F one of num|str|error.
bool ParseLine(std::string_view line, std::string* key, Value* v) {
  size_t i = line.find("{\"key\":");
  if (i == std::string_view::npos) return false;
  i += 7;
  if (!ReadString(line, &i, key) || i >= line.size() || line[i] != ',') return false;
  ++i;
  std::string field;
  if (!ReadString(line, &i, &field) || i >= line.size() || line[i] != ':') return false;
  ++i;
  if (field == "num") {
    std::string num(line.substr(i));
    char* end = nullptr;
    v->num = strtod(num.c_str(), &end);
    if (end == num.c_str()) return false;
    v->kind = Value::kNumber;
    return true;
  }
  if (!ReadString(line, &i, &v->text)) return false;
  if (field == "str") v->kind = Value::kString;
  else if (field == "error") v->kind = Value::kError;
  else return false;
  return true;
}

}  // namespace

std::string JsonQuote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20) {
      char b[8];
      snprintf(b, sizeof b, "\\u%04x", c);
      out += b;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out + "\"";
}

void Emitter::Line(std::string_view key, std::string_view field, std::string_view json_value) {
  std::string line = "{\"key\":" + JsonQuote(key) + ",\"" + std::string(field) + "\":" +
                     std::string(json_value) + "}\n";
  fwrite(line.data(), 1, line.size(), out_);
  fflush(out_);
}

void Emitter::Num(std::string_view key, double v) {
  Line(key, "num", std::isfinite(v) ? Printf("%.6g", v) : "0");
}
void Emitter::Str(std::string_view key, std::string_view v) { Line(key, "str", JsonQuote(v)); }
void Emitter::Error(std::string_view key, std::string_view why) { Line(key, "error", JsonQuote(why)); }

Results ParseResults(std::string_view text) {
  Results r;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    std::string key;
    Value v;
    if (ParseLine(line, &key, &v)) r[key] = std::move(v);
  }
  return r;
}

const Value& Lookup(const Results& r, const std::string& key) {
  static const Value kMissing;
  auto it = r.find(key);
  return it == r.end() ? kMissing : it->second;
}

std::string FormatValue(const Value& v, std::string_view unit, std::string_view missing) {
  if (v.kind == Value::kMissing) return std::string(missing);
  if (v.kind == Value::kString) return v.text;
  if (v.kind == Value::kError) {
    std::string why = v.text.size() > 44 ? v.text.substr(0, 43) + "…" : v.text;
    return "n/a (" + why + ")";
  }
  double x = v.num;
  if (unit == "us") return Printf(x < 10 ? "%.2f µs" : "%.1f µs", x);
  if (unit == "ns") return Printf(x < 10 ? "%.2f ns/call" : "%.1f ns/call", x);
  if (unit == "GB/s") return Printf("%.2f GB/s", x);
  if (unit == "bytes") return Printf("%.0f bytes", x);
  if (unit == "/s") {
    if (x >= 1e6) return Printf("%.2f M/s", x / 1e6);
    if (x >= 1e3) return Printf("%.1f k/s", x / 1e3);
    return Printf("%.0f /s", x);
  }
  return Printf("%.4g ", x) + std::string(unit);
}

std::string FormatRatio(const Value& rgpu, const Value& reference, bool lower_is_better) {
  if (!rgpu.is_num() || !reference.is_num() || rgpu.num <= 0 || reference.num <= 0) return "n/a";
  double r = lower_is_better ? reference.num / rgpu.num : rgpu.num / reference.num;
  return Printf(r < 0.01 ? "%.4f" : "%.2f", r);
}

std::string RenderTable(const std::vector<Row>& rows) {
  const Row header{"measure", "rgpu", "reference", "ratio"};
  size_t w[4] = {Width(header.measure), Width(header.rgpu), Width(header.reference),
                 Width(header.ratio)};
  for (const Row& r : rows) {
    if (r.section) continue;
    w[0] = std::max(w[0], Width(r.measure));
    w[1] = std::max(w[1], Width(r.rgpu));
    w[2] = std::max(w[2], Width(r.reference));
    w[3] = std::max(w[3], Width(r.ratio));
  }
  auto line = [&](const Row& r) {
    std::string s = Pad(r.measure, w[0]) + " | " + Pad(r.rgpu, w[1]) + " | " +
                    Pad(r.reference, w[2]) + " | " + r.ratio;
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s + "\n";
  };
  std::string out = line(header);
  out += std::string(w[0], '-') + "-|-" + std::string(w[1], '-') + "-|-" + std::string(w[2], '-') +
         "-|-" + std::string(w[3], '-') + "\n";
  for (const Row& r : rows) out += r.section ? r.measure + "\n" : line(r);
  return out;
}

std::string RenderJson(const std::vector<Row>& rows, const std::map<std::string, Results>& raw) {
  std::string out = "{\"rows\":[";
  bool first = true;
  for (const Row& r : rows) {
    if (r.section) continue;
    out += first ? "\n  " : ",\n  ";
    first = false;
    out += "{\"measure\":" + JsonQuote(r.measure) + ",\"rgpu\":" + JsonQuote(r.rgpu) +
           ",\"reference\":" + JsonQuote(r.reference) + ",\"ratio\":" + JsonQuote(r.ratio) + "}";
  }
  out += "\n],\n\"raw\":{";
  bool first_child = true;
  for (const auto& [child, results] : raw) {
    out += first_child ? "\n  " : ",\n  ";
    first_child = false;
    out += JsonQuote(child) + ":{";
    bool first_key = true;
    for (const auto& [key, v] : results) {
      out += first_key ? "" : ",";
      first_key = false;
      out += JsonQuote(key) + ":";
      if (v.kind == Value::kNumber) out += Printf("%.6g", v.num);
      else if (v.kind == Value::kString) out += JsonQuote(v.text);
      else out += "{\"error\":" + JsonQuote(v.text) + "}";
    }
    out += "}";
  }
  return out + "\n}}\n";
}

}  // namespace rgpu::bench
