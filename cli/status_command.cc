#include "cli/status_command.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

namespace rgpu::cli {

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
  printf("backend %s, %zu GPU(s), %d session(s) active, %d served\n",
         js.value("backend", std::string("?")).c_str(), js["gpus"].size(), js.value("sessions_active", 0),
         js.value("sessions_served", 0));
  printf("%-4s %-9s %-8s %-9s %s\n", "GPU", "state", "session", "held", "holder");
  for (const auto& g : js["gpus"]) {
    char held[32] = "-";
    if (g.contains("held_s")) snprintf(held, sizeof held, "%.1fs", g["held_s"].get<double>());
    printf("%-4d %-9s %-8s %-9s %s\n", g.value("index", -1), g.value("state", std::string("?")).c_str(),
           g.contains("session") ? std::to_string(g["session"].get<uint64_t>()).c_str() : "-", held,
           g.value("holder", std::string("")).c_str());
  }
  if (!js["queue"].empty()) {
    printf("queue:\n");
    for (const auto& q : js["queue"])
      printf("  %d. session %llu, waiting %.1fs: %s\n", q.value("position", 0),
             static_cast<unsigned long long>(q.value("session", uint64_t{0})), q.value("waiting_s", 0.0),
             q.value("identity", std::string("")).c_str());
  }
  return 0;
}

}  // namespace rgpu::cli
