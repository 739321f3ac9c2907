// The supervisor: accepts clients, checks their handshake, and starts one
// worker process per session (fork + exec of this binary in worker mode,
// handing over the connected socket). It never calls CUDA, so a worker that
// crashes ends only its own session.
//
// Single-threaded: one poll() loop over the listening socket and the
// connections still in their handshake. A handshake that does not complete
// within `handshake_timeout_ms`, or that is malformed, is closed with a
// logged reason; the loop goes on serving others.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "server/supervisor/gpu_pool.h"

namespace rgpu::server {

struct SupervisorOptions {
  std::string listen = "127.0.0.1:7070";
  std::string backend = "sim";  // cuda | sim
  std::string driver_path;      // cuda backend: real libcuda.so.1
  std::string profile_path;     // sim backend: device profile JSON
  int sim_gpus = 1;
  std::string token;            // empty: loopback clients only
  int max_sessions = 64;
  int max_pending_handshakes = 256;
  int handshake_timeout_ms = 5000;
  std::string self_exe;         // binary to exec for workers (default /proc/self/exe)
  std::string log_level;
  std::string gpus = "all";     // "all" or a comma-separated list of host GPU indices
  bool paranoid_wipe = false;   // workers read back every wiped byte
  std::string admin_socket;     // Unix socket for `rgpu status` (default /tmp/rgpu-server-PORT.sock)
  std::string sandbox = "off";  // workers: on | off | audit (server/worker/sandbox.h)
  std::string sandbox_user = "nobody";
};

class Supervisor {
 public:
  explicit Supervisor(SupervisorOptions options);
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Binds the listening socket. Refuses a non-loopback address without a token.
  Status Start();
  uint16_t port() const { return port_; }
  const std::string& admin_socket() const { return options_.admin_socket; }
  // Serves until a SIGINT/SIGTERM arrives (or RequestStop). Returns the exit code.
  int Run();
  void RequestStop();

 private:
  struct Pending {
    int fd = -1;
    std::vector<uint8_t> buf;
    std::chrono::steady_clock::time_point deadline;
    std::string peer;
  };
  void AcceptAll();
  // Reads what is available; returns true when the connection is finished
  // (handed to a worker or closed).
  bool ServePending(Pending& p);
  void Refuse(Pending& p, int status, const std::string& why);
  void ReapChildren();
  Result<std::vector<int>> ChooseGpus();
  void ServeAdmin();

  SupervisorOptions options_;
  int listen_fd_ = -1;
  int admin_fd_ = -1;
  int sigchld_fd_ = -1;
  uint16_t port_ = 0;
  std::vector<Pending> pending_;
  std::unique_ptr<GpuPool> pool_;
  uint64_t next_session_id_ = 1;
};

}  // namespace rgpu::server
