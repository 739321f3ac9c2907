// Logging to stderr only (the client lives in other people's processes and
// must never write to stdout).
//
// The level comes from RGPU_LOG: "off", "error", "warn" (default), "info",
// "debug". Read once, lazily. Thread-safe: each line is one write(2).
#pragma once

#include <cstdarg>
#include <string_view>

namespace rgpu {

enum class LogLevel { kOff = 0, kError, kWarn, kInfo, kDebug };

LogLevel CurrentLogLevel();
void SetLogLevelForTest(LogLevel level);
// A short tag put before each line, e.g. "rgpu-client" or "rgpu-worker[123]".
void SetLogTag(std::string_view tag);
// Where log lines go (default 2). The worker points this at its original
// stderr after capturing fd 2 for the client.
void SetLogFd(int fd);

void Log(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// Logs `what` once per process for a given key (e.g. an unsupported call's
// name). Returns true the first time.
bool LogOnce(LogLevel level, std::string_view key, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));

}  // namespace rgpu

#define RGPU_LOG_ERROR(...) ::rgpu::Log(::rgpu::LogLevel::kError, __VA_ARGS__)
#define RGPU_LOG_WARN(...) ::rgpu::Log(::rgpu::LogLevel::kWarn, __VA_ARGS__)
#define RGPU_LOG_INFO(...) ::rgpu::Log(::rgpu::LogLevel::kInfo, __VA_ARGS__)
#define RGPU_LOG_DEBUG(...)                                                          \
  do {                                                                               \
    if (::rgpu::CurrentLogLevel() >= ::rgpu::LogLevel::kDebug)                       \
      ::rgpu::Log(::rgpu::LogLevel::kDebug, __VA_ARGS__);                            \
  } while (0)
