#include "common/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <string>

namespace rgpu {
namespace {

std::atomic<int> g_level{-1};
std::mutex g_mu;
std::string* g_tag = nullptr;  // leaked on purpose: usable during exit
std::atomic<int> g_fd{2};

LogLevel ParseLevel(const char* s) {
  if (s == nullptr || *s == 0) return LogLevel::kWarn;
  if (!strcmp(s, "off") || !strcmp(s, "0") || !strcmp(s, "none")) return LogLevel::kOff;
  if (!strcmp(s, "error")) return LogLevel::kError;
  if (!strcmp(s, "warn") || !strcmp(s, "warning")) return LogLevel::kWarn;
  if (!strcmp(s, "info") || !strcmp(s, "1")) return LogLevel::kInfo;
  if (!strcmp(s, "debug") || !strcmp(s, "trace") || !strcmp(s, "2")) return LogLevel::kDebug;
  return LogLevel::kWarn;
}

void VLog(LogLevel level, const char* fmt, va_list ap) {
  static const char* const kNames[] = {"", "error", "warn", "info", "debug"};
  char buf[2048];
  int n;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    n = snprintf(buf, sizeof buf, "[%s] %s: ", g_tag ? g_tag->c_str() : "rgpu",
                 kNames[static_cast<int>(level)]);
  }
  if (n < 0) return;
  int m = vsnprintf(buf + n, sizeof buf - n - 1, fmt, ap);
  if (m < 0) return;
  size_t len = std::min<size_t>(n + m, sizeof buf - 2);
  buf[len++] = '\n';
  ssize_t ignored = ::write(g_fd.load(std::memory_order_relaxed), buf, len);
  (void)ignored;
}

}  // namespace

LogLevel CurrentLogLevel() {
  int v = g_level.load(std::memory_order_relaxed);
  if (v < 0) {
    v = static_cast<int>(ParseLevel(getenv("RGPU_LOG")));
    g_level.store(v, std::memory_order_relaxed);
  }
  return static_cast<LogLevel>(v);
}

void SetLogLevelForTest(LogLevel level) { g_level.store(static_cast<int>(level)); }

void SetLogFd(int fd) { g_fd.store(fd); }

void SetLogTag(std::string_view tag) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_tag == nullptr) g_tag = new std::string;
  g_tag->assign(tag);
}

void Log(LogLevel level, const char* fmt, ...) {
  if (CurrentLogLevel() < level) return;
  va_list ap;
  va_start(ap, fmt);
  VLog(level, fmt, ap);
  va_end(ap);
}

bool LogOnce(LogLevel level, std::string_view key, const char* fmt, ...) {
  static std::mutex* mu = new std::mutex;
  static std::set<std::string>* seen = new std::set<std::string>;
  {
    std::lock_guard<std::mutex> lock(*mu);
    if (!seen->emplace(key).second) return false;
  }
  if (CurrentLogLevel() < level) return true;
  va_list ap;
  va_start(ap, fmt);
  VLog(level, fmt, ap);
  va_end(ap);
  return true;
}

}  // namespace rgpu
