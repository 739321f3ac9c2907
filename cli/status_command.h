// `rgpu status`: asks a running rgpu-server (its admin Unix socket, on the
// GPU host) for its GPUs, leases, sessions and queue, and prints them as a
// table, or as the server's JSON with --json.
#pragma once

#include <string>

namespace rgpu::cli {

struct StatusOptions {
  std::string admin_socket;  // default: /tmp/rgpu-server-PORT.sock for --port
  int port = 7070;
  bool json = false;
};

// Returns the process exit status: 0, or 2 when the server cannot be asked
// (with the reason on stderr).
int RunStatus(const StatusOptions& options);

}  // namespace rgpu::cli
