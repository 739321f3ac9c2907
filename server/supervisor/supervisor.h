// The supervisor: accepts clients, checks their handshake, and starts one
// worker process per session (fork + exec of this binary in worker mode,
// handing over the connected socket). It never calls CUDA, so a worker that
// crashes ends only its own session.
//
// Single-threaded: one poll() loop over the listening socket and the
// connections still in their handshake. A handshake that does not complete
// within `handshake_timeout_ms`, or that is malformed, is closed with a
// logged reason; the loop goes on serving others. Failed handshakes are
// counted per source address (AuthLimiter): an address over the limit has
// its next connections refused, before their token is looked at, until its
// window ends.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/tls.h"
#include "server/supervisor/auth_limiter.h"
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
  // Failed handshakes per source address and window before its connections
  // are refused (server/supervisor/auth_limiter.h); 0: no limit.
  int auth_fail_limit = 20;
  int auth_fail_window_ms = 60000;
  // Per session, enforced by its worker: device memory it may hold (0: no
  // limit beyond the GPU's) and request bytes queued ahead of execution
  // (beyond it the worker stops reading and TCP pushes back on the client).
  uint64_t max_mem = 0;
  uint64_t max_pending_bytes = 512ull << 20;
  std::string self_exe;         // binary to exec for workers (default /proc/self/exe)
  std::string log_level;
  std::string gpus = "all";     // "all" or a comma-separated list of host GPU indices
  bool paranoid_wipe = false;   // workers read back every wiped byte
  // A session's teardown (its GPU work draining, the wipe) may take this
  // long after it ends; then its worker ends itself and the card is
  // scrubbed before the next session (server/worker/teardown_guard.h).
  double teardown_grace_s = 20.0;
  // The next warm worker of a GPU is started this long after the GPU is
  // leased (at once when the lease ends first or a session waits): creating
  // a CUDA context holds the driver's locks that a new session's first
  // queries and allocations need (gpu_pool.h). Measured on an H100: with the
  // warm worker started at the lease, a new session's cuMemGetInfo took
  // ~245 us on average in its first 100 ms (max 14.8 ms) instead of ~19 us.
  // The price of the delay: a session that arrives just after one shorter
  // than it waits for the warm worker (~150-190 ms) instead of none.
  double warm_spawn_delay_s = 2.0;
  // Idle detach (docs/time-slicing.md): a session idle this long is
  // detached when someone waits (waiting), whenever idle (always), or never.
  double idle_timeout_s = 2.0;
  std::string detach_idle = "waiting";
  std::string admin_socket;     // Unix socket for `rgpu status` (default /tmp/rgpu-server-PORT.sock)
  std::string sandbox = "on";  // workers: on | off | audit (server/worker/sandbox.h); on since it was verified with CUDA programs and PyTorch on the GPU host
  std::string sandbox_user = "nobody";
  // TLS 1.3 (docs/security.md): PEM certificate chain and key. Both or
  // neither; with them, every client must use TLS.
  std::string tls_cert;
  std::string tls_key;
  // Wire compression of bulk copies when a client offers it
  // (proto/compression.h); off: every session's frames stay plain.
  bool compress = true;
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
    std::string address;         // AuthLimiter::AddressOf(peer)
    std::string limited_reason;  // non-empty: refused by the limiter once its hello arrives
    // TLS: the session (fed mode, common/tls.h); buf then holds plain_size
    // decrypted bytes followed by received bytes not yet fed in.
    std::unique_ptr<tls::Stream> tls;
    size_t plain_size = 0;
  };
  void AcceptAll();
  // Reads what is available; returns true when the connection is finished
  // (handed to a worker or closed).
  bool ServePending(Pending& p);
  // Sorts out TLS before the hello is parsed: refuses a client speaking
  // the wrong one of TLS and plaintext, runs the TLS handshake, decrypts.
  // Returns false when the connection was refused and closed.
  bool ServeTls(Pending& p);
  // Answers the handshake with `status` and closes. Failed handshakes
  // (every status but kNoCapacity) are charged to the peer's address.
  void Refuse(Pending& p, int status, const std::string& why);
  void ChargeFailure(const Pending& p);
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
  AuthLimiter auth_limiter_;
  std::shared_ptr<tls::Context> tls_;  // null: plaintext server
  uint64_t next_session_id_ = 1;
};

}  // namespace rgpu::server
