#include "cli/status_command.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

namespace rgpu::cli {
namespace {

using nlohmann::json;

std::string GpuList(const json& gpus) {
  std::string out;
  for (const json& g : gpus) out += (out.empty() ? "" : ",") + std::to_string(g.get<int>());
  return out;
}

std::string Memory(const json& g) {
  if (!g.contains("memory_total")) return "-";
  char b[32];
  snprintf(b, sizeof b, "%.1f GiB", g["memory_total"].get<double>() / (1u << 30));
  return b;
}

// The human-readable form of the status JSON (server/supervisor/gpu_pool_status.cc).
void PrintTable(const json& js) {
  const json totals = js.value("totals", json::object());
  printf("backend %s, %zu GPU(s) (%d leased, %d free), %d session(s) active, %zu waiting, %d served\n",
         js.value("backend", std::string("?")).c_str(), js["gpus"].size(), totals.value("gpus_leased", 0),
         totals.value("gpus_free", 0), js.value("sessions_active", 0), js.value("queue", json::array()).size(),
         js.value("sessions_served", 0));
  printf("%-4s %-24s %-10s %-9s %-8s %-10s %s\n", "GPU", "name", "memory", "state", "session", "held/idle",
         "holder");
  for (const auto& g : js["gpus"]) {
    char time[32] = "-";
    if (g.contains("held_s")) snprintf(time, sizeof time, "%.1fs", g["held_s"].get<double>());
    else if (g.contains("idle_s")) snprintf(time, sizeof time, "idle %.0fs", g["idle_s"].get<double>());
    printf("%-4d %-24s %-10s %-9s %-8s %-10s %s\n", g.value("index", -1), g.value("name", std::string("-")).c_str(),
           Memory(g).c_str(), g.value("state", std::string("?")).c_str(),
           g.contains("session") ? std::to_string(g["session"].get<uint64_t>()).c_str() : "-", time,
           g.value("holder", std::string("")).c_str());
  }
  bool header = false;
  for (const auto& s : js.value("sessions", json::array())) {
    // New sessions still waiting are listed under "queue"; detached ones
    // (and those waiting to reattach) have a worker and bytes swapped.
    if (s.value("state", std::string()) != "attached" && !s.contains("bytes_swapped")) continue;
    if (!header) printf("sessions:\n");
    header = true;
    printf("  %llu  %s  gpus %s  %s %.1fs  device %.1f MiB  swapped %.1f MiB  worker %d  %s\n",
           static_cast<unsigned long long>(s.value("session", uint64_t{0})), s.value("state", std::string()).c_str(),
           GpuList(s.value("gpus", json::array())).c_str(), s.contains("detached_s") ? "detached" : "held",
           s.value("held_s", s.value("detached_s", 0.0)), s.value("bytes_held", 0.0) / 1048576,
           s.value("bytes_swapped", 0.0) / 1048576, s.value("worker_pid", 0),
           s.value("identity", std::string("")).c_str());
  }
  if (!js.value("queue", json::array()).empty()) {
    printf("queue:\n");
    for (const auto& q : js["queue"])
      printf("  %d. session %llu, %d GPU(s), waiting %.1fs: %s\n", q.value("position", 0),
             static_cast<unsigned long long>(q.value("session", uint64_t{0})), q.value("gpus_wanted", 1),
             q.value("waiting_s", 0.0), q.value("identity", std::string("")).c_str());
  }
}

}  // namespace

int RunStatus(const StatusOptions& options) {
  std::string path = options.admin_socket.empty()
                         ? "/tmp/rgpu-server-" + std::to_string(options.port) + ".sock"
                         : options.admin_socket;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    fprintf(stderr, "rgpu status: socket path too long: %s\n", path.c_str());
    return 2;
  }
  strcpy(addr.sun_path, path.c_str());
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    fprintf(stderr, "rgpu status: cannot reach the server's admin socket %s: %s\n", path.c_str(),
            strerror(errno));
    if (fd >= 0) close(fd);
    return 2;
  }
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  close(fd);
  nlohmann::json js = nlohmann::json::parse(text, nullptr, false);
  if (js.is_discarded() || !js.is_object()) {
    fprintf(stderr, "rgpu status: the server sent something that is not a status\n");
    return 2;
  }
  if (options.json) {
    printf("%s\n", js.dump(2).c_str());
    return 0;
  }
  PrintTable(js);
  return 0;
}

}  // namespace rgpu::cli
