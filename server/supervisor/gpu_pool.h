// GpuPool: the host's GPUs inside the supervisor (time-slicing).
//
// Each GPU is leased to at most one session at a time. For every GPU a warm
// worker is kept ready: a worker process bound to that GPU with its CUDA
// context already created, waiting on its control channel. A new session is
// handed to a warm worker of a free GPU at once; sessions that find no free
// GPU wait in FIFO order and are told their position. When a session's
// worker exits (the session ended; the worker wiped what it wrote), the GPU
// goes to the next waiting session. A worker serves one session and exits;
// the next warm worker for its GPU is started as soon as the previous one
// takes a session, so hand-over never waits for context creation.
//
// Single-threaded: driven by the supervisor's poll loop.
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "common/status.h"

namespace rgpu::server {

struct SupervisorOptions;

class GpuPool {
 public:
  using Clock = std::chrono::steady_clock;

  GpuPool(const SupervisorOptions& options, std::vector<int> gpus);
  ~GpuPool();

  // Starts one warm worker per GPU.
  void Start();
  // A client passed the handshake: lease a GPU now or queue it. Takes `fd`.
  void Admit(int fd, uint64_t session_id, const std::string& identity, const std::string& peer);
  // Descriptors to poll (warm workers' control channels, queued clients).
  void AddPollFds(std::vector<pollfd>* fds) const;
  // Handles readiness on those descriptors (ignores others).
  void OnPoll(const std::vector<pollfd>& fds);
  // A child exited. Returns true if it was one of the pool's workers.
  bool OnChildExit(pid_t pid, int status);
  // Ends every worker (supervisor shutdown).
  void StopAll();

  std::string StatusJson() const;
  size_t sessions() const;
  size_t queued() const { return queue_.size(); }

 private:
  // A session on a GPU: the lease holder, or a helper process of it (a
  // client whose parent or grandparent holds the GPU shares its lease).
  struct Holder {
    pid_t worker_pid = -1;
    int ctl = -1;  // the worker's control channel (kReleased ends the lease early)
    uint64_t session_id = 0;
    std::string identity;
    std::string host;  // from the identity: where the client runs
    long client_pid = 0;
    Clock::time_point since;
  };
  struct Gpu {
    int index = 0;  // host-wide GPU index
    std::vector<Holder> holders;  // empty: free
    pid_t warm_pid = -1;
    int warm_ctl = -1;
    bool warm_ready = false;
    int fast_failures = 0;  // warm workers that died before becoming ready
    Clock::time_point warm_started;
    Clock::time_point retry_at;
  };
  struct Waiting {
    int fd = -1;
    uint64_t session_id = 0;
    std::string identity;
    std::string peer;
    Clock::time_point since;
    int family_gpu = -1;  // position in gpus_ of the lease it shares, or -1
  };

  void SpawnWarm(Gpu& g);
  void Attach(Gpu& g, Waiting w);
  // The GPU (position in gpus_) leased to an ancestor of the client named by
  // `identity`, or -1.
  int FamilyGpu(const std::string& identity) const;
  void Dispatch();
  void TellPositions();
  void Refuse(Waiting& w, const std::string& why);

  const SupervisorOptions& options_;
  std::vector<Gpu> gpus_;
  std::deque<Waiting> queue_;
  uint64_t sessions_served_ = 0;
};

}  // namespace rgpu::server
